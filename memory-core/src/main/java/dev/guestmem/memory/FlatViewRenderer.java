package dev.guestmem.memory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Map;
import java.util.TreeMap;

/**
 * Renders a region tree into the ranges of a {@link FlatView}, by QEMU's rules ({@code render_memory_region} and
 * {@code flatview_simplify}): subregions in priority order fill only what nothing before them filled, containers are
 * transparent where they have no subregion, aliases shift into their target, everything is clipped to the
 * enclosing regions, and read-only, nonvolatile and unmergeable are inherited downwards.
 *
 * <p>Cost: QEMU inserts every piece into a sorted array and scans it for gaps, O(regions x ranges). Here the space
 * filled so far is kept as merged intervals in a tree, so finding the gaps under a region costs O(log n) per gap,
 * and a subtree whose window is already filled is skipped without visiting it: O(n log n) for n regions.
 *
 * <p>Arithmetic: the window being rendered is carried in the current region's own offsets ({@code [first, last]},
 * inclusive), together with {@code delta}, the guest-physical address of offset 0 modulo 2^64. Every offset inside
 * a window maps to a guest address in {@code [0, 2^64)} without wrapping (that is what clipping guarantees), so the
 * modular {@code delta} is exact where it is used and no 65-bit arithmetic is needed.
 *
 * <p>Threading: used by the writer under the topology lock; one instance per render.
 */
final class FlatViewRenderer {
    private static final Comparator<Long> UNSIGNED = Long::compareUnsigned;

    /** Filled guest-physical space: first address -> last address (inclusive) of maximal merged intervals. */
    private final TreeMap<Long, Long> filled = new TreeMap<>(UNSIGNED);
    private final ArrayList<FlatRange> out = new ArrayList<>();

    private FlatViewRenderer() {
    }

    /** The simplified ranges of {@code root} rendered as an address space root (QEMU's generate_memory_topology). */
    static FlatRange[] render(MemoryRegion root) {
        if (root == null || !root.enabled || root.size == 0) {
            return new FlatRange[0];
        }
        FlatViewRenderer r = new FlatViewRenderer();
        // The root's own addr counts, as in QEMU (base starts at 0 and every region adds its addr); only offsets
        // whose guest address stays below 2^64 are visible.
        long delta = root.addr;
        long last = U64.min(U64.lastOffset(root.size), -1L - delta);
        r.renderRegion(root, delta, 0, last, false, false, false);
        return simplify(r.sorted());
    }

    /**
     * Renders {@code mr}, which is enabled and non-empty, over its offsets {@code [first, last]}.
     */
    private void renderRegion(MemoryRegion mr, long delta, long first, long last,
                              boolean readonly, boolean nonvolatile, boolean unmergeable) {
        readonly |= mr.readonly || mr.kind == MemoryRegion.Kind.ROM;
        nonvolatile |= mr.nonvolatile;
        unmergeable |= mr.unmergeable;
        if (isFilled(first + delta, last + delta)) {
            return;
        }
        MemoryRegion target = mr.alias;
        if (target != null) {
            if (!target.enabled || target.size == 0) {
                return;
            }
            long off = mr.aliasOffset;
            long tFirst = first + off;
            if (U64.lt(tFirst, first)) {
                return; // the window starts at or beyond 2^64 in the target: nothing there
            }
            long tLast = U64.saturatingAdd(last, off);
            tLast = U64.min(tLast, U64.lastOffset(target.size));
            if (U64.lt(tLast, tFirst)) {
                return;
            }
            renderRegion(target, delta - off, tFirst, tLast, readonly, nonvolatile, unmergeable);
            return;
        }
        ArrayList<MemoryRegion> subs = mr.subregions;
        for (int i = 0, n = subs.size(); i < n; i++) {
            MemoryRegion sub = subs.get(i);
            if (!sub.enabled || sub.size == 0) {
                continue;
            }
            long a = sub.addr;
            long subLast = U64.saturatingAdd(a, U64.lastOffset(sub.size));
            long lo = U64.max(first, a);
            long hi = U64.min(last, subLast);
            if (U64.lt(hi, lo)) {
                continue;
            }
            renderRegion(sub, delta + a, lo - a, hi - a, readonly, nonvolatile, unmergeable);
        }
        if (mr.terminates) {
            fillGaps(mr, delta, first + delta, last + delta, readonly, nonvolatile, unmergeable);
        }
    }

    /** Whether every address of {@code [first, last]} is already filled. */
    private boolean isFilled(long first, long last) {
        Map.Entry<Long, Long> e = filled.floorEntry(first);
        return e != null && U64.le(last, e.getValue());
    }

