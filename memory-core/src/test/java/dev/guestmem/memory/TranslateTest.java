package dev.guestmem.memory;

import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * {@link AddressSpace#translate}: QEMU's {@code address_space_translate} on hand-made maps, at section ends, across
 * pages and at the top of the 64-bit space. The rule for the length, from QEMU's
 * {@code address_space_translate_internal}: RAM (and ROM, and RAM devices) is clipped at the end of the dispatch
 * section that holds the address, and a range that begins or ends inside a page is split at that page's edge into
 * separate sections; anything else keeps the length asked for.
 */
class TranslateTest {
    private static final MemoryRegionOps OPS = MemoryRegionOps.builder().build();
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    private final MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
    private final MemoryRegion root = sys.container("system", U64.SIZE_2_64);

    private static void assertTranslation(MemoryRegion region, long xlat, long len, boolean readonly, Translation t) {
        assertEquals(new Translation(region, xlat, len, readonly), t);
    }

    @Test
    void ramIsClippedAtItsSectionEnd() {
        MemoryRegion ram = sys.ram("ram", 0x10000);
        root.addSubregion(0x800, sys.alias("window", ram, 0x100, 0x2800)); // 0x800..0x2fff -> ram 0x100..
        AddressSpace as = sys.addressSpace("memory", root);
        // 0x800..0xfff is a head subpage: the piece ends at the page edge.
        assertTranslation(ram, 0x200, 0x700, false, as.translate(0x900, 0x1000, false, ATTRS));
        assertTranslation(ram, 0x200, 0x10, false, as.translate(0x900, 0x10, true, ATTRS));
        // 0x1000..0x2fff is one section of two pages: an access may cross the page edge inside it.
        assertTranslation(ram, 0x18f8, 0x10, false, as.translate(0x1ff8, 0x10, false, ATTRS));
        assertTranslation(ram, 0x900, 0x2000, false, as.translate(0x1000, 0x5000, false, ATTRS));
        assertTranslation(ram, 0x28ff, 1, false, as.translate(0x2fff, 8, false, ATTRS));
        assertTranslation(ram, 0x900, 0, false, as.translate(0x1000, 0, false, ATTRS));
    }

    @Test
    void theSplitFollowsThePageSize() {
        MemoryRegion ram = sys.ram("ram", 0x10000);
        root.addSubregion(0x800, sys.alias("window", ram, 0, 0x2800));
        // 1 KiB pages: 0x800 and 0x3000 are page edges, one section. 64 KiB pages: one subpage piece.
        AddressSpace small = sys.addressSpace("small", root, 10);
        AddressSpace large = sys.addressSpace("large", root, 16);
        AddressSpace x86 = sys.addressSpace("x86", root);
        assertSame(small.flatView(), large.flatView());
        assertEquals(0x2700, small.translate(0x900, -1L, false, ATTRS).len());
        assertEquals(0x2700, large.translate(0x900, -1L, false, ATTRS).len());
        assertEquals(0x700, x86.translate(0x900, -1L, false, ATTRS).len());
    }

    @Test
    void mmioKeepsTheLengthAskedFor() {
        // QEMU's 0xcf8/0xcf9 case: a 4-byte access at 0xcf8 goes to the 1-byte section's device whole.
        MemoryRegion idx = sys.io("pci-conf-idx", 4, OPS);
        MemoryRegion reset = sys.io("reset-control", 1, OPS);
        root.addSubregion(0xcf8, idx);
        root.addSubregionOverlap(0xcf9, reset, 1);
        AddressSpace as = sys.addressSpace("io", root);
        assertTranslation(idx, 0, 4, false, as.translate(0xcf8, 4, false, ATTRS));
        assertTranslation(reset, 0, 4, false, as.translate(0xcf9, 4, false, ATTRS));
        assertTranslation(idx, 2, 2, false, as.translate(0xcfa, 2, false, ATTRS));
    }

    @Test
    void unmappedAddressesReachTheUnassignedRegion() {
        root.addSubregion(0x1000, sys.ram("ram", 0x1000));
        AddressSpace as = sys.addressSpace("memory", root);
        MemoryRegion unassigned = sys.unassignedRegion();
        assertTranslation(unassigned, 0xfff, 8, false, as.translate(0xfff, 8, false, ATTRS));
        assertTranslation(unassigned, 0x2000, 0x1000, false, as.translate(0x2000, 0x1000, false, ATTRS));
        assertTranslation(unassigned, -1L, -1L, false, as.translate(-1L, -1L, false, ATTRS));
        assertEquals(MemoryRegionOps.UNASSIGNED, unassigned.ops());
        assertEquals(U64.SIZE_2_64, unassigned.size());
    }

    @Test
    void theTopOfTheSpace() {
        MemoryRegion top = sys.ram("top", 0x1000);
        MemoryRegion tail = sys.ram("tail", 0x800);
        root.addSubregion(-0x2000L, top);   // whole last-but-one page
        root.addSubregion(-0x800L, tail);   // the last page's upper half: a tail subpage
        AddressSpace as = sys.addressSpace("memory", root);
        assertTranslation(top, 0xff8, 8, false, as.translate(-0x1008L, 16, false, ATTRS));
        assertTranslation(tail, 0x7f8, 8, false, as.translate(-8L, 16, false, ATTRS));
        assertTranslation(tail, 0x7ff, 1, false, as.translate(-1L, -1L, false, ATTRS));
        assertTranslation(tail, 0, 0x800, false, as.translate(-0x800L, -1L, false, ATTRS));
        assertSame(sys.unassignedRegion(), as.translate(-0x801L, 1, false, ATTRS).region());
        // A region of all 2^64 bytes: the length of an MMIO region is never clipped, even at the top.
        MemoryRegion all = sys.io("all", U64.SIZE_2_64, OPS);
        AddressSpace whole = sys.addressSpace("whole", all);
        assertTranslation(all, -1L, -1L, false, whole.translate(-1L, -1L, false, ATTRS));
        assertTranslation(all, 0, -1L, false, whole.translate(0, -1L, false, ATTRS));
    }

    @Test
    void readOnlyComesFromTheMapping() {
        MemoryRegion ram = sys.ram("ram", 0x2000);
        MemoryRegion ro = sys.alias("ro", ram, 0x1000, 0x1000);
        ro.setReadonly(true);
        root.addSubregion(0, sys.alias("rw", ram, 0, 0x1000));
        root.addSubregion(0x1000, ro);
        root.addSubregion(0x2000, sys.rom("rom", 0x1000));
        AddressSpace as = sys.addressSpace("memory", root);
        assertEquals(false, as.translate(0x10, 1, true, ATTRS).readonly());
        assertTranslation(ram, 0x1010, 0xff0, true, as.translate(0x1010, 0x2000, true, ATTRS));
        assertEquals(true, as.translate(0x2000, 1, true, ATTRS).readonly());
    }

    @Test
    void eachSnapshotAnswersForItself() {
        MemoryRegion a = sys.ram("a", 0x1000);
        MemoryRegion b = sys.ram("b", 0x1000);
        root.addSubregion(0x4000, a);
        AddressSpace as = sys.addressSpace("memory", root);
        AddressSpaceDispatch before = as.dispatch();
        int s = before.sectionIndex(0x4010);
        sys.transaction(() -> {
            root.delSubregion(a);
            root.addSubregion(0x4000, b);
        });
        // The old dispatch still answers for the old view; the address space moved on.
        assertSame(a, before.section(before.sectionIndex(0x4010)).region());
        assertSame(a, before.section(s).region());
        assertSame(b, as.translate(0x4010, 1, false, ATTRS).region());
        assertSame(b, as.dispatch().section(as.dispatch().sectionIndex(0x4010)).region());
    }
}
