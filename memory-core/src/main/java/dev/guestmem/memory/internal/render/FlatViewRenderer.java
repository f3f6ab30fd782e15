package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
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
 * <p>Depth: the walk keeps its own stack of regions being rendered, so a tree of any depth renders on any thread's
 * stack.
 *
 * <p>Threading: used by the writer under the topology lock; one instance per render.
 */
public final class FlatViewRenderer {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();
    private static final Comparator<Long> UNSIGNED = Long::compareUnsigned;

    /** Filled guest-physical space: first address -> last address (inclusive) of maximal merged intervals. */
    private final TreeMap<Long, Long> filled = new TreeMap<>(UNSIGNED);
    private final ArrayList<FlatRange> out = new ArrayList<>();

    private FlatViewRenderer() {
    }

    /** The simplified ranges of {@code root} rendered as an address space root (QEMU's generate_memory_topology). */
    public static FlatRange[] render(MemoryRegion root) {
        if (root == null || !root.isEnabled() || root.size() == 0) {
            return new FlatRange[0];
        }
        FlatViewRenderer r = new FlatViewRenderer();
        // The root's own addr counts, as in QEMU (base starts at 0 and every region adds its addr); only offsets
        // whose guest address stays below 2^64 are visible.
        long delta = root.addr();
        long last = U64.min(U64.lastOffset(root.size()), -1L - delta);
        r.renderRegion(root, delta, 0, last, false, false, false);
        return simplify(r.sorted());
    }

    /**
     * Re-renders only the windows {@code windows} (pairs of first and last offsets of {@code root}, inclusive,
     * sorted and disjoint) and splices the result into {@code old}, the simplified view {@code root} rendered to
     * before. Outside the windows nothing can have changed, so the result equals a full {@link #render}.
     *
     * <p>Cost: the windows' part of the tree plus one copy of the old range array, instead of the whole tree.
     * Not valid while any region is unmergeable: a range cut at a window edge could then not be merged back.
     */
    public static FlatRange[] renderWindows(MemoryRegion root, FlatRange[] old, long[] windows) {
        if (root == null || !root.isEnabled() || root.size() == 0) {
            return new FlatRange[0];
        }
        long delta = root.addr();
        long visibleLast = -1L - delta; // the last offset whose guest address is below 2^64
        long rootLast = U64.min(U64.lastOffset(root.size()), visibleLast);
        Splice out = new Splice(old.length + 8);
        FlatRange carry = null; // the part of an old range left after the previous window, if any
        int next = 0;           // the first old range not yet copied or dropped (after carry)
        for (int w = 0; w < windows.length; w += 2) {
            if (U64.lt(visibleLast, windows[w])) {
                break; // this window and the ones after it lie beyond 2^64 in guest space
            }
            long first = windows[w] + delta;
            // Old ranges are dropped over the whole window (the region may have shrunk), but only the part that
            // lies inside the root now is rendered again.
            long dropLast = U64.min(windows[w + 1], visibleLast) + delta;

            // Keep what lies before the window, cutting a range that straddles its start.
            if (carry != null && U64.lt(carry.start(), first)) {
                out.add(U64.lt(carry.last(), first) ? carry : cut(carry, carry.start(), first - 1));
                carry = U64.lt(carry.last(), first) ? null : carry;
            }
            if (carry == null) {
                int j = firstEndingAtOrAfter(old, next, first);
                out.addRun(old, next, j);
                next = j;
                if (next < old.length && U64.lt(old[next].start(), first)) {
                    out.add(cut(old[next], old[next].start(), first - 1));
                    carry = old[next++];
                }
            }
            if (U64.le(windows[w], rootLast)) {
                FlatViewRenderer r = new FlatViewRenderer();
                r.renderRegion(root, delta, windows[w], U64.min(windows[w + 1], rootLast), false, false, false);
                for (FlatRange fr : r.sorted()) {
                    out.add(fr);
                }
            }
            // Drop what lies inside the window; a range that straddles its end leaves its tail as the carry.
            if (carry != null && U64.le(carry.start(), dropLast)) {
                carry = U64.lt(dropLast, carry.last()) ? cut(carry, dropLast + 1, carry.last()) : null;
            }
            if (carry == null) {
                int k = firstEndingAtOrAfter(old, next, dropLast == -1L ? -1L : dropLast + 1);
                if (dropLast == -1L) {
                    k = old.length;
                }
                next = k;
                if (next < old.length && U64.le(old[next].start(), dropLast)) {
                    carry = cut(old[next], dropLast + 1, old[next].last());
                    next++;
                }
            }
        }
        if (carry != null) {
            out.add(carry);
        }
        out.addRun(old, next, old.length);
        return out.toArray();
    }