    /** Gives {@code mr} every unfilled address of guest {@code [first, last]}, as QEMU's gap loop does. */
    private void fillGaps(MemoryRegion mr, long delta, long first, long last,
                          boolean readonly, boolean nonvolatile, boolean unmergeable) {
        int logMask = mr.dirtyLogMask;
        long pos = first;
        while (true) {
            Map.Entry<Long, Long> below = filled.floorEntry(pos);
            if (below != null && U64.le(pos, below.getValue())) {
                long coveredTo = below.getValue();
                if (U64.le(last, coveredTo)) {
                    return;
                }
                pos = coveredTo + 1;
                below = filled.floorEntry(pos);
            }
            // pos is unfilled; the gap runs to the next filled interval or to 'last'
            Map.Entry<Long, Long> above = filled.higherEntry(pos);
            long gapLast = (above == null || U64.lt(last, above.getKey())) ? last : above.getKey() - 1;
            out.add(new FlatRange(pos, gapLast, mr, pos - delta, logMask, mr.romdMode, readonly, nonvolatile,
                    unmergeable));
            markFilled(below, pos, gapLast, above);
            if (gapLast == last) {
                return;
            }
            pos = gapLast + 1; // the next filled interval starts here; the loop skips it
        }
    }

    /** Records {@code [first, last]} as filled, merging with the intervals that touch it. */
    private void markFilled(Map.Entry<Long, Long> below, long first, long last, Map.Entry<Long, Long> above) {
        long newFirst = first;
        long newLast = last;
        if (below != null && below.getValue() != -1L && below.getValue() + 1 == first) {
            newFirst = below.getKey();
        }
        if (above != null && last != -1L && last + 1 == above.getKey()) {
            newLast = above.getValue();
            filled.remove(above.getKey());
        }
        filled.put(newFirst, newLast);
    }

    private FlatRange[] sorted() {
        FlatRange[] a = out.toArray(new FlatRange[0]);
        Arrays.sort(a, (x, y) -> Long.compareUnsigned(x.start(), y.start()));
        return a;
    }

    /** QEMU's {@code flatview_simplify}: merges neighbours that continue each other. */
    static FlatRange[] simplify(FlatRange[] ranges) {
        if (ranges.length < 2) {
            return ranges;
        }
        ArrayList<FlatRange> merged = new ArrayList<>(ranges.length);
        FlatRange cur = ranges[0];
        FlatRange prev = ranges[0];
        for (int i = 1; i < ranges.length; i++) {
            FlatRange next = ranges[i];
            if (prev.canMerge(next)) {
                cur = new FlatRange(cur.start(), next.last(), cur.region(), cur.offsetInRegion(), cur.dirtyLogMask(),
                        cur.romdMode(), cur.readonly(), cur.nonvolatile(), cur.unmergeable());
            } else {
                merged.add(cur);
                cur = next;
            }
            prev = next;
        }
        merged.add(cur);
        return merged.size() == ranges.length ? ranges : merged.toArray(new FlatRange[0]);
    }

    /**
     * QEMU's {@code memory_region_get_flatview_root}: looks through aliases that show their whole target at offset
     * 0 and containers whose only enabled child covers them from offset 0, so that address spaces can share views.
     * Returns null when nothing is enabled.
     */
    static MemoryRegion flatViewRoot(MemoryRegion mr) {
        while (mr != null && mr.enabled) {
            if (mr.alias != null) {
                if (mr.aliasOffset == 0 && sizeAtLeast(mr.size, mr.alias.size)) {
                    mr = mr.alias;
                    continue;
                }
            } else if (!mr.terminates) {
                int found = 0;
                MemoryRegion next = null;
                for (MemoryRegion child : mr.subregions) {
                    if (child.enabled) {
                        if (++found > 1) {
                            next = null;
                            break;
                        }
                        if (child.addr == 0 && sizeAtLeast(mr.size, child.size)) {
                            next = child;
                        }
                    }
                }
                if (found == 0) {
                    return null;
                }
                if (next != null) {
                    mr = next;
                    continue;
                }
            }
            return mr;
        }
        return null;
    }

    /** {@code a >= b} for sizes under the 2^64 rule. */
    private static boolean sizeAtLeast(long a, long b) {
        if (a == U64.SIZE_2_64) {
            return true;
        }
        if (b == U64.SIZE_2_64) {
            return false;
        }
        return U64.le(b, a);
    }
}
