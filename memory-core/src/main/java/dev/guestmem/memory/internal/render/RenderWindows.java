package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.Arrays;
import java.util.IdentityHashMap;

/**
 * Where the region tree changed since the last render, so that a commit re-renders only those windows of each
 * flatview root (QEMU renders whole views; this is guestmem's incremental render). Per region, in that region's own
 * offsets, pairs of first and last offset: each mutator notes the places of the region it changes before and after
 * the change, in every region above it (containers, and aliases of it). When the windows are not worth tracking (too
 * many, a change they cannot describe, or unmergeable regions anywhere) the next commit renders whole.
 *
 * <p>Threading: writer only (the topology lock held), like the tree it describes.
 */
public final class RenderWindows {
    /** Windows noted per commit before rendering whole is cheaper than tracking them. */
    private static final int MAX_WINDOWS = 64;

    private final IdentityHashMap<MemoryRegion, long[]> windows = new IdentityHashMap<>();
    private int count;
    private boolean fullRenderPending;
    /** Regions with the unmergeable flag; while there are any, views are always rendered whole. */
    private int unmergeableRegions;

    /** The walk's pending (region, first, last) triples, kept between calls so that noting allocates little. */
    private MemoryRegion[] stackRegions = new MemoryRegion[16];
    private long[] stackBounds = new long[32];

    /**
     * Records every place where {@code r} shows through the tree (its whole extent, shifted and clipped through each
     * container and alias above it) as a window to re-render on commit. Mutators call it before and after changing
     * {@code r}, so both the old and the new places are covered.
     */
    public void note(MemoryRegion r) {
        if (fullRenderPending || r.size() == 0) {
            return;
        }
        int top = push(0, r, 0L, U64.lastOffset(r.size()));
        while (top > 0) {
            top--;
            final MemoryRegion x = stackRegions[top];
            final long lo = stackBounds[2 * top];
            final long hi = stackBounds[2 * top + 1];
            stackRegions[top] = null;
            if (++count > MAX_WINDOWS) {
                requireFullRender();
                return;
            }
            add(x, lo, hi);

            MemoryRegion c = x.container();
            if (c != null && c.size() != 0) {
                long nlo = lo + x.addr();
                long clast = U64.lastOffset(c.size());
                if (!U64.lt(nlo, lo) && U64.le(nlo, clast)) {
                    top = push(top, c, nlo, U64.min(U64.saturatingAdd(hi, x.addr()), clast));
                }
            }
            for (MemoryRegion a : SharedSecrets.coreAccess().aliasedBy(x)) {
                long off = a.aliasOffset();
                if (a.size() == 0 || U64.lt(hi, off)) {
                    continue;
                }
                long nlo = U64.lt(lo, off) ? 0 : lo - off;
                long nhi = U64.min(hi - off, U64.lastOffset(a.size()));
                if (U64.le(nlo, nhi)) {
                    top = push(top, a, nlo, nhi);
                }
            }
        }
    }

    private int push(int top, MemoryRegion r, long lo, long hi) {
        if (top == stackRegions.length) {
            stackRegions = Arrays.copyOf(stackRegions, 2 * top);
            stackBounds = Arrays.copyOf(stackBounds, 4 * top);
        }
        stackRegions[top] = r;
        stackBounds[2 * top] = lo;
        stackBounds[2 * top + 1] = hi;
        return top + 1;
    }

    /** Appends window {@code [lo, hi]} to {@code x}'s list: element 0 is the pair count, then the pairs. */
    private void add(MemoryRegion x, long lo, long hi) {
        long[] w = windows.get(x);
        int n = w == null ? 0 : (int) w[0];
        if (w == null || 1 + 2 * (n + 1) > w.length) {
            long[] grown = new long[1 + 2 * Math.max(4, 2 * n)];
            if (w != null) {
                System.arraycopy(w, 0, grown, 0, 1 + 2 * n);
            }
            w = grown;
            windows.put(x, w);
        }
        w[1 + 2 * n] = lo;
        w[2 + 2 * n] = hi;
        w[0] = n + 1;
    }

    /** The next commit renders every view whole. */
    public void requireFullRender() {
        fullRenderPending = true;
        windows.clear();
    }

    /** Counts regions with the unmergeable flag: {@code nowUnmergeable} is the flag's new value. */
    public void unmergeableChanged(boolean nowUnmergeable) {
        unmergeableRegions += nowUnmergeable ? 1 : -1;
    }

    /** Whether the views may be rendered by windows: no full render pending and no unmergeable region. */
    public boolean incremental() {
        return !fullRenderPending && unmergeableRegions == 0;
    }

    /** Forgets every window, after a commit rendered them. */
    public void reset() {
        windows.clear();
        count = 0;
        fullRenderPending = false;
    }

    /** The windows of {@code root} (its own offsets), sorted and merged into [first, last] pairs. */
    public long[] windowsOf(MemoryRegion root) {
        long[] w = windows.get(root);
        if (w == null) {
            return new long[0];
        }
        int n = (int) w[0];
        long[][] pairs = new long[n][];
        for (int i = 0; i < n; i++) {
            pairs[i] = new long[] {w[1 + 2 * i], w[2 + 2 * i]};
        }
        Arrays.sort(pairs, (a, b) -> Long.compareUnsigned(a[0], b[0]));
        long[] out = new long[2 * n];
        int k = 0;
        for (long[] p : pairs) {
            // merge with the previous window when they overlap or touch
            if (k > 0 && (out[k - 1] == -1L || U64.le(p[0], out[k - 1] + 1))) {
                out[k - 1] = U64.max(out[k - 1], p[1]);
            } else {
                out[k++] = p[0];
                out[k++] = p[1];
            }
        }
        return Arrays.copyOf(out, k);
    }

    /**
     * The windows of {@code root} (pairs of its offsets, as {@link #windowsOf} gives them) as guest-physical pairs,
     * clipped where they pass 2^64 as the renderer clips them.
     */
    public static long[] guestWindows(MemoryRegion root, long[] windows) {
        long delta = root == null ? 0 : root.addr();
        long visibleLast = -1L - delta;
        long[] out = new long[windows.length];
        int n = 0;
        for (int w = 0; w < windows.length; w += 2) {
            if (U64.lt(visibleLast, windows[w])) {
                break;
            }
            out[n++] = windows[w] + delta;
            out[n++] = U64.min(windows[w + 1], visibleLast) + delta;
        }
        return Arrays.copyOf(out, n);
    }
}
