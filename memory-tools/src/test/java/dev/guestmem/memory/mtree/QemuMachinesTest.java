package dev.guestmem.memory.mtree;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.map.MachineMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Real QEMU 7.2 as the oracle. For each machine under {@code src/test/resources/qemu-7.2/} (captured by
 * {@code scripts/capture-qemu-mtree.sh}; the exact command is in each {@code command.txt}):
 * <ul>
 *   <li>importing QEMU's {@code info mtree -D} and printing the result gives back QEMU's {@code info mtree -D} and
 *   {@code info mtree} text;</li>
 *   <li>the committed {@code map.json} is exactly the import plus the hand fixes in {@code fixes.json} (the facts the
 *   dump cannot show, each with the QEMU source it comes from);</li>
 *   <li>rendering that map reproduces QEMU's {@code info mtree -f}: every flat view, range for range, with the same
 *   address spaces sharing each view;</li>
 *   <li>the dispatch of each view prints as QEMU's {@code info mtree -f -d}, section for section and node for
 *   node.</li>
 * </ul>
 * Blocks are compared as sets: QEMU orders address-space groups and flat views by a pointer hash, and lists the
 * address spaces of a flat view in creation order, which the dump does not reveal. Everything inside a block is
 * compared line for line.
 *
 * <p>{@code -Dguestmem.regenerateMaps=true} rewrites each {@code map.json} from the dump and the fixes.
 */