    /** The first index {@code >= from} whose range ends at or after {@code addr}; ranges are sorted. */
    private static int firstEndingAtOrAfter(FlatRange[] a, int from, long addr) {
        int lo = from;
        int hi = a.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (U64.lt(a[mid].last(), addr)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /**
     * Builds a simplified range array from already-simplified runs and single ranges, merging only where pieces
     * meet (QEMU's merge rule, applied left to right as {@code flatview_simplify} does).
     */
    private static final class Splice {
        private FlatRange[] a;
        private int n;

        Splice(int capacity) {
            a = new FlatRange[Math.max(capacity, 8)];
        }

        void add(FlatRange fr) {
            if (n > 0 && canMerge(a[n - 1], fr)) {
                FlatRange p = a[n - 1];
                a[n - 1] = new FlatRange(p.start(), fr.last(), p.region(), p.offsetInRegion(), p.dirtyLogMask(),
                        p.romdMode(), p.readonly(), p.nonvolatile(), p.unmergeable());
                return;
            }
            if (n == a.length) {
                a = Arrays.copyOf(a, n * 2);
            }
            a[n++] = fr;
        }

        /** Adds {@code src[from, to)}, a simplified run: only its first range can merge with what is already here. */
        void addRun(FlatRange[] src, int from, int to) {
            if (from >= to) {
                return;
            }
            add(src[from]);
            int len = to - from - 1;
            if (n + len > a.length) {
                a = Arrays.copyOf(a, Math.max(n + len, a.length * 2));
            }
            System.arraycopy(src, from + 1, a, n, len);
            n += len;
        }

        FlatRange[] toArray() {
            return n == a.length ? a : Arrays.copyOf(a, n);
        }
    }

    /** The part {@code [first, last]} of {@code fr}. */
    private static FlatRange cut(FlatRange fr, long first, long last) {
        return new FlatRange(first, last, fr.region(), fr.offsetInRegion() + (first - fr.start()), fr.dirtyLogMask(),
                fr.romdMode(), fr.readonly(), fr.nonvolatile(), fr.unmergeable());
    }

    /** Bits of {@link #flags}: what a region passes down to everything rendered through it. */
    private static final int READONLY = 1;
    private static final int NONVOLATILE = 2;
    private static final int UNMERGEABLE = 4;

    // The walk's stack, one frame per region whose subregions are being rendered: the region, its subregions (back
    // to front, so the next one to render is at index next), and its window in its own offsets with delta and flags.
    private MemoryRegion[] regions = new MemoryRegion[16];
    private List<?>[] subs = new List<?>[16];
    private int[] next = new int[16];
    private long[] deltas = new long[16];
    private long[] firsts = new long[16];
    private long[] lasts = new long[16];
    private int[] flags = new int[16];
    private int depth;

    /**
     * Renders {@code mr}, which is enabled and non-empty, over its offsets {@code [first, last]}: its subregions in
     * render order (each one's own subregions first, depth first), then, for a region that terminates, its own
     * bytes into the gaps they left. Iterative: the frames live in this renderer, not on the thread's stack.
     */
    private void renderRegion(MemoryRegion mr, long delta, long first, long last,
                              boolean readonly, boolean nonvolatile, boolean unmergeable) {
        enter(mr, delta, first, last, (readonly ? READONLY : 0) | (nonvolatile ? NONVOLATILE : 0)
                | (unmergeable ? UNMERGEABLE : 0));
        while (depth > 0) {
            int f = depth - 1;
            if (next[f] < 0) {
                MemoryRegion r = regions[f];
                if (r.terminates()) {
                    int fl = flags[f];
                    fillGaps(r, deltas[f], firsts[f] + deltas[f], lasts[f] + deltas[f], (fl & READONLY) != 0,
                            (fl & NONVOLATILE) != 0, (fl & UNMERGEABLE) != 0);
                }
                regions[f] = null;
                subs[f] = null;
                depth = f;
                continue;
            }
            MemoryRegion sub = (MemoryRegion) subs[f].get(next[f]--);
            if (!sub.isEnabled() || sub.size() == 0) {
                continue;
            }
            long a = sub.addr();
            long subLast = U64.saturatingAdd(a, U64.lastOffset(sub.size()));
            long lo = U64.max(firsts[f], a);
            long hi = U64.min(lasts[f], subLast);
            if (U64.lt(hi, lo)) {
                continue;
            }
            enter(sub, deltas[f] + a, lo - a, hi - a, flags[f]);
        }
    }

    /**
     * Starts rendering {@code mr} over its offsets {@code [first, last]}: follows aliases into their targets, then
     * pushes a frame for the region that holds the bytes, unless that window is already filled or empty.
     */
    private void enter(MemoryRegion mr, long delta, long first, long last, int inherited) {
        int fl = inherited;
        while (true) {
            fl |= (mr.isReadonly() || mr.kind() == MemoryRegion.Kind.ROM ? READONLY : 0)
                    | (mr.isNonvolatile() ? NONVOLATILE : 0) | (mr.isUnmergeable() ? UNMERGEABLE : 0);
            if (isFilled(first + delta, last + delta)) {
                return;
            }
            MemoryRegion target = mr.alias();
            if (target == null) {
                break;
            }
            if (!target.isEnabled() || target.size() == 0) {
                return;
            }
            long off = mr.aliasOffset();
            long tFirst = first + off;
            if (U64.lt(tFirst, first)) {
                return; // the window starts at or beyond 2^64 in the target: nothing there
            }
            long tLast = U64.min(U64.saturatingAdd(last, off), U64.lastOffset(target.size()));
            if (U64.lt(tLast, tFirst)) {
                return;
            }
            mr = target;
            delta -= off;
            first = tFirst;
            last = tLast;
        }
        if (depth == regions.length) {
            grow();
        }
        List<MemoryRegion> s = CORE.subregionsReversed(mr);
        regions[depth] = mr;
        subs[depth] = s;
        next[depth] = s.size() - 1;
        deltas[depth] = delta;
        firsts[depth] = first;
        lasts[depth] = last;
        flags[depth] = fl;
        depth++;
    }

    private void grow() {
        int n = regions.length * 2;
        regions = Arrays.copyOf(regions, n);
        subs = Arrays.copyOf(subs, n);
        next = Arrays.copyOf(next, n);
        deltas = Arrays.copyOf(deltas, n);
        firsts = Arrays.copyOf(firsts, n);
        lasts = Arrays.copyOf(lasts, n);
        flags = Arrays.copyOf(flags, n);
    }

    /** Whether every address of {@code [first, last]} is already filled. */
    private boolean isFilled(long first, long last) {
        Map.Entry<Long, Long> e = filled.floorEntry(first);
        return e != null && U64.le(last, e.getValue());
    }

    /** Gives {@code mr} every unfilled address of guest {@code [first, last]}, as QEMU's gap loop does. */
    private void fillGaps(MemoryRegion mr, long delta, long first, long last,
                          boolean readonly, boolean nonvolatile, boolean unmergeable) {
        int logMask = mr.dirtyLogMask();
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
            out.add(new FlatRange(pos, gapLast, mr, pos - delta, logMask, mr.isRomdMode(), readonly, nonvolatile,
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
    public static FlatRange[] simplify(FlatRange[] ranges) {
        if (ranges.length < 2) {
            return ranges;
        }
        ArrayList<FlatRange> merged = new ArrayList<>(ranges.length);
        FlatRange cur = ranges[0];
        FlatRange prev = ranges[0];
        for (int i = 1; i < ranges.length; i++) {
            FlatRange next = ranges[i];
            if (canMerge(prev, next)) {
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
    public static MemoryRegion flatViewRoot(MemoryRegion mr) {
        while (mr != null && mr.isEnabled()) {
            if (mr.alias() != null) {
                if (mr.aliasOffset() == 0 && sizeAtLeast(mr.size(), mr.alias().size())) {
                    mr = mr.alias();
                    continue;
                }
            } else if (!mr.terminates()) {
                int found = 0;
                MemoryRegion next = null;
                List<MemoryRegion> subs = CORE.subregionsReversed(mr);
                for (int i = subs.size() - 1; i >= 0; i--) {
                    MemoryRegion child = subs.get(i);
                    if (child.isEnabled()) {
                        if (++found > 1) {
                            next = null;
                            break;
                        }
                        if (child.addr() == 0 && sizeAtLeast(mr.size(), child.size())) {
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

    /** QEMU's {@code can_merge}: {@code next} continues {@code fr} in address and in region offset. */
    static boolean canMerge(FlatRange fr, FlatRange next) {
        long lastOffset = fr.offsetInRegion() + (fr.last() - fr.start());
        return fr.last() + 1 == next.start() && fr.last() != -1L
                && fr.region() == next.region()
                // A range that ends at region offset 2^64 - 1 is continued by nothing: offset 0 after it is a wrap.
                && lastOffset != -1L && lastOffset + 1 == next.offsetInRegion()
                && fr.dirtyLogMask() == next.dirtyLogMask()
                && fr.romdMode() == next.romdMode()
                && fr.readonly() == next.readonly()
                && fr.nonvolatile() == next.nonvolatile()
                && !fr.unmergeable() && !next.unmergeable();
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
