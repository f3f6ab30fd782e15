package dev.guestmem.memory.internal.dispatch;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemoryRegionSection;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.BitSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * No limit on sections: a map of 100,000 mapped regions (QEMU 7.2 asserts fewer than {@code TARGET_PAGE_SIZE}
 * sections, 4,096 with 4 KiB pages, since its TLB keeps the section number in the low bits of a page address;
 * Unicorn stops near 1,020 mappings) gives a dispatch in which every section is reached and every lookup is right,
 * at 1 KiB, 4 KiB and 64 KiB pages. Half the regions are small MMIO regions, one per 1 KiB (so they share pages
 * and fill subpage tables), half are page-aligned two-page regions with a page gap after each (so the tree
 * holds many leaves across many nodes), plus one large aligned region stored high in the tree.
 */
class DispatchScaleTest {
    private static final int SMALL = 50_000;
    private static final int PAGED = 50_000;
    private static final long SMALL_BASE = 0x1_0000_0000L;
    private static final long PAGED_BASE = 0x100_0000_0000L;
    private static final long BIG_BASE = 1L << 50;
    private static final MemoryRegionOps OPS = MemoryRegionOps.builder().build();

    @ParameterizedTest
    @ValueSource(ints = {10, 12, 16})
    void everyOneOf100000SectionsIsFound(int pageBits) {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = sys.container("system", U64.SIZE_2_64);
        long page = 1L << pageBits;
        MemoryRegion[] small = new MemoryRegion[SMALL];
        MemoryRegion[] paged = new MemoryRegion[PAGED];
        sys.transaction(() -> {
            for (int i = 0; i < SMALL; i++) {
                small[i] = sys.io("mmio" + i, 0x100 + 0x10 * (i & 0xf), OPS);
                root.addSubregion(SMALL_BASE + 0x400L * i, small[i]);
            }
            for (int i = 0; i < PAGED; i++) {
                paged[i] = sys.ram("ram" + i, 2 * page);
                root.addSubregion(PAGED_BASE + 3 * page * i, paged[i]);
            }
            root.addSubregion(BIG_BASE, sys.ram("big", 1L << 40));
        });
        AddressSpace as = sys.addressSpace("memory", root, pageBits);
        FlatView view = as.flatView();
        assertEquals(SMALL + PAGED + 1, view.rangeCount());
        AddressSpaceDispatch d = AddressSpaceDispatch.of(as);
        assertTrue(d.sectionCount() > SMALL + PAGED, "sections=" + d.sectionCount());

        BitSet reached = new BitSet(d.sectionCount());
        for (int i = 0; i < view.rangeCount(); i++) {
            FlatRange r = view.range(i);
            long[] probes = {r.start(), r.last(), r.start() + (r.last() - r.start()) / 2, r.start() - 1, r.last() + 1};
            for (long a : probes) {
                int s = d.sectionIndex(a);
                reached.set(s);
                FlatRange want = view.lookup(a);
                MemoryRegionSection sec = d.section(s);
                if (want == null) {
                    assertEquals(AddressSpaceDispatch.UNASSIGNED, s, () -> "addr=" + U64.hex(a));
                } else {
                    assertSame(want.region(), sec.region(), () -> "addr=" + U64.hex(a));
                    assertEquals(want.offsetInRegion() + (a - want.start()), d.offsetInRegion(s, a),
                            () -> "addr=" + U64.hex(a));
                }
            }
        }
        // Every section but the subpage containers (internal, never returned) is reached by some lookup.
        for (int s = 0; s < d.sectionCount(); s++) {
            if (!d.isSubpage(s)) {
                final int fs = s;
                assertTrue(reached.get(s), () -> "section " + fs + " " + d.section(fs) + " never found");
            }
        }
        // The small regions share pages: at 4 KiB four to a page, at 1 KiB each has a page of its own that it
        // does not fill, at 64 KiB 64 to a page.
        int containers = 0;
        for (int s = 0; s < d.sectionCount(); s++) {
            containers += d.isSubpage(s) ? 1 : 0;
        }
        long smallSpan = 0x400L * SMALL;
        long pageSpan = Math.max(page, 0x400);
        assertEquals((smallSpan + pageSpan - 1) / pageSpan, containers);
        // A subpage table has one entry per granule that the boundaries in its page allow: the first 1 KiB page
        // holds one region of 0x100 bytes; larger first pages hold regions of 0x100, 0x110, ... bytes.
        int firstContainer = d.sectionIndex(SMALL_BASE) - 1;
        assertTrue(d.isSubpage(firstContainer));
        assertEquals(pageBits == 10 ? 0x100 : 0x10, d.subpageGranule(firstContainer));
    }
}
