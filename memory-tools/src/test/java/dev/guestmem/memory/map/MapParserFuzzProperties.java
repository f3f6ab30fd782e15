package dev.guestmem.memory.map;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.mtree.MtreePrinter;
import dev.guestmem.memory.testing.Fuzz;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Fuzzing of the {@code guestmem-map/1} reader, the parser a user feeds: random maps built from the format's parts
 * (kinds, sizes at the edges, subregions and aliases pointing anywhere, cycles, address spaces) and mutations of the
 * corpus in {@code src/test/resources/fuzz/map} and of the QEMU machines' maps. Forbidden outcomes: any exception but
 * {@link MapFormatException}, a printer that fails on a map that loaded, a saved map that does not load back to the
 * same tree, and more heap than {@link Fuzz#withinHeapBound} allows. A hang would keep the suite from finishing.
 *
 * <p>The default run tries 300 inputs per property; a long run: {@code ./guestmem test -pl memory-tools -am
 * -Dtest='*FuzzProperties' -Dsurefire.failIfNoSpecifiedTests=false -Djqwik.tries.default=200000}. A failing input is
 * printed; keep it as a file under {@code fuzz/map} (the corpus) with the fix.
 */
class MapParserFuzzProperties {
    private static final String[] KINDS = {"container", "ram", "rom", "rom-device", "ram-device", "io", "alias", "iommu",
            "reservation", "disk"};
    private static final String[] SIZES = {"0x0", "0x1", "0x1000", "0x10000", "0x100000000", "0xffffffffffffffff",
            "0x10000000000000000", "0x10000000000000001", "0x8000000000000000", "0x" + "0".repeat(30) + "1", "0x",
            "4096"};

    @Property
    void mutatedCorpusMapsAreLoadedOrRefusedWithOneMessage(@ForAll("mutatedMaps") String json) {
        check(json);
    }

    @Property
    void randomMapsAreLoadedOrRefusedWithOneMessage(@ForAll("randomMaps") String json) {
        check(json);
    }

    /** Every file of the corpus, as it is. */
    @Example
    void theCorpusItself() {
        for (String json : corpus()) {
            check(json);
        }
    }

    private static void check(String json) {
        String tree = Fuzz.withinHeapBound(json, () -> {
            try {
                MachineMap map = MachineMap.parse(json, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES);
                MtreePrinter.flatViews(map.system(), true);
                String printed = MtreePrinter.mtree(map.system(), true);
                String saved = MachineMap.write(map.system());
                assertEquals(printed, MtreePrinter.mtree(MachineMap.parse(saved, MemorySystem.LAYOUT_ONLY,
                        MachineMap.UNIMPLEMENTED_DEVICES).system(), true), "saved and loaded again");
                return printed;
            } catch (MapFormatException e) {
                if (e.getMessage() == null || e.getMessage().isBlank() || e.getMessage().contains("\n")) {
                    throw new AssertionError("not one line: [" + e.getMessage() + "]", e);
                }
                return null;
            }
        });
        assert tree == null || tree.startsWith("address-space: ") || tree.isEmpty() : tree;
    }

    static List<String> corpus() {
        ArrayList<String> seeds = new ArrayList<>(Fuzz.resources("/fuzz/map/small-pc.json",
                "/fuzz/map/every-kind.json", "/fuzz/map/aliases-of-aliases.json",
                // Found by this fuzzing: an address space whose root is inside a container lost the container
                // (and so its address and priority) when saved.
                "/fuzz/map/root-inside-a-container.json",
                // Found by this fuzzing: a number or a string for the whole map was an IOException (the reader
                // closed at the end of the number) or "text after the end" (the string read lazily).
                "/fuzz/map/top-level-number.json", "/fuzz/map/top-level-string.json"));
        for (String machine : new String[] {"x86_64-pc", "x86_64-q35", "arm-vexpress-a9", "riscv64-virt"}) {
            seeds.addAll(Fuzz.resources("/qemu-7.2/" + machine + "/map.json"));
        }
        return seeds;
    }

    @Provide
    Arbitrary<String> mutatedMaps() {
        return Fuzz.mutationsOf(corpus());
    }

    @Provide
    Arbitrary<String> randomMaps() {
        return Arbitraries.randomValue(MapParserFuzzProperties::randomMap);
    }

    /** A map of up to 12 regions whose fields are mostly right, and sometimes not. */
    private static String randomMap(Random random) {
        int n = 1 + random.nextInt(12);
        StringBuilder sb = new StringBuilder("{ \"format\": \"guestmem-map/1\", \"regions\": {");
        for (int i = 0; i < n; i++) {
            String kind = KINDS[random.nextInt(random.nextInt(10) == 0 ? KINDS.length : KINDS.length - 1)];
            sb.append(i == 0 ? "" : ",").append(" \"r").append(i).append("\": { \"name\": \"n")
                    .append(random.nextInt(4)).append("\", \"kind\": \"").append(kind).append("\", \"size\": \"")
                    .append(SIZES[random.nextInt(random.nextInt(4) == 0 ? SIZES.length : 7)]).append('"');
            if (random.nextInt(6) == 0) {
                sb.append(", \"enabled\": ").append(random.nextBoolean());
            }
            if (random.nextInt(8) == 0) {
                sb.append(", \"readonly\": true");
            }
            if (kind.equals("alias") || random.nextInt(20) == 0) {
                sb.append(", \"alias\": { \"target\": \"r").append(random.nextInt(n + 1)).append("\", \"offset\": \"0x")
                        .append(Long.toHexString(random.nextInt(3) == 0 ? random.nextLong() : random.nextInt(0x2000)))
                        .append("\" }");
            }
            if (kind.equals("container") || random.nextInt(20) == 0) {
                sb.append(", \"subregions\": [");
                int subs = random.nextInt(4);
                for (int s = 0; s < subs; s++) {
                    sb.append(s == 0 ? "" : ",").append(" { \"region\": \"r").append(random.nextInt(n + 1))
                            .append("\", \"addr\": \"0x").append(Long.toHexString(random.nextInt(4) == 0
                                    ? random.nextLong() : random.nextInt(0x4000) & ~0xff))
                            .append("\", \"priority\": ").append(random.nextInt(5) - 2).append(" }");
                }
                sb.append(" ]");
            }
            sb.append(" }");
        }
        sb.append(" }, \"addressSpaces\": [ { \"name\": \"memory\", \"root\": \"r").append(random.nextInt(n))
                .append('"');
        if (random.nextInt(5) == 0) {
            sb.append(", \"pageBits\": ").append(random.nextInt(30));
        }
        sb.append(" } ] }");
        return sb.toString();
    }
}
