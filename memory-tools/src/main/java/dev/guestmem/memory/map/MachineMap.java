package dev.guestmem.memory.map;

import com.fasterxml.jackson.core.JsonGenerator;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.IommuOps;
import dev.guestmem.memory.IommuTlbEntry;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;

import java.io.IOException;
import java.io.InputStream;
import java.io.StringReader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A machine's memory map as data: the {@code guestmem-map/1} JSON format, loaded into a new {@link MemorySystem} and
 * saved from one.
 *
 * <pre>{@code
 * { "format": "guestmem-map/1",
 *   "regions": {
 *     "<id>": { "name": "pc.bios", "kind": "rom", "size": "0x40000",
 *               "readonly": false, "nonvolatile": false, "unmergeable": false, "enabled": true,
 *               "romd": true,                                          (rom-device only)
 *               "alias": { "target": "<id>", "offset": "0x20000" },   (alias only)
 *               "ops": { "endianness": "little",                       (io and rom-device only)
 *                        "valid": { "min": 1, "max": 4, "unaligned": false },
 *                        "impl":  { "min": 1, "max": 4, "unaligned": false } },
 *               "subregions": [ { "region": "<id>", "addr": "0xe0000", "priority": 1 } ] } },
 *   "addressSpaces": [ { "name": "memory", "root": "<id>", "pageBits": 12 } ] }
 * }</pre>
 *
 * <p>Kinds: {@code container}, {@code ram}, {@code rom}, {@code rom-device}, {@code ram-device}, {@code io},
 * {@code alias}, {@code iommu}, {@code reservation}. Sizes, addresses and offsets are hex strings; the size
 * {@code "0x10000000000000000"} is 2^64. Every flag is optional and defaults to QEMU's initial value
 * ({@code enabled} and {@code romd} true, the others false); {@code readonly} is QEMU's
 * {@code memory_region_set_readonly} flag, on top of the read-only nature of a {@code rom}. {@code subregions} are
 * listed in the order they were added, which decides ties between equal priorities as in QEMU. Ids are unique;
 * names need not be. Regions that no address space reaches (alias targets) are allowed. An address space's
 * {@code pageBits} is the page size of its dispatch (QEMU's {@code TARGET_PAGE_BITS}: 12 for x86, 10 for 32-bit Arm
 * boards); it is optional, and when absent the reader's default (12 unless the caller says otherwise) applies.
 *
 * <p>Device behaviour cannot be written in JSON: {@code io} and {@code rom-device} regions get their callbacks from
 * a {@link DeviceFactory}; the default one makes QEMU's "unimplemented device" (reads 0, writes ignored) with the
 * access rules the map gives. IOMMU regions get a translation from the factory too; the default maps nothing.
 *
 * <p>Errors: an invalid map (unknown id, a cycle, a region in two containers, a bad number, an unknown field value)
 * is rejected with a {@link MapFormatException} whose message names the id and the field.
 */
public final class MachineMap {
    /** The value of the {@code format} field this class reads and writes. */
    public static final String FORMAT = "guestmem-map/1";

    /** The deepest nesting of JSON arrays and objects a map may have; deeper text is refused before it is read. */
    public static final int MAX_JSON_DEPTH = 64;

    /** Supplies the behaviour that JSON cannot describe. */
    public interface DeviceFactory {
        /**
         * The ops of an {@code io} or {@code rom-device} region.
         *
         * @param id   the region's id in the map
         * @param name the region's name
         * @param spec the access rules the map gives (QEMU's defaults where it gives none)
         */
        MemoryRegionOps ops(String id, String name, OpsSpec spec);

        /** The translation of an {@code iommu} region. */
        IommuOps iommu(String id, String name);
    }

    /** What a map says about an I/O region's ops. */
    public record OpsSpec(DeviceEndian endianness, MemoryRegionOps.AccessSizes valid, MemoryRegionOps.AccessSizes impl) {
        public static final OpsSpec DEFAULT = new OpsSpec(DeviceEndian.NATIVE, MemoryRegionOps.AccessSizes.DEFAULT,
                MemoryRegionOps.AccessSizes.DEFAULT);

        /** Builder pre-filled with these rules, for a factory to add callbacks to. */
        public MemoryRegionOps.Builder builder() {
            return MemoryRegionOps.builder()
                    .endianness(endianness)
                    .valid(valid.minAccessSize(), valid.maxAccessSize(), valid.unaligned())
                    .impl(impl.minAccessSize(), impl.maxAccessSize(), impl.unaligned());
        }
    }

