package dev.guestmem.memory.mtree;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.testing.SmallStack;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The importer reads back what the printer writes at the edges: ranges that wrap past 2^64 (QEMU's
 * {@code [DETECTED OVERFLOW!]} lines), dumps deeper than a thread's stack, and alias sections that lead back to
 * themselves.
 */
class ImporterHardeningTest {

    @Test
    void rangesPastTheTopOfTheSpaceComeBack() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = sys.container("system", U64.SIZE_2_64);
        MemoryRegion hi = sys.container("hi", 0x4000);
        hi.addSubregion(0x1000, sys.ram("straddle", 0x2000));
        hi.addSubregion(0x3000, sys.ram("wrapped", 0x1000));
        root.addSubregion(0xffff_ffff_ffff_e000L, hi);
        // Above hi, so that which of the two was added last (which the dump cannot show) does not matter.
        root.addSubregionOverlap(0xffff_ffff_ffff_f000L, sys.alias("past-end", sys.ram("target", 0x2000), 0, 0x2000),
                1);
        sys.addressSpace("memory", root);
        String printed = MtreePrinter.mtree(sys, false);
        assertEquals("""
                address-space: memory
                  0000000000000000-ffffffffffffffff (prio 0, i/o): system
                [DETECTED OVERFLOW!]     ffffffffffffe000-0000000000001fff (prio 0, i/o): hi
                [DETECTED OVERFLOW!]       fffffffffffff000-0000000000000fff (prio 0, ram): straddle
                [DETECTED OVERFLOW!]       0000000000001000-0000000000001fff (prio 0, ram): wrapped
                [DETECTED OVERFLOW!]     fffffffffffff000-0000000000000fff (prio 1, ram): alias past-end @target \
                0000000000000000-0000000000001fff

                memory-region: target
                  0000000000000000-0000000000001fff (prio 0, ram): target

                """, printed);
        MemorySystem back = QemuMtreeImporter.importToSystem(printed);
        assertEquals(printed, MtreePrinter.mtree(back, false));
        assertEquals(MtreePrinter.flatViews(sys), MtreePrinter.flatViews(back));
    }

    @Test
    void aWrappedRangeWithoutTheMarkIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> QemuMtreeImporter.importDump(
                "address-space: memory\n  0000000000001000-0000000000000fff (prio 0, ram): r\n"));
        assertEquals("line 2: range 0000000000001000-0000000000000fff ends before it starts (and the line has no"
                + " [DETECTED OVERFLOW!] mark)", e.getMessage());
    }

    /** 5,000 nested regions (a 25 MB dump) imported on a 256 KiB stack, and printed back the same. */
    @Test
    void dumpsDeeperThanTheStack() throws Exception {
        int depth = 5_000;
        StringBuilder dump = new StringBuilder("address-space: memory\n");
        for (int i = 0; i < depth; i++) {
            dump.append("  ".repeat(i + 1)).append(i == 0 ? "0000000000000000-ffffffffffffffff" :
                            "0000000000000000-0000000000000fff").append(" (prio 0, ")
                    .append(i == depth - 1 ? "ram" : "i/o").append("): c").append(i).append('\n');
        }
        dump.append('\n');
        String text = dump.toString();
        MemorySystem sys = SmallStack.call(() -> QemuMtreeImporter.importToSystem(text));
        assertEquals(text, SmallStack.call(() -> MtreePrinter.mtree(sys, false)));
        String map = SmallStack.call(() -> QemuMtreeImporter.importDump(text));
        assertTrue(map.contains("\"c4999\" : {"), "the deepest region is in the map");
    }

    @Test
    void aliasSectionsThatLeadBackToThemselvesAreRefused() {
        String dump = """
                address-space: memory
                  0000000000000000-0000000000000fff (prio 0, ram): alias a @b 0000000000000000-0000000000000fff

                memory-region: b
                  0000000000000000-0000000000000fff (prio 0, ram): alias b @a 0000000000000000-0000000000000fff

                memory-region: a
                  0000000000000000-0000000000000fff (prio 0, ram): alias a @b 0000000000000000-0000000000000fff

                """;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> QemuMtreeImporter.importDump(dump));
        assertTrue(e.getMessage().matches("line \\d+: alias \"[ab]\" reaches itself through its target \"[ab]\""),
                e.getMessage());
    }
}
