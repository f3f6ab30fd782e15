package dev.guestmem.memory.mtree;

import dev.guestmem.memory.MemorySystem;
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
 * Fuzzing of the {@code info mtree} importer, the parser fed with text from QEMU (or from anywhere): mutations of the
 * QEMU 7.2 dumps and of the corpus in {@code src/test/resources/fuzz/mtree}, and random well-formed dumps (nested
 * regions of every type word, aliases to sections that may or may not exist, overflow marks, disabled regions).
 * Forbidden outcomes: any exception but {@link IllegalArgumentException}, a message that is not one line starting
 * with the line number, an import that does not print back, and more heap than {@link Fuzz#withinHeapBound} allows.
 * Long run: {@code -Djqwik.tries.default=200000}, as for {@code MapParserFuzzProperties}.
 */
class MtreeImporterFuzzProperties {
    private static final String[] TYPES = {"ram", "rom", "romd", "ramd", "i/o", "nv-ram"};

    @Property
    void mutatedDumpsAreImportedOrRefusedWithOneMessage(@ForAll("mutatedDumps") String dump) {
        check(dump);
    }

    @Property
    void randomDumpsAreImportedOrRefusedWithOneMessage(@ForAll("randomDumps") String dump) {
        check(dump);
    }

    @Example
    void theCorpusItself() {
        for (String dump : corpus()) {
            check(dump);
        }
    }

    private static void check(String dump) {
        Fuzz.withinHeapBound(dump, () -> {
            MemorySystem system;
            try {
                system = QemuMtreeImporter.importToSystem(dump);
            } catch (IllegalArgumentException e) {
                String m = e.getMessage();
                if (m == null || !m.matches("line \\d+: [^\\n]+")) {
                    throw new AssertionError("not one line naming the line: [" + m + "]", e);
                }
                return null;
            }
            String printed = MtreePrinter.mtree(system, true);
            MtreePrinter.flatViews(system, true);
            // What the importer built prints back as the same tree when imported again.
            assertEquals(printed, MtreePrinter.mtree(QemuMtreeImporter.importToSystem(printed), true));
            return printed;
        });
    }

    static List<String> corpus() {
        ArrayList<String> seeds = new ArrayList<>(Fuzz.resources("/fuzz/mtree/overflow.txt",
                "/fuzz/mtree/aliases.txt",
                // Found by this fuzzing: RAM larger than the ram_addr space left was an IllegalStateException
                // from the core instead of a refusal naming the line.
                "/fuzz/mtree/ram-addr-space-full.txt"));
        for (String machine : new String[] {"x86_64-pc", "x86_64-q35-devices", "arm-vexpress-a9", "aarch64-virt"}) {
            seeds.addAll(Fuzz.resources("/qemu-7.2/" + machine + "/mtree-D.txt"));
        }
        return seeds;
    }

    @Provide
    Arbitrary<String> mutatedDumps() {
        return Fuzz.mutationsOf(corpus());
    }

    @Provide
    Arbitrary<String> randomDumps() {
        return Arbitraries.randomValue(MtreeImporterFuzzProperties::randomDump);
    }

    /** An address space of up to 20 lines, nested at random, plus sections for some of the alias targets. */
    private static String randomDump(Random random) {
        StringBuilder sb = new StringBuilder("address-space: memory\n");
        int lines = 1 + random.nextInt(20);
        int depth = 1;
        ArrayList<String> targets = new ArrayList<>();
        for (int i = 0; i < lines; i++) {
            line(sb, random, depth, "r" + i, targets);
            depth = Math.max(1, Math.min(depth + random.nextInt(3) - 1, i == 0 ? 2 : depth + 1));
            if (i == 0) {
                depth = 2;
            }
        }
        sb.append('\n');
        for (String target : targets) {
            if (random.nextInt(5) > 0) {
                sb.append("memory-region: ").append(target).append('\n');
                line(sb, random, 1, target, new ArrayList<>());
                sb.append('\n');
            }
        }
        return sb.toString();
    }

    private static void line(StringBuilder sb, Random random, int depth, String name, List<String> targets) {
        long start = random.nextInt(4) == 0 ? random.nextLong() : (random.nextInt(64) << 12);
        long size = random.nextInt(5) == 0 ? random.nextLong() : 1 + random.nextInt(0x4000);
        long end = start + size - 1;
        boolean overflow = Long.compareUnsigned(end, start) < 0;
        if (overflow && random.nextBoolean()) {
            sb.append("[DETECTED OVERFLOW!] ");
        }
        sb.append("  ".repeat(depth)).append(String.format("%016x-%016x", start, end)).append(" (prio ")
                .append(random.nextInt(5) - 2).append(", ").append(TYPES[random.nextInt(TYPES.length)]).append("): ");
        if (random.nextInt(4) == 0) {
            String target = "t" + random.nextInt(4);
            targets.add(target);
            long offset = random.nextInt(4) << 12;
            sb.append("alias ").append(name).append(" @").append(target).append(' ')
                    .append(String.format("%016x-%016x", offset, offset + size - 1));
        } else {
            sb.append(name);
        }
        sb.append(random.nextInt(6) == 0 ? " [disabled]\n" : "\n");
    }
}