    /**
     * QEMU's unimplemented device: reads as 0, ignores writes; IOMMUs that translate nothing. Regions with the same
     * access rules share one {@link MemoryRegionOps} (they hold no state), so a map of a million I/O regions makes a
     * handful.
     */
    public static final DeviceFactory UNIMPLEMENTED_DEVICES = new DeviceFactory() {
        private final ConcurrentHashMap<OpsSpec, MemoryRegionOps> made = new ConcurrentHashMap<>();

        @Override
        public MemoryRegionOps ops(String id, String name, OpsSpec spec) {
            return made.computeIfAbsent(spec, s -> s.builder().read((addr, size) -> 0L).write((addr, data, size) -> { })
                    .build());
        }

        @Override
        public IommuOps iommu(String id, String name) {
            return (addr, flag, iommuIdx) -> new IommuTlbEntry(null, addr & ~0xfffL, 0, 0xfff, IommuOps.IOMMU_NONE);
        }
    };

    private final MemorySystem system;
    private final Map<String, MemoryRegion> regions;

    private MachineMap(MemorySystem system, Map<String, MemoryRegion> regions) {
        this.system = system;
        this.regions = Collections.unmodifiableMap(regions);
    }

    /** The memory system the map was loaded into; its address spaces are in the map's order. */
    public MemorySystem system() {
        return system;
    }

    /** Every region of the map by id, in the map's order. */
    public Map<String, MemoryRegion> regions() {
        return regions;
    }

    /** The region with this id; throws when there is none. */
    public MemoryRegion region(String id) {
        MemoryRegion r = regions.get(id);
        if (r == null) {
            throw new IllegalArgumentException("id=" + id + ": no such region in the map");
        }
        return r;
    }

    // ---------------------------------------------------------------- reading

    /**
     * Reads a map file into a new memory system whose RAM comes from {@code ram}, with unimplemented devices.
     *
     * @throws MapFormatException if the file is not UTF-8 text or not a valid map
     * @throws IOException if the file cannot be read
     */
    public static MachineMap read(Path path, MemorySystem.RamAllocator ram) throws IOException {
        return read(path, ram, MemorySystem.DEFAULT_PAGE_BITS);
    }

    /**
     * Reads a map file as {@link #read(Path, MemorySystem.RamAllocator)}; address spaces that give no
     * {@code pageBits} get {@code defaultPageBits}.
     */
    public static MachineMap read(Path path, MemorySystem.RamAllocator ram, int defaultPageBits) throws IOException {
        return read(Files.newInputStream(path), ram, UNIMPLEMENTED_DEVICES, defaultPageBits);
    }

    /**
     * Reads a map from a stream of UTF-8 bytes (which it closes) into a new memory system, a buffer at a time: the
     * text is never held whole, so a map of a million regions loads in a fraction of its size in heap beyond what
     * its regions need. The rules are those of {@link #parse(String, MemorySystem.RamAllocator, DeviceFactory, int)}.
     *
     * @throws MapFormatException if the bytes are not UTF-8 text (naming the offset of the first that is not) or not
     *         a valid map
     * @throws IOException if the stream cannot be read
     * @throws IllegalArgumentException if {@code defaultPageBits} is needed and not a supported page size
     */
    public static MachineMap read(InputStream in, MemorySystem.RamAllocator ram, DeviceFactory devices,
                                  int defaultPageBits) throws IOException {
        return load(MapStream.read(new Utf8Reader(in)), ram, devices, defaultPageBits);
    }

