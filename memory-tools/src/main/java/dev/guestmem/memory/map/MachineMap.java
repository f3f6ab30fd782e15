package dev.guestmem.memory.map;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.IommuOps;
import dev.guestmem.memory.IommuTlbEntry;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;

import java.io.IOException;
import java.io.UncheckedIOException;
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
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

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

    /** QEMU's unimplemented device: reads as 0, ignores writes; IOMMUs that translate nothing. */
    public static final DeviceFactory UNIMPLEMENTED_DEVICES = new DeviceFactory() {
        @Override
        public MemoryRegionOps ops(String id, String name, OpsSpec spec) {
            return spec.builder().read((addr, size) -> 0L).write((addr, data, size) -> { }).build();
        }

        @Override
        public IommuOps iommu(String id, String name) {
            return (addr, flag, iommuIdx) -> new IommuTlbEntry(null, addr & ~0xfffL, 0, 0xfff, IommuOps.IOMMU_NONE);
        }
    };

    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_JSON_DEPTH).build())
            .build())
            .enable(SerializationFeature.INDENT_OUTPUT);

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
        return parse(utf8(Files.readAllBytes(path)), ram, UNIMPLEMENTED_DEVICES, defaultPageBits);
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
            throw new MapFormatException("not UTF-8 text: byte offset=" + in.position() + " is 0x"
                    + Integer.toHexString(bytes[in.position()] & 0xff));
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
     * ids) are refused, with the line and column.
     *
     * @throws MapFormatException if the text is not a valid map, naming the position, or the id and the field
     * @throws IllegalArgumentException if {@code defaultPageBits} is needed and not a supported page size
     */
    public static MachineMap parse(String json, MemorySystem.RamAllocator ram, DeviceFactory devices,
                                   int defaultPageBits) {
        JsonNode root;
        try (JsonParser parser = JSON.createParser(json)) {
            root = JSON.readTree(parser);
            if (root == null) {
                throw new MapFormatException("not valid JSON: no content");
            }
            long end = parser.currentLocation().getCharOffset();
            for (int i = (int) end; i < json.length(); i++) {
                char c = json.charAt(i);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                    int lineStart = json.lastIndexOf('\n', i - 1) + 1;
                    long line = 1 + json.chars().limit(i).filter(ch -> ch == '\n').count();
                    throw new MapFormatException("not valid JSON: text after the end of the map at line " + line
                            + " column " + (i - lineStart + 1));
                }
            }
        } catch (StreamConstraintsException e) {
            throw new MapFormatException("not valid JSON: nested deeper than " + MAX_JSON_DEPTH + " levels (a map"
                    + " needs 6)", e);
        } catch (JsonProcessingException e) {
            throw new MapFormatException("not valid JSON: " + e.getOriginalMessage() + at(e.getLocation()), e);
        } catch (IOException e) {
            throw new UncheckedIOException("reading JSON from a string", e);
        }
        return new Loader(root, new MemorySystem(ram), devices, defaultPageBits).load();
    }

    private static String at(JsonLocation location) {
        // Jackson gives no location for some errors (a nesting limit reached, for one).
        return location == null || location.getLineNr() < 0 ? ""
                : " at line " + location.getLineNr() + " column " + location.getColumnNr();
    }

    private static final class Loader {
        private final JsonNode root;
        private final MemorySystem system;
        private final DeviceFactory devices;
        private final int defaultPageBits;
        private final LinkedHashMap<String, JsonNode> specs = new LinkedHashMap<>();
        private final LinkedHashMap<String, MemoryRegion> made = new LinkedHashMap<>();
        private final HashMap<String, String> aliasTargets = new HashMap<>();

        Loader(JsonNode root, MemorySystem system, DeviceFactory devices, int defaultPageBits) {
            this.root = root;
            this.system = system;
            this.devices = devices;
            this.defaultPageBits = defaultPageBits;
        }

        MachineMap load() {
            if (!root.isObject()) {
                throw new MapFormatException("the map must be a JSON object");
            }
            JsonNode format = root.get("format");
            if (format == null || !format.isTextual() || !FORMAT.equals(format.asText())) {
                throw new MapFormatException("format: expected \"" + FORMAT + "\", found " + format);
            }
            checkFields("the map", root, "format", "regions", "addressSpaces");
            JsonNode regionsNode = root.get("regions");
            if (regionsNode == null || !regionsNode.isObject()) {
                throw new MapFormatException("regions: expected an object of id -> region");
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = regionsNode.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getValue().isObject()) {
                    throw new MapFormatException(where(e.getKey(), null) + "expected an object");
                }
                specs.put(e.getKey(), e.getValue());
            }
            checkContainment();
            system.begin();
            try {
                for (String id : specs.keySet()) {
                    create(id);
                }
                for (String id : containersDeepestFirst()) {
                    addSubregions(id);
                }
                addAddressSpaces();
            } finally {
                system.commit();
            }
            return new MachineMap(system, made);
        }

        /**
         * Every region with subregions, each after every region it contains or aliases (a post-order of the map's
         * graph, walked without recursion). Filling containers in this order means no container is inside
         * another yet when its subregions are added, so each addition's cycle check has no ancestors to walk and
         * loading stays linear in the depth of the map. A cycle through subregions and aliases is refused here.
         */
        private List<String> containersDeepestFirst() {
            HashMap<String, Integer> state = new HashMap<>(); // absent: new; 1: on the walk; 2: done
            ArrayList<String> order = new ArrayList<>();
            ArrayDeque<String> walk = new ArrayDeque<>();
            ArrayDeque<Iterator<String>> edges = new ArrayDeque<>();
            for (String start : specs.keySet()) {
                if (state.containsKey(start)) {
                    continue;
                }
                state.put(start, 1);
                walk.push(start);
                edges.push(edges(start).iterator());
                while (!walk.isEmpty()) {
                    Iterator<String> next = edges.peek();
                    if (next.hasNext()) {
                        String to = next.next();
                        Integer st = state.get(to);
                        if (st == null) {
                            state.put(to, 1);
                            walk.push(to);
                            edges.push(edges(to).iterator());
                        } else if (st == 1) {
                            throw new MapFormatException(where(walk.peek(), null) + "cycle " + cycle(walk, to));
                        }
                    } else {
                        String done = walk.pop();
                        edges.pop();
                        state.put(done, 2);
                        if (specs.get(done).has("subregions")) {
                            order.add(done);
                        }
                    }
                }
            }
            return order;
        }

        /** The ids a region reaches directly: its subregions, then its alias target (all known by now). */
        private List<String> edges(String id) {
            ArrayList<String> out = new ArrayList<>();
            JsonNode subs = specs.get(id).get("subregions");
            if (subs != null) {
                for (JsonNode s : subs) {
                    out.add(s.get("region").asText());
                }
            }
            String target = aliasTargets.get(id);
            if (target != null) {
                out.add(target);
            }
            return out;
        }

        /** The ids of a cycle that {@code walk} (innermost first) closes by reaching {@code to} again. */
        private static String cycle(ArrayDeque<String> walk, String to) {
            ArrayList<String> ids = new ArrayList<>();
            for (String id : walk) {
                ids.add(id);
                if (id.equals(to)) {
                    break;
                }
            }
            Collections.reverse(ids);
            return String.join(" -> ", ids) + " -> " + to;
        }

        /** Refuses unknown subregion ids and regions listed in two containers (or twice), before building anything. */
        private void checkContainment() {
            HashMap<String, String> parentOf = new HashMap<>();
            for (Map.Entry<String, JsonNode> e : specs.entrySet()) {
                JsonNode subs = e.getValue().get("subregions");
                if (subs == null) {
                    continue;
                }
                if (!subs.isArray()) {
                    throw new MapFormatException(where(e.getKey(), "subregions") + "expected an array");
                }
                for (int i = 0; i < subs.size(); i++) {
                    JsonNode s = subs.get(i);
                    String field = "subregions[" + i + "].region";
                    String child = text(e.getKey(), field, s.get("region"));
                    if (!specs.containsKey(child)) {
                        throw new MapFormatException(where(e.getKey(), field) + "unknown id \"" + child + "\"");
                    }
                    String prev = parentOf.put(child, e.getKey());
                    if (prev != null) {
                        throw new MapFormatException(where(e.getKey(), field) + "region \"" + child
                                + "\" is already a subregion of \"" + prev + "\"");
                    }
                }
            }
        }

        /**
         * Makes region {@code id} unless it is made, and first the regions its alias target chain leads to, the far
         * end first (in a loop: a chain may be as long as the map).
         */
        private void create(String id) {
            ArrayList<String> chain = new ArrayList<>();
            HashSet<String> onChain = new HashSet<>();
            for (String at = id; at != null && !made.containsKey(at); at = aliasTargetId(at)) {
                if (!onChain.add(at)) {
                    throw new MapFormatException(where(at, "alias.target") + "alias cycle "
                            + String.join(" -> ", chain.subList(chain.indexOf(at), chain.size())) + " -> " + at);
                }
                chain.add(at);
            }
            for (int i = chain.size() - 1; i >= 0; i--) {
                createOne(chain.get(i));
            }
        }

        /** The id an alias region's spec targets (checked to exist), or null for any other kind of region. */
        private String aliasTargetId(String id) {
            JsonNode spec = specs.get(id);
            JsonNode alias = spec.get("alias");
            if (!"alias".equals(spec.path("kind").asText()) || alias == null || !alias.isObject()) {
                return null; // createOne reports what is wrong with it
            }
            String targetId = text(id, "alias.target", alias.get("target"));
            if (!specs.containsKey(targetId)) {
                throw new MapFormatException(where(id, "alias.target") + "unknown id \"" + targetId + "\"");
            }
            return targetId;
        }

        /** Makes region {@code id}, whose alias target, if it has one, is made. */
        private void createOne(String id) {
            MemoryRegion r;
            JsonNode spec = specs.get(id);
            checkFields("region \"" + id + "\"", spec, "name", "kind", "size", "readonly", "nonvolatile", "unmergeable",
                    "enabled", "romd", "alias", "ops", "subregions");
            String name = text(id, "name", spec.get("name"));
            String kindName = text(id, "kind", spec.get("kind"));
            MemoryRegion.Kind kind = MemoryRegion.Kind.fromMapName(kindName);
            if (kind == null) {
                throw new MapFormatException(where(id, "kind") + "unknown kind \"" + kindName
                        + "\" (expected container, ram, rom, rom-device, ram-device, io, alias, iommu or reservation)");
            }
            long size = HexNumbers.size(where(id, "size"), spec.get("size"));
            if (kind != MemoryRegion.Kind.ALIAS && spec.has("alias")) {
                throw new MapFormatException(where(id, "alias") + "only regions of kind alias have an alias field");
            }
            if (kind != MemoryRegion.Kind.ROM_DEVICE && spec.has("romd")) {
                throw new MapFormatException(where(id, "romd") + "only rom-device regions have a romd mode");
            }
            if (kind != MemoryRegion.Kind.IO && kind != MemoryRegion.Kind.ROM_DEVICE && spec.has("ops")) {
                throw new MapFormatException(where(id, "ops") + "only io and rom-device regions have ops");
            }
            try {
                r = switch (kind) {
                    case CONTAINER -> system.container(name, size);
                    case RAM -> system.ram(name, size);
                    case ROM -> system.rom(name, size);
                    case RAM_DEVICE -> system.ramDevice(name, size);
                    case ROM_DEVICE -> system.romDevice(name, size, devices.ops(id, name, opsSpec(id, spec.get("ops"))));
                    case IO -> system.io(name, size, devices.ops(id, name, opsSpec(id, spec.get("ops"))));
                    case IOMMU -> system.iommu(name, size, devices.iommu(id, name));
                    case RESERVATION -> system.reservation(name, size);
                    case ALIAS -> {
                        JsonNode alias = spec.get("alias");
                        if (alias == null || !alias.isObject()) {
                            throw new MapFormatException(where(id, "alias") + "an alias needs { \"target\": id, \"offset\": hex }");
                        }
                        checkFields("region \"" + id + "\" alias", alias, "target", "offset");
                        String targetId = aliasTargetId(id);
                        long offset = alias.has("offset") ? HexNumbers.address(where(id, "alias.offset"), alias.get("offset")) : 0;
                        aliasTargets.put(id, targetId);
                        yield system.alias(name, made.get(targetId), offset, size);
                    }
                };
                if (flag(id, spec, "readonly", false)) {
                    r.setReadonly(true);
                }
                if (flag(id, spec, "nonvolatile", false)) {
                    r.setNonvolatile(true);
                }
                if (flag(id, spec, "unmergeable", false)) {
                    r.setUnmergeable(true);
                }
                if (!flag(id, spec, "enabled", true)) {
                    r.setEnabled(false);
                }
                if (kind == MemoryRegion.Kind.ROM_DEVICE && !flag(id, spec, "romd", true)) {
                    r.setRomd(false);
                }
            } catch (IllegalArgumentException | IllegalStateException e) {
                if (e instanceof MapFormatException) {
                    throw e;
                }
                throw new MapFormatException(where(id, null) + e.getMessage(), e);
            }
            made.put(id, r);
        }

        private void addSubregions(String id) {
            JsonNode subs = specs.get(id).get("subregions");
            if (subs == null) {
                return;
            }
            MemoryRegion container = made.get(id);
            for (int i = 0; i < subs.size(); i++) {
                JsonNode s = subs.get(i);
                String at = "subregions[" + i + "]";
                if (!s.isObject()) {
                    throw new MapFormatException(where(id, at) + "expected { \"region\": id, \"addr\": hex, \"priority\": int }");
                }
                checkFields("region \"" + id + "\" " + at, s, "region", "addr", "priority");
                MemoryRegion child = made.get(s.get("region").asText());
                long addr = HexNumbers.address(where(id, at + ".addr"), s.get("addr"));
                int priority = 0;
                JsonNode p = s.get("priority");
                if (p != null) {
                    if (!p.isIntegralNumber() || !p.canConvertToInt()) {
                        throw new MapFormatException(where(id, at + ".priority") + "expected a 32-bit integer, found " + p);
                    }
                    priority = p.intValue();
                }
                try {
                    container.addSubregionOverlap(addr, child, priority);
                } catch (IllegalArgumentException e) {
                    throw new MapFormatException(where(id, at + ".region") + e.getMessage(), e);
                }
            }
        }

        private void addAddressSpaces() {
            JsonNode list = root.get("addressSpaces");
            if (list == null || !list.isArray()) {
                throw new MapFormatException("addressSpaces: expected an array of { \"name\": text, \"root\": id }");
            }
            for (int i = 0; i < list.size(); i++) {
                JsonNode as = list.get(i);
                String at = "addressSpaces[" + i + "]";
                if (!as.isObject()) {
                    throw new MapFormatException(at + ": expected { \"name\": text, \"root\": id }");
                }
                checkFields(at, as, "name", "root", "pageBits");
                JsonNode nameNode = as.get("name");
                if (nameNode == null || !nameNode.isTextual()) {
                    throw new MapFormatException(at + ".name: expected a string, found " + nameNode);
                }
                JsonNode rootNode = as.get("root");
                if (rootNode == null || !rootNode.isTextual() || !made.containsKey(rootNode.asText())) {
                    throw new MapFormatException(at + ".root: unknown id " + rootNode);
                }
                int pageBits = defaultPageBits;
                JsonNode pb = as.get("pageBits");
                if (pb != null) {
                    if (!pb.isIntegralNumber() || !pb.canConvertToInt()) {
                        throw new MapFormatException(at + ".pageBits: expected an integer, found " + pb);
                    }
                    pageBits = pb.intValue();
                }
                try {
                    system.addressSpace(nameNode.asText(), made.get(rootNode.asText()), pageBits);
                } catch (IllegalArgumentException e) {
                    if (pb == null) {
                        // The caller's default, not the map, is at fault.
                        throw new IllegalArgumentException("defaultPageBits=" + defaultPageBits + " (for " + at
                                + ", which gives no pageBits): " + e.getMessage(), e);
                    }
                    throw new MapFormatException(at + ".pageBits: " + e.getMessage(), e);
                }
            }
        }

        private OpsSpec opsSpec(String id, JsonNode ops) {
            if (ops == null) {
                return OpsSpec.DEFAULT;
            }
            if (!ops.isObject()) {
                throw new MapFormatException(where(id, "ops") + "expected an object");
            }
            checkFields("region \"" + id + "\" ops", ops, "endianness", "valid", "impl");
            DeviceEndian endian = DeviceEndian.NATIVE;
            JsonNode e = ops.get("endianness");
            if (e != null) {
                endian = switch (e.asText()) {
                    case "native" -> DeviceEndian.NATIVE;
                    case "little" -> DeviceEndian.LITTLE;
                    case "big" -> DeviceEndian.BIG;
                    default -> throw new MapFormatException(where(id, "ops.endianness")
                            + "expected native, little or big, found " + e);
                };
            }
            return new OpsSpec(endian, accessSizes(id, "ops.valid", ops.get("valid")),
                    accessSizes(id, "ops.impl", ops.get("impl")));
        }

        private MemoryRegionOps.AccessSizes accessSizes(String id, String field, JsonNode n) {
            if (n == null) {
                return MemoryRegionOps.AccessSizes.DEFAULT;
            }
            if (!n.isObject()) {
                throw new MapFormatException(where(id, field) + "expected { \"min\": n, \"max\": n, \"unaligned\": bool }");
            }
            checkFields("region \"" + id + "\" " + field, n, "min", "max", "unaligned");
            try {
                return new MemoryRegionOps.AccessSizes(smallInt(id, field + ".min", n.get("min")),
                        smallInt(id, field + ".max", n.get("max")),
                        n.has("unaligned") && bool(id, field + ".unaligned", n.get("unaligned")));
            } catch (IllegalArgumentException ex) {
                throw new MapFormatException(where(id, field) + ex.getMessage(), ex);
            }
        }

        private static int smallInt(String id, String field, JsonNode n) {
            if (n == null) {
                return 0;
            }
            if (!n.isIntegralNumber() || !n.canConvertToInt()) {
                throw new MapFormatException(where(id, field) + "expected 1, 2, 4 or 8, found " + n);
            }
            return n.intValue();
        }

        private static boolean flag(String id, JsonNode spec, String field, boolean dflt) {
            JsonNode n = spec.get(field);
            return n == null ? dflt : bool(id, field, n);
        }

        private static boolean bool(String id, String field, JsonNode n) {
            if (!n.isBoolean()) {
                throw new MapFormatException(where(id, field) + "expected true or false, found " + n);
            }
            return n.booleanValue();
        }

        private static String text(String id, String field, JsonNode n) {
            if (n == null || !n.isTextual()) {
                throw new MapFormatException(where(id, field) + "expected a string, found " + n);
            }
            return n.asText();
        }

        private static void checkFields(String what, JsonNode node, String... allowed) {
            for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                boolean ok = false;
                for (String a : allowed) {
                    ok |= a.equals(f);
                }
                if (!ok) {
                    throw new MapFormatException(what + ": unknown field \"" + f + "\" (known: "
                            + String.join(", ", allowed) + ")");
                }
            }
        }

        private static String where(String id, String field) {
            return "region \"" + id + "\"" + (field == null ? "" : " field " + field) + ": ";
        }
    }

    // ---------------------------------------------------------------- writing

    /**
     * The map of everything reachable from {@code system}'s address spaces (through subregions, alias targets and
     * the containers of what is reached), as JSON. Ids are the regions' names, made unique with a {@code #n} suffix
     * where names repeat. Subregions are listed in the order they were added, so reading the map back gives the same
     * tree.
     */
    public static String write(MemorySystem system) {
        system.begin();
        try {
            IdentityHashMap<MemoryRegion, String> ids = new IdentityHashMap<>();
            ArrayList<MemoryRegion> order = new ArrayList<>();
            HashSet<String> used = new HashSet<>();
            List<AddressSpace> spaces = system.addressSpaces();
            for (AddressSpace as : spaces) {
                collect(as.root(), ids, order, used);
            }
            ObjectNode rootNode = JSON.createObjectNode();
            rootNode.put("format", FORMAT);
            ObjectNode regionsNode = rootNode.putObject("regions");
            for (MemoryRegion r : order) {
                regionsNode.set(ids.get(r), regionNode(r, ids));
            }
            ArrayNode asNode = rootNode.putArray("addressSpaces");
            for (AddressSpace as : spaces) {
                ObjectNode n = asNode.addObject();
                n.put("name", as.name());
                n.put("root", ids.get(as.root()));
                if (as.pageBits() != MemorySystem.DEFAULT_PAGE_BITS) {
                    n.put("pageBits", as.pageBits());
                }
            }
            return JSON.writeValueAsString(rootNode) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("writing map JSON", e);
        } finally {
            system.commit();
        }
    }

    /**
     * Gives {@code from} and everything it reaches an id, in the order of a depth-first walk (the region, its
     * subregions in added order, then its alias target), with an explicit stack: maps may be deeper than the
     * thread's stack.
     */
    private static void collect(MemoryRegion from, IdentityHashMap<MemoryRegion, String> ids,
                                ArrayList<MemoryRegion> order, HashSet<String> used) {
        ArrayDeque<MemoryRegion> work = new ArrayDeque<>();
        work.push(from);
        while (!work.isEmpty()) {
            MemoryRegion r = work.pop();
            if (ids.containsKey(r)) {
                continue;
            }
            String id = r.name();
            for (int n = 2; !used.add(id); n++) {
                id = r.name() + "#" + n;
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
        ArrayList<MemoryRegion> subs = new ArrayList<>(r.subregions());
        subs.sort((a, b) -> Long.compare(a.addSequence(), b.addSequence()));
        return subs;
    }

    private static ObjectNode regionNode(MemoryRegion r, IdentityHashMap<MemoryRegion, String> ids) {
        ObjectNode n = JSON.createObjectNode();
        n.put("name", r.name());
        n.put("kind", r.kind().mapName());
        n.put("size", HexNumbers.formatSize(r.size()));
        if (r.isReadonly()) {
            n.put("readonly", true);
        }
        if (r.isNonvolatile()) {
            n.put("nonvolatile", true);
        }
        if (r.isUnmergeable()) {
            n.put("unmergeable", true);
        }
        if (!r.isEnabled()) {
            n.put("enabled", false);
        }
        if (r.kind() == MemoryRegion.Kind.ROM_DEVICE && !r.isRomdMode()) {
            n.put("romd", false);
        }
        if (r.alias() != null) {
            ObjectNode a = n.putObject("alias");
            a.put("target", ids.get(r.alias()));
            a.put("offset", HexNumbers.formatAddress(r.aliasOffset()));
        }
        if ((r.kind() == MemoryRegion.Kind.IO || r.kind() == MemoryRegion.Kind.ROM_DEVICE) && r.ops() != null) {
            ObjectNode ops = opsNode(r.ops());
            if (!ops.isEmpty()) {
                n.set("ops", ops);
            }
        }
        List<MemoryRegion> subs = addedOrder(r);
        if (!subs.isEmpty()) {
            ArrayNode list = n.putArray("subregions");
            for (MemoryRegion s : subs) {
                ObjectNode sn = list.addObject();
                sn.put("region", ids.get(s));
                sn.put("addr", HexNumbers.formatAddress(s.addr()));
                sn.put("priority", s.priority());
            }
        }
        return n;
    }

    private static ObjectNode opsNode(MemoryRegionOps ops) {
        ObjectNode n = JSON.createObjectNode();
        if (ops.endianness() != DeviceEndian.NATIVE) {
            n.put("endianness", ops.endianness() == DeviceEndian.LITTLE ? "little" : "big");
        }
        putSizes(n, "valid", ops.valid());
        putSizes(n, "impl", ops.impl());
        return n;
    }

    private static void putSizes(ObjectNode parent, String field, MemoryRegionOps.AccessSizes s) {
        if (s.equals(MemoryRegionOps.AccessSizes.DEFAULT)) {
            return;
        }
        ObjectNode n = parent.putObject(field);
        if (s.minAccessSize() != 0) {
            n.put("min", s.minAccessSize());
        }
        if (s.maxAccessSize() != 0) {
            n.put("max", s.maxAccessSize());
        }
        if (s.unaligned()) {
            n.put("unaligned", true);
        }
    }

    @Override
    public String toString() {
        return "MachineMap[" + regions.size() + " regions, " + Objects.toString(system.addressSpaces().size()) + " address spaces]";
    }
}
