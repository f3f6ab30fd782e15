package dev.guestmem.memory.internal.dispatch;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The dispatch's structure on small maps whose tree can be worked out by hand from QEMU's rules, and how dispatches
 * are kept per view and page size.
 */
class AddressSpaceDispatchTest {
    private static final MemoryRegionOps OPS = MemoryRegionOps.builder().build();

    private final MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
    private final MemoryRegion root = sys.container("system", U64.SIZE_2_64);

    /**
     * One page of RAM at 0, 4 KiB pages: setting page 0 allocates one node per level, six in all ([0] top to [5]
     * bottom); compaction then lets the root skip all six levels straight to the bottom node, as in QEMU's dump of
     * the x86 I/O space ({@code ptr=[5] skip=6}). The upper nodes stay allocated, each pointing past the rest.
     */
    @Test
    void aChainOfSingleChildrenIsSkipped() {
        MemoryRegion ram = sys.ram("ram", 0x1000);
        root.addSubregion(0, ram);
        AddressSpaceDispatch d = AddressSpaceDispatch.of(sys.addressSpace("memory", root));
        assertEquals(6, d.levels());
        assertEquals(2, d.sectionCount());
        assertEquals(6, d.nodeCount());
        assertEquals(5, d.rootPtr());
        assertEquals(6, d.rootSkip());
        for (int n = 0; n < 5; n++) {
            assertEquals(5 - n, d.entrySkip(n, 0), "node " + n);
            assertEquals(5, d.entryPtr(n, 0), "node " + n);
            assertEquals(1, d.entrySkip(n, 1));
            assertEquals(AddressSpaceDispatch.PRINTED_NIL, d.entryPtr(n, 1));
        }
        assertEquals(0, d.entrySkip(5, 0));
        assertEquals(1, d.entryPtr(5, 0));
        assertEquals(0, d.entryPtr(5, 1)); // unassigned
        // The skipped levels are checked after the walk: page 2^40 lands on the same leaf but is not RAM's.
        assertEquals(1, d.sectionIndex(0xfff));
        assertEquals(AddressSpaceDispatch.UNASSIGNED, d.sectionIndex(1L << 52));
        assertEquals(AddressSpaceDispatch.UNASSIGNED, d.sectionIndex(0x1000));
    }

    /** A 2^64 region is one leaf per top-level entry it covers: no node below the top is needed. */
    @Test
    void largeAlignedRangesAreStoredHigh() {
        MemoryRegion all = sys.io("all", U64.SIZE_2_64, OPS);
        root.addSubregion(0, all);
        AddressSpaceDispatch d = AddressSpaceDispatch.of(sys.addressSpace("memory", root, 16));
        assertEquals(1, d.nodeCount());
        assertEquals(0, d.rootPtr());
        assertEquals(1, d.rootSkip());
        // 2^48 pages of 64 KiB, 2^45 pages per top-level entry: entries 0..7.
        for (int slot = 0; slot < 8; slot++) {
            assertEquals(0, d.entrySkip(0, slot));
            assertEquals(1, d.entryPtr(0, slot));
        }
        assertEquals(AddressSpaceDispatch.PRINTED_NIL, d.entryPtr(0, 8));
        assertEquals(1, d.sectionIndex(-1L));
        assertEquals(-1L, d.offsetInRegion(1, -1L));
    }

    /**
     * Sections sharing a page: a container section first (QEMU's subpage, printed "(noname)"), then the pieces; the
     * container's table has one entry per granule, here 0x100 bytes.
     */
    @Test
    void sectionsSharingAPageGetASubpage() {
        MemoryRegion a = sys.io("a", 0x100, OPS);
        MemoryRegion b = sys.io("b", 0x300, OPS);
        root.addSubregion(0x2100, a);
        root.addSubregion(0x2400, b);
        AddressSpace as = sys.addressSpace("memory", root);
        AddressSpaceDispatch d = AddressSpaceDispatch.of(as);
        assertEquals(4, d.sectionCount());
        assertTrue(d.isSubpage(1));
        assertNull(d.section(1));
        assertEquals(0x2000, d.sectionFirst(1));
        assertEquals(0x2fff, d.sectionLast(1));
        assertEquals(0x100, d.subpageGranule(1));
        assertEquals(AddressSpaceDispatch.UNASSIGNED, d.sectionIndex(0x20ff));
        assertEquals(2, d.sectionIndex(0x2100));
        assertEquals(2, d.sectionIndex(0x21ff));
        assertEquals(AddressSpaceDispatch.UNASSIGNED, d.sectionIndex(0x2200));
        assertEquals(3, d.sectionIndex(0x2400));
        assertEquals(3, d.sectionIndex(0x26ff));
        assertEquals(AddressSpaceDispatch.UNASSIGNED, d.sectionIndex(0x2700));
        assertSame(b, d.section(3).region());
        assertEquals(0x2ff, d.offsetInRegion(3, 0x26ff));
        assertEquals(3, d.mruSection()); // the last lookup that found something
    }

    /** Address spaces of several page sizes share one view, which carries one dispatch per page size. */
    @Test
    void oneViewCarriesADispatchPerPageSize() {
        root.addSubregion(0x1000, sys.ram("ram", 0x1000));
        AddressSpace x86 = sys.addressSpace("x86", root);
        AddressSpace arm = sys.addressSpace("arm", root, 10);
        FlatView v = x86.flatView();
        assertSame(v, arm.flatView());
        assertArrayEquals(new int[] {10, 12}, v.dispatchPageBits());
        assertSame(AddressSpaceDispatch.of(v, 12), AddressSpaceDispatch.of(x86));
        assertSame(AddressSpaceDispatch.of(v, 10), AddressSpaceDispatch.of(arm));
        assertThrows(IllegalArgumentException.class, () -> AddressSpaceDispatch.of(v, 16));
        assertThrows(IllegalArgumentException.class, () -> sys.addressSpace("bad", root, 7));
        assertThrows(IllegalArgumentException.class, () -> sys.addressSpace("bad", root, 21));
        // A commit builds both for the new view before publishing it.
        root.addSubregion(0x8000, sys.ram("more", 0x400));
        assertArrayEquals(new int[] {10, 12}, x86.flatView().dispatchPageBits());
        assertEquals(2, AddressSpaceDispatch.of(arm).sectionCount() - 1);
        assertEquals(3, AddressSpaceDispatch.of(x86).sectionCount() - 1, "4 KiB: a subpage container for the 1 KiB region");
    }

    /** The unassigned region stays out of every tree. */
    @Test
    void theUnassignedRegionIsNeverMapped() {
        MemoryRegion u = sys.unassignedRegion();
        assertThrows(IllegalArgumentException.class, () -> root.addSubregion(0, u));
        assertThrows(IllegalArgumentException.class, () -> sys.alias("a", u, 0, 0x10));
        assertThrows(IllegalArgumentException.class, () -> sys.addressSpace("u", u));
        assertThrows(IllegalArgumentException.class, () -> u.addSubregion(0, sys.ram("r", 0x10)));
    }
}