    /**
     * The bytes as UTF-8 text; anything else (a binary file, another encoding) is a {@link MapFormatException}
     * naming the offset of the first byte that is not UTF-8.
     */
    public static String utf8(byte[] bytes) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult result = decoder.decode(in, out, true);
        if (result.isError()) {
            throw new MapFormatException(Utf8Reader.notUtf8(in.position(), bytes[in.position()]));
        }
        decoder.flush(out);
        return out.flip().toString();
    }

    /** Parses map JSON into a new memory system. */
    public static MachineMap parse(String json, MemorySystem.RamAllocator ram, DeviceFactory devices) {
        return parse(json, ram, devices, MemorySystem.DEFAULT_PAGE_BITS);
    }

    /**
     * Parses map JSON into a new memory system; address spaces that give no {@code pageBits} get the default.
     *
     * <p>The text must be one JSON object and nothing after it but white space; JSON nested deeper than
     * {@value #MAX_JSON_DEPTH} levels (a map needs 6) and duplicate field names in any object (so duplicate region
     * ids) are refused, with the line and column. The text is read as a stream of tokens, never as a tree of the
     * whole map.
     *
     * @throws MapFormatException if the text is not a valid map, naming the position, or the id and the field
     * @throws IllegalArgumentException if {@code defaultPageBits} is needed and not a supported page size
     */
    public static MachineMap parse(String json, MemorySystem.RamAllocator ram, DeviceFactory devices,
                                   int defaultPageBits) {
        MapStream.Read read;
        try {
            read = MapStream.read(new StringReader(json));
        } catch (IOException e) {
            throw new UncheckedIOException("reading JSON from a string", e);
        }
        return load(read, ram, devices, defaultPageBits);
    }

    private static MachineMap load(MapStream.Read read, MemorySystem.RamAllocator ram, DeviceFactory devices,
                                   int defaultPageBits) {
        MemorySystem system = new MemorySystem(ram);
        return new MachineMap(system, new MapLoader(read, system, devices, defaultPageBits).load());
    }

    // ---------------------------------------------------------------- writing

    /**
     * The map of everything reachable from {@code system}'s address spaces (through subregions, alias targets and
     * the containers of what is reached), as JSON. Ids are the regions' names, made unique with a {@code #n} suffix
     * where names repeat. Subregions are listed in the order they were added, so reading the map back gives the same
     * tree.
     */
    public static String write(MemorySystem system) {
        StringWriter out = new StringWriter();
        try {
            write(system, out);
        } catch (IOException e) {
            throw new UncheckedIOException("writing map JSON to a string", e);
        }
        return out.toString();
    }

    /**
     * Writes the map {@link #write(MemorySystem)} gives to {@code out} (which stays open), a region at a time: no
     * tree and no text of the whole map is built.
     *
     * @throws IOException if {@code out} cannot be written
     */
    public static void write(MemorySystem system, Writer out) throws IOException {
        system.begin();
        try {
            IdentityHashMap<MemoryRegion, String> ids = new IdentityHashMap<>();
            ArrayList<MemoryRegion> order = new ArrayList<>();
            HashMap<String, Integer> nextSuffix = new HashMap<>();
            HashSet<String> used = new HashSet<>();
            List<AddressSpace> spaces = system.addressSpaces();
            for (AddressSpace as : spaces) {
                collect(as.root(), ids, order, used, nextSuffix);
            }
            JsonGenerator g = MapStream.JSON.getFactory().createGenerator(out)
                    .disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
            g.useDefaultPrettyPrinter();
            g.writeStartObject();
            g.writeStringField("format", FORMAT);
            g.writeObjectFieldStart("regions");
            for (MemoryRegion r : order) {
                g.writeFieldName(ids.get(r));
                writeRegion(g, r, ids);
            }
            g.writeEndObject();
            g.writeArrayFieldStart("addressSpaces");
            for (AddressSpace as : spaces) {
                g.writeStartObject();
                g.writeStringField("name", as.name());
                g.writeStringField("root", ids.get(as.root()));
                if (as.pageBits() != MemorySystem.DEFAULT_PAGE_BITS) {
                    g.writeNumberField("pageBits", as.pageBits());
                }
                g.writeEndObject();
            }
            g.writeEndArray();
            g.writeEndObject();
            g.close();
            out.write('\n');
        } finally {
            system.commit();
        }
    }

    /**
     * Gives {@code from} and everything it reaches an id, in the order of a depth-first walk (the region, its
     * subregions in added order, then its alias target), with an explicit stack: maps may be deeper than the
     * thread's stack. {@code nextSuffix} remembers, per name, the suffix to try next, so a name that a million
     * regions share costs one try each.
     */
    private static void collect(MemoryRegion from, IdentityHashMap<MemoryRegion, String> ids,
                                ArrayList<MemoryRegion> order, HashSet<String> used, HashMap<String, Integer> nextSuffix) {
        ArrayDeque<MemoryRegion> work = new ArrayDeque<>();
        work.push(from);
        while (!work.isEmpty()) {
            MemoryRegion r = work.pop();
            if (ids.containsKey(r)) {
                continue;
            }
            String id = r.name();
            if (!used.add(id)) {
                // Every suffix below the remembered one is taken (used only grows): the ids are those of trying
                // #2, #3, ... from the start.
                int n = nextSuffix.getOrDefault(r.name(), 2);
                id = r.name() + "#" + n;
                while (!used.add(id)) {
                    n++;
                    id = r.name() + "#" + n;
                }
                nextSuffix.put(r.name(), n + 1);
            }
            ids.put(r, id);
            order.add(r);
            if (r.container() != null) {
                // An address space's root may sit inside a container that nothing else reaches; without it the
                // root would lose its address and priority.
                work.push(r.container());
            }
            if (r.alias() != null) {
                work.push(r.alias());
            }
            List<MemoryRegion> subs = addedOrder(r);
            for (int i = subs.size() - 1; i >= 0; i--) {
                work.push(subs.get(i));
            }
        }
    }

    private static List<MemoryRegion> addedOrder(MemoryRegion r) {
        List<MemoryRegion> live = r.subregions();
        if (live.isEmpty()) {
            return List.of();
        }
        ArrayList<MemoryRegion> subs = new ArrayList<>(live);
        subs.sort((a, b) -> Long.compare(a.addSequence(), b.addSequence()));
        return subs;
    }

    private static void writeRegion(JsonGenerator g, MemoryRegion r, IdentityHashMap<MemoryRegion, String> ids)
            throws IOException {
        g.writeStartObject();
        g.writeStringField("name", r.name());
        g.writeStringField("kind", r.kind().mapName());
        g.writeStringField("size", HexNumbers.formatSize(r.size()));
        if (r.isReadonly()) {
            g.writeBooleanField("readonly", true);
        }
        if (r.isNonvolatile()) {
            g.writeBooleanField("nonvolatile", true);
        }
        if (r.isUnmergeable()) {
            g.writeBooleanField("unmergeable", true);
        }
        if (!r.isEnabled()) {
            g.writeBooleanField("enabled", false);
        }
        if (r.kind() == MemoryRegion.Kind.ROM_DEVICE && !r.isRomdMode()) {
            g.writeBooleanField("romd", false);
        }
        if (r.alias() != null) {
            g.writeObjectFieldStart("alias");
            g.writeStringField("target", ids.get(r.alias()));
            g.writeStringField("offset", HexNumbers.formatAddress(r.aliasOffset()));
            g.writeEndObject();
        }
        if ((r.kind() == MemoryRegion.Kind.IO || r.kind() == MemoryRegion.Kind.ROM_DEVICE) && r.ops() != null) {
            writeOps(g, r.ops());
        }
        List<MemoryRegion> subs = addedOrder(r);
        if (!subs.isEmpty()) {
            g.writeArrayFieldStart("subregions");
            for (MemoryRegion s : subs) {
                g.writeStartObject();
                g.writeStringField("region", ids.get(s));
                g.writeStringField("addr", HexNumbers.formatAddress(s.addr()));
                g.writeNumberField("priority", s.priority());
                g.writeEndObject();
            }
            g.writeEndArray();
        }
        g.writeEndObject();
    }

    /** The ops' access rules where they are not QEMU's defaults; nothing when all are. */
    private static void writeOps(JsonGenerator g, MemoryRegionOps ops) throws IOException {
        boolean endian = ops.endianness() != DeviceEndian.NATIVE;
        boolean valid = !ops.valid().equals(MemoryRegionOps.AccessSizes.DEFAULT);
        boolean impl = !ops.impl().equals(MemoryRegionOps.AccessSizes.DEFAULT);
        if (!endian && !valid && !impl) {
            return;
        }
        g.writeObjectFieldStart("ops");
        if (endian) {
            g.writeStringField("endianness", ops.endianness() == DeviceEndian.LITTLE ? "little" : "big");
        }
        if (valid) {
            writeSizes(g, "valid", ops.valid());
        }
        if (impl) {
            writeSizes(g, "impl", ops.impl());
        }
        g.writeEndObject();
    }

    private static void writeSizes(JsonGenerator g, String field, MemoryRegionOps.AccessSizes s) throws IOException {
        g.writeObjectFieldStart(field);
        if (s.minAccessSize() != 0) {
            g.writeNumberField("min", s.minAccessSize());
        }
        if (s.maxAccessSize() != 0) {
            g.writeNumberField("max", s.maxAccessSize());
        }
        if (s.unaligned()) {
            g.writeBooleanField("unaligned", true);
        }
        g.writeEndObject();
    }

    @Override
    public String toString() {
        return "MachineMap[" + regions.size() + " regions, " + Objects.toString(system.addressSpaces().size()) + " address spaces]";
    }
}
