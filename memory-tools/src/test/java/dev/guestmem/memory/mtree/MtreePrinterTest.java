package dev.guestmem.memory.mtree;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.StringWriter;
import java.io.Writer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code info mtree -f} and {@code -f -d} text of small maps worked out by hand: the PC example of QEMU's memory API
 * guide ({@code docs/devel/memory.rst}, built range by range in memory-core's {@code MemoryRstExamplesTest}), a
 * subpage with its most recently used section, and one dispatch per page size of a shared view.
 */
class MtreePrinterTest {
    private static final MemoryRegionOps OPS = MemoryRegionOps.builder().build();

    private final MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);

    /**
     * Printing to a {@code Writer} gives the text of the {@code String} forms, and a tree too deep for the tree view
     * is refused before anything is written: here the roots are shallow and only an alias target they reach (printed
     * last, as a {@code memory-region:} section) is too deep.
     */
    @Test
    void printingToAWriterGivesTheSameTextAndWritesNothingForATreeTooDeep() throws IOException {
        MemoryRegion system = sys.container("system", U64.SIZE_2_64);
        system.addSubregion(0, sys.ram("ram", 0x1000));
        sys.addressSpace("memory", system);
        StringWriter tree = new StringWriter();
        MtreePrinter.mtree(sys, true, tree);
        assertEquals(MtreePrinter.mtree(sys, true), tree.toString());
        StringWriter flat = new StringWriter();
        MtreePrinter.flatViews(sys, true, flat);
        assertEquals(MtreePrinter.flatViews(sys, true), flat.toString());

        MemoryRegion chain = sys.container("c0", 0x1000);
        MemoryRegion at = chain;
        for (int i = 1; i < MtreePrinter.MAX_DEPTH; i++) {
            MemoryRegion next = sys.container("c" + i, 0x1000);
            at.addSubregion(0, next);
            at = next;
        }
        system.addSubregion(0x1000, sys.alias("deep", chain, 0, 0x1000));
        MtreePrinter.mtree(sys, false, Writer.nullWriter()); // MAX_DEPTH levels print
        at.addSubregion(0, sys.ram("one-too-many", 0x1000));
        String expected = "region=one-too-many depth=" + (MtreePrinter.MAX_DEPTH + 1) + ": info mtree prints trees up"
                + " to " + MtreePrinter.MAX_DEPTH + " levels deep (its text grows with the square of the depth);"
                + " info mtree -f prints any depth";
        assertEquals(expected, assertThrows(IllegalArgumentException.class,
                () -> MtreePrinter.mtree(sys, false)).getMessage());
        StringWriter refused = new StringWriter();
        assertEquals(expected, assertThrows(IllegalArgumentException.class,
                () -> MtreePrinter.mtree(sys, false, refused)).getMessage());
        assertEquals("", refused.toString(), "nothing written");
    }

    /** The PC example: RAM around the PCI hole, the VGA window showing two video-RAM banks, two BARs. */
    @Test
    void pcExamplePrintsAsQemuWould() {
        MemoryRegion system = sys.container("system", 1L << 48);
        MemoryRegion ram = sys.ram("ram", 0x1_0000_0000L);
        MemoryRegion pci = sys.container("pci", 0x1_0000_0000L);
        MemoryRegion vgaArea = sys.container("vga-area", 0x20000);
        MemoryRegion vram = sys.ram("vram", 0x100_0000);
        vgaArea.addSubregion(0x0000, sys.alias("vga.bank0", vram, 0x10000, 0x8000));
        vgaArea.addSubregion(0x8000, sys.alias("vga.bank1", vram, 0x20000, 0x8000));
        pci.addSubregion(0xa0000, vgaArea);
        pci.addSubregion(0xe100_0000L, vram);
        pci.addSubregion(0xe200_0000L, sys.io("vga-mmio", 0x10000, OPS));
        system.addSubregion(0, sys.alias("lomem", ram, 0, 0xe000_0000L));
        system.addSubregion(0x1_0000_0000L, sys.alias("himem", ram, 0xe000_0000L, 0x2000_0000L));
        system.addSubregionOverlap(0xa0000, sys.alias("vga-window", pci, 0xa0000, 0x20000), 1);
        system.addSubregion(0xe000_0000L, sys.alias("pci-hole", pci, 0xe000_0000L, 0x2000_0000L));
        sys.addressSpace("memory", system);

        assertEquals("""
                FlatView #0
                 AS "memory", root: system
                 Root memory region: system
                  0000000000000000-000000000009ffff (prio 0, ram): ram
                  00000000000a0000-00000000000a7fff (prio 0, ram): vram @0000000000010000
                  00000000000a8000-00000000000affff (prio 0, ram): vram @0000000000020000
                  00000000000b0000-00000000dfffffff (prio 0, ram): ram @00000000000b0000
                  00000000e1000000-00000000e1ffffff (prio 0, ram): vram
                  00000000e2000000-00000000e200ffff (prio 0, i/o): vga-mmio
                  0000000100000000-000000011fffffff (prio 0, ram): ram @00000000e0000000

                """, MtreePrinter.flatViews(sys));
    }

    /**
     * Sections sharing a page: the subpage container prints "(noname)", then the pieces, and the section the last
     * successful lookup found is marked [MRU].
     */
    @Test
    void aSubpageAndTheMostRecentlyUsedSectionPrintAsQemuDoes() {
        MemoryRegion root = sys.container("system", U64.SIZE_2_64);
        root.addSubregion(0x2100, sys.io("a", 0x100, OPS));
        root.addSubregion(0x2400, sys.io("b", 0x300, OPS));
        AddressSpaceDispatch d = AddressSpaceDispatch.of(sys.addressSpace("memory", root));
        assertEquals(2, d.sectionIndex(0x2100));
        assertEquals(3, d.sectionIndex(0x26ff));
        assertEquals(AddressSpaceDispatch.UNASSIGNED, d.sectionIndex(0x2700));
        String dump = MtreePrinter.flatViews(sys, true);
        assertTrue(dump.contains("""
                      #1 @0000000000002000..0000000000002fff (noname) [not dirty]
                      #2 @0000000000002100..00000000000021ff a [ROM]
                      #3 @0000000000002400..00000000000026ff b [watch] [MRU]
                """), dump);
    }

    /** Address spaces of two page sizes share one view: it prints one dispatch per page size. */
    @Test
    void oneViewPrintsADispatchPerPageSize() {
        MemoryRegion root = sys.container("system", U64.SIZE_2_64);
        root.addSubregion(0x1000, sys.ram("ram", 0x1000));
        AddressSpace x86 = sys.addressSpace("x86", root);
        AddressSpace arm = sys.addressSpace("arm", root, 10);
        assertEquals(x86.flatView(), arm.flatView());
        String dump = MtreePrinter.flatViews(sys, true);
        assertTrue(dump.contains("  Dispatch (1024-byte pages)\n") && dump.contains("  Dispatch (4096-byte pages)\n"),
                dump);
    }
}