class QemuMachinesTest {
    private static final Path DATA = Path.of("src/test/resources/qemu-7.2");
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @ParameterizedTest
    @ValueSource(strings = {"x86_64-pc", "x86_64-q35", "x86_64-q35-devices", "aarch64-virt", "arm-vexpress-a9",
            "riscv64-virt", "x86_64-pc-seabios", "x86_64-q35-devices-seabios"})
    void importPrintsQemusTree(String machine) {
        MemorySystem imported = QemuMtreeImporter.importToSystem(read(machine, "mtree-D.txt"));
        assertEquals(treeBlocks(read(machine, "mtree-D.txt")), treeBlocks(MtreePrinter.mtree(imported, true)));
        assertEquals(treeBlocks(read(machine, "mtree.txt")), treeBlocks(MtreePrinter.mtree(imported, false)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"x86_64-pc", "x86_64-q35", "x86_64-q35-devices", "aarch64-virt", "arm-vexpress-a9",
            "riscv64-virt", "x86_64-pc-seabios", "x86_64-q35-devices-seabios"})
    void mapIsTheImportPlusTheFixes(String machine) throws IOException {
        String expected = applyFixes(QemuMtreeImporter.importDump(read(machine, "mtree-D.txt")), read(machine, "fixes.json"));
        Path map = DATA.resolve(machine).resolve("map.json");
        if (Boolean.getBoolean("guestmem.regenerateMaps")) {
            Files.writeString(map, expected);
        }
        assertEquals(expected, Files.readString(map), "map.json drifted from import + fixes.json; "
                + "rerun with -Dguestmem.regenerateMaps=true if the change is intended");
    }

    @ParameterizedTest
    @ValueSource(strings = {"x86_64-pc", "x86_64-q35", "x86_64-q35-devices", "aarch64-virt", "arm-vexpress-a9",
            "riscv64-virt", "x86_64-pc-seabios", "x86_64-q35-devices-seabios"})
    void mapRendersQemusFlatViews(String machine) throws IOException {
        MachineMap map = MachineMap.read(DATA.resolve(machine).resolve("map.json"), MemorySystem.LAYOUT_ONLY);
        assertEquals(flatViewBlocks(read(machine, "mtree-f.txt")), flatViewBlocks(MtreePrinter.flatViews(map.system())));
        assertEquals(treeBlocks(read(machine, "mtree-D.txt")), treeBlocks(MtreePrinter.mtree(map.system(), true)));
    }

    /**
     * QEMU's {@code info mtree -f -d}: the dispatch of every flat view, sections and nodes numbered as QEMU numbers
     * them, line for line. Only QEMU's {@code [MRU]} mark is stripped (from both sides): it names the section of the
     * last lookup before the dump, which depends on what the machine did, not on the map. The page size is the
     * target's ({@code TARGET_PAGE_BITS}): 4 KiB, except 1 KiB on the 32-bit Arm board, as the size of its subpage
     * sections in the dump shows.
     */
    @ParameterizedTest
    @ValueSource(strings = {"x86_64-pc", "x86_64-q35", "x86_64-q35-devices", "aarch64-virt", "arm-vexpress-a9",
            "riscv64-virt", "x86_64-pc-seabios", "x86_64-q35-devices-seabios"})
    void mapPrintsQemusDispatch(String machine) throws IOException {
        int pageBits = machine.equals("arm-vexpress-a9") ? 10 : 12;
        MachineMap map = MachineMap.read(DATA.resolve(machine).resolve("map.json"), MemorySystem.LAYOUT_ONLY, pageBits);
        assertEquals(flatViewBlocks(withoutMru(read(machine, "mtree-f-d.txt"))),
                flatViewBlocks(withoutMru(MtreePrinter.flatViews(map.system(), true))));
    }

    /** The page size is part of what is compared: the Arm board's dump does not come out of 4 KiB pages. */
    @Test
    void dispatchDependsOnThePageSize() throws IOException {
        MachineMap map = MachineMap.read(DATA.resolve("arm-vexpress-a9").resolve("map.json"), MemorySystem.LAYOUT_ONLY);
        assertNotEquals(flatViewBlocks(withoutMru(read("arm-vexpress-a9", "mtree-f-d.txt"))),
                flatViewBlocks(withoutMru(MtreePrinter.flatViews(map.system(), true))));
    }

    private static String withoutMru(String text) {
        return text.replace(" [MRU]", "");
    }

    /**
     * Applies {@code {"<id>": {"<field>": value, "why": "..."}}} to a map's regions; a key {@code "name=<name>"}
     * applies to every region with that name (QEMU repeats names, e.g. thirteen {@code pam-rom} aliases).
     */
    static String applyFixes(String mapJson, String fixesJson) throws IOException {
        ObjectNode map = (ObjectNode) JSON.readTree(mapJson);
        JsonNode fixes = JSON.readTree(fixesJson);
        ObjectNode regions = (ObjectNode) map.get("regions");
        for (Iterator<Map.Entry<String, JsonNode>> it = fixes.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> fix = it.next();
            assertTrue(fix.getValue().hasNonNull("why"), "fix for " + fix.getKey() + " gives no reason");
            List<ObjectNode> targets = new ArrayList<>();
            if (fix.getKey().startsWith("name=")) {
                String name = fix.getKey().substring("name=".length());
                for (JsonNode r : regions) {
                    if (name.equals(r.get("name").asText())) {
                        targets.add((ObjectNode) r);
                    }
                }
            } else if (regions.get(fix.getKey()) instanceof ObjectNode r) {
                targets.add(r);
            }
            assertTrue(!targets.isEmpty(), "fixes.json names " + fix.getKey() + ", which the import does not have");
            for (ObjectNode region : targets) {
                for (Iterator<Map.Entry<String, JsonNode>> f = fix.getValue().fields(); f.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = f.next();
                    if (!e.getKey().equals("why")) {
                        assertTrue(!e.getValue().equals(region.get(e.getKey())), "fix " + fix.getKey() + "."
                                + e.getKey() + " changes nothing: the import already has it");
                        region.set(e.getKey(), e.getValue());
                    }
                }
            }
        }
        return JSON.writeValueAsString(map) + "\n";
    }

    /** The blank-line separated blocks of {@code info mtree}, as a sorted list. */
    static List<String> treeBlocks(String text) {
        ArrayList<String> out = new ArrayList<>();
        for (String b : text.replace("\r\n", "\n").split("\n\n")) {
            if (!b.isBlank()) {
                out.add(b.strip());
            }
        }
        out.sort(null);
        return out;
    }

    /** The flat views of {@code info mtree -f} without their numbers, address-space lines sorted, as a sorted list. */
    static List<String> flatViewBlocks(String text) {
        ArrayList<String> out = new ArrayList<>();
        String[] parts = text.replace("\r\n", "\n").split("FlatView #\\d+\n");
        for (String p : Arrays.copyOfRange(parts, 1, parts.length)) {
            List<String> lines = new ArrayList<>(Arrays.asList(p.stripTrailing().split("\n")));
            List<String> as = new ArrayList<>(lines.stream().filter(l -> l.startsWith(" AS ")).toList());
            as.sort(null);
            lines.removeIf(l -> l.startsWith(" AS "));
            as.addAll(lines);
            out.add(String.join("\n", as));
        }
        out.sort(null);
        return out;
    }

    private static String read(String machine, String file) {
        try {
            return Files.readString(DATA.resolve(machine).resolve(file));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
