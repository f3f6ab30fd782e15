package dev.guestmem.memory.internal.dispatch;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Long chains of dispatches derived one from another ({@link DispatchUpdater}): a RAM background that every change
 * cuts or merges, with small MMIO regions (inside a page, page-sized, across page edges, overlapping) toggled, moved
 * and resized one commit at a time, through the garbage-driven full rebuilds. After every commit each address space's
 * dispatch must find, at every range edge and page edge (each +-1) and at random addresses, a section of the view's
 * flat range at the right region offset and inside that range, also on an MRU hit. Most commits must derive (the
 * derived dispatch is not QEMU-exact), and the shared tables must stay within a bounded multiple of the live size.
 */
class DispatchDerivationTest {
    private static final MemoryRegionOps OPS = MemoryRegionOps.builder().build();
    private static final int REGIONS = 300;
    private static final int COMMITS = 2000;

    @ParameterizedTest
    @ValueSource(ints = {10, 12, 16})
    void derivedDispatchesFindWhatTheViewHolds(int pageBits) {
        long seed = Long.getLong("guestmem.derive.seed", new Random().nextLong());
        Random rnd = new Random(seed);
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = sys.container("system", U64.SIZE_2_64);
        long page = 1L << pageBits;
        long span = 64 * page * REGIONS / 8;
        MemoryRegion[] small = new MemoryRegion[REGIONS];
        sys.transaction(() -> {
            root.addSubregionOverlap(0, sys.ram("background", span), -1);
            for (int i = 0; i < REGIONS; i++) {
                small[i] = rnd.nextBoolean() ? sys.io("mmio" + i, size(rnd, page), OPS)
                        : sys.ram("ram" + i, size(rnd, page));
                root.addSubregionOverlap(place(rnd, span), small[i], rnd.nextInt(3));
            }
        });
        AddressSpace as = sys.addressSpace("memory", root, pageBits);
        AddressSpace other = sys.addressSpace("other", root, pageBits == 12 ? 10 : 12);
        int derived = 0;
        for (int c = 0; c < COMMITS; c++) {
            MemoryRegion r = small[rnd.nextInt(REGIONS)];
            switch (rnd.nextInt(3)) {
                case 0 -> r.setEnabled(!r.isEnabled());
                case 1 -> r.setAddress(place(rnd, span));
                default -> {
                    if (r.isRam()) {
                        r.setEnabled(!r.isEnabled()); // RAM cannot grow past its block
                    } else {
                        r.setSize(size(rnd, page));
                    }
                }
            }
            String where = "seed=" + seed + " commit=" + c;
            derived += check(as, rnd, where);
            check(other, rnd, where);
        }
        assertTrue(derived > COMMITS * 8 / 10, "only " + derived + " of " + COMMITS + " commits derived; " + seed);
    }

    private static long size(Random rnd, long page) {
        return switch (rnd.nextInt(4)) {
            case 0 -> 0x10L << rnd.nextInt(4);
            case 1 -> page;
            case 2 -> page * (1 + rnd.nextInt(5)) + 0x100 * rnd.nextInt(3);
            default -> page / 2 + 0x40;
        };
    }

    private static long place(Random rnd, long span) {
        return (rnd.nextLong() & Long.MAX_VALUE) % span & ~0xfL;
    }

    /** Checks one address space; 1 when its dispatch was derived, else 0. */
    private static int check(AddressSpace as, Random rnd, String where) {
        FlatView view = as.flatView();
        AddressSpaceDispatch d = AddressSpaceDispatch.of(as);
        long mask = (1L << d.pageBits()) - 1;
        for (int i = 0; i < view.rangeCount(); i++) {
            FlatRange r = view.range(i);
            for (long e : new long[] {r.start(), r.last(), r.start() & ~mask, r.last() | mask}) {
                checkAddress(view, d, e - 1, where);
                checkAddress(view, d, e, where);
                checkAddress(view, d, e + 1, where);
            }
        }
        FlatRange last = view.range(view.rangeCount() - 1);
        for (int i = 0; i < 200; i++) {
            long a = (rnd.nextLong() & Long.MAX_VALUE) % (last.last() + 0x1000);
            checkAddress(view, d, a, where);
            checkAddress(view, d, a, where); // now an MRU hit
        }
        AddressSpaceDispatch exact = d.qemuLayout();
        assertTrue(d.sectionCount() <= 3L * exact.sectionCount() + 3000
                        && d.nodeCount() <= 3L * exact.nodeCount() + 200,
                where + ": tables outgrew the live size: " + d + " vs " + exact);
        return exact == d ? 0 : 1;
    }

    private static void checkAddress(FlatView view, AddressSpaceDispatch d, long a, String where) {
        int s = d.sectionIndex(a);
        FlatRange want = view.lookup(a);
        FlatRange got = d.flatRange(s);
        boolean ok = want == null ? s == AddressSpaceDispatch.UNASSIGNED
                : want.equals(got) && !d.isSubpage(s)
                && d.offsetInRegion(s, a) == want.offsetInRegion() + (a - want.start())
                && U64.le(want.start(), d.sectionFirst(s)) && U64.le(d.sectionFirst(s), a)
                && U64.le(a, d.sectionLast(s)) && U64.le(d.sectionLast(s), want.last());
        assertTrue(ok, () -> where + " pageBits=" + d.pageBits() + " addr=" + U64.hex(a) + ": view has " + want
                + ", dispatch section " + s + " [" + U64.hex(d.sectionFirst(s)) + ", " + U64.hex(d.sectionLast(s))
                + "] of " + got);
    }
}
