package dev.guestmem.memory.internal.dispatch;

import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Objects;

import static dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch.NIL;
import static dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch.NODE_SIZE;
import static dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch.UNASSIGNED;

/**
 * Derives the {@link AddressSpaceDispatch} of a view rendered incrementally from the dispatch of the view before it,
 * touching only the pages that changed. QEMU has no counterpart: it builds every dispatch whole in
 * {@code generate_memory_topology}, which costs O(ranges) per commit.
 *
 * <h2>What is redone</h2>
 * The changed guest windows are first widened until no old or new flat range crosses their edges ({@link #closure}):
 * a section keeps the {@link FlatRange} it was made for, and the access path clamps lengths by that range's last
 * byte, so no section outside the redone space may belong to a range that changed. Inside each widened interval
 * {@code [a, b]} the pages are cleared and every new range is registered as {@code flatview_add_to_dispatch} does (a
 * head subpage, the whole pages, a tail subpage). A page that {@code [a, b]} shares with the space outside gets a new
 * subpage container holding the outside pieces of the old one (whole sections: by the widening, no piece crosses
 * {@code a} or {@code b}) and the new pieces.
 *
 * <h2>Sharing</h2>
 * The node table, section table and subpage tables are appended to, never rewritten ({@link AddressSpaceDispatch.Store}):
 * a node on a changed path is copied to the end and the copy changed (path copying), new sections and subpage tables
 * go after the old ones, and everything else is shared with the old dispatch, which its readers may go on using.
 * The tree stays uncompacted (QEMU's compaction would hide which child a skipped level leads to); only the chain
 * below the root is skipped, which is where compaction saves levels for a typical map. Cost per commit: the pages of
 * the changed intervals times the levels, plus one scan of each node on the root chain, plus the per-range cost of
 * the ranges inside the intervals.
 *
 * <h2>Garbage</h2>
 * Replaced sections, nodes and tables stay in the shared arrays unreachable. When what was appended since the last
 * full build exceeds that build's size, the caller builds afresh ({@link AddressSpaceDispatch.Store#needsRebuild}):
 * amortized O(1) per appended entry, and memory at most about twice the live size.
 *
 * <p>Threading: writer only (topology lock held), before the view that will carry the result is published.
 */
public final class DispatchUpdater extends PageTreeWriter {
    private final AddressSpaceDispatch.Store st;
    private final int pageBits;
    private final long pageMask;
    /** Nodes below this index belong to older dispatches: copied before they are changed. */
    private final int sharedNodes;
    private int treeRoot;
    /** The subpage containers made by this update, with their pieces: section index -> {count, piece...}. */
    private final HashMap<Integer, int[]> drafts = new HashMap<>();

    private DispatchUpdater(AddressSpaceDispatch old) {
        super(old.levels);
        this.st = old.store;
        this.pageBits = old.pageBits;
        this.pageMask = old.pageMask;
        this.sharedNodes = old.nodeCount;
        this.treeRoot = old.treeRoot;
    }

    /**
     * The dispatch of {@code view} derived from {@code old}, the dispatch of the view it was rendered from, given
     * the guest-physical windows {@code changed} (sorted pairs of first and last addresses, inclusive) outside which
     * the two views map every address alike; or null when {@code old} cannot be derived from (not the newest of its
     * tables, or a QEMU-exact build) or a full build is due anyway.
     */
    public static AddressSpaceDispatch derive(AddressSpaceDispatch old, FlatView oldView, FlatView view, long[] changed,
                                       MemoryRegion unassigned) {
        if (old.exact || !old.store.isTip(old) || old.store.needsRebuild()) {
            return null;
        }
        long[] intervals = closure(SharedSecrets.coreAccess().rangeArray(oldView), SharedSecrets.coreAccess().rangeArray(view), changed, old.pageMask);
        DispatchUpdater u = new DispatchUpdater(old);
        int firstNew = old.sectionCount;
        FlatRange[] ranges = SharedSecrets.coreAccess().rangeArray(view);
        for (int i = 0; i < intervals.length; i += 2) {
            u.redo(intervals[i], intervals[i + 1], ranges);
        }
        u.finishDrafts();
        AddressSpaceDispatch.Store st = u.st;
        AddressSpaceDispatch d = new AddressSpaceDispatch(view, old.pageBits, unassigned, false,
                AddressSpaceDispatch.lookupRoot(st.nodes, u.treeRoot), u.treeRoot, st, st.nodeTop, st.sectionTop,
                st.subpageTop);
        assert agreesWithFullBuild(d, intervals, firstNew, unassigned);
        return d;
    }

    // ---------------------------------------------------------------- which space is redone

    /**
     * Widens each changed window until no old or new range crosses its edges, then joins intervals that overlap or
     * share a page. The result: sorted, disjoint pairs of guest-physical first and last addresses, inclusive, no two
     * in one page, every range of either view inside one of them or outside all.
     */
    static long[] closure(FlatRange[] olds, FlatRange[] news, long[] changed, long pageMask) {
        long[] out = new long[changed.length];
        int n = 0;
        for (int w = 0; w < changed.length; w += 2) {
            long a = changed[w];
            long b = changed[w + 1];
            boolean grew = true;
            while (grew) {
                grew = false;
                for (FlatRange[] rs : new FlatRange[][] {olds, news}) {
                    int i = firstEndingAtOrAfter(rs, a);
                    if (i < rs.length && U64.lt(rs[i].start(), a) && U64.le(rs[i].start(), b)) {
                        a = rs[i].start();
                        grew = true;
                    }
                    int j = lastStartingAtOrBefore(rs, b);
                    if (j >= 0 && U64.lt(b, rs[j].last()) && U64.le(a, rs[j].last())) {
                        b = rs[j].last();
                        grew = true;
                    }
                }
            }
            // Join with the previous interval when they overlap or share a page; the union of closed intervals
            // and the ranges between them is closed again.
            if (n > 0 && U64.le(a & ~pageMask, out[n - 1] | pageMask)) {
                out[n - 1] = U64.max(out[n - 1], b);
                out[n - 2] = U64.min(out[n - 2], a);
            } else {
                out[n++] = a;
                out[n++] = b;
            }
        }
        return Arrays.copyOf(out, n);
    }

    private static int firstEndingAtOrAfter(FlatRange[] rs, long addr) {
        int lo = 0;
        int hi = rs.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (U64.lt(rs[mid].last(), addr)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    private static int lastStartingAtOrBefore(FlatRange[] rs, long addr) {
        int lo = 0;
        int hi = rs.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (U64.le(rs[mid].start(), addr)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo - 1;
    }

    // ---------------------------------------------------------------- redoing one interval

    /** Clears the pages of guest {@code [a, b]} and registers the ranges inside it, keeping the outside pieces. */
    private void redo(long a, long b, FlatRange[] ranges) {
        long firstPage = a >>> pageBits;
        long lastPage = b >>> pageBits;
        int[] headOutside = (a & pageMask) != 0 ? outsidePieces(firstPage, a, b) : null;
        int[] tailOutside = b != -1L && ((b + 1) & pageMask) != 0 && (lastPage != firstPage || headOutside == null)
                ? outsidePieces(lastPage, a, b) : null;
        setPages(firstPage, lastPage - firstPage + 1, UNASSIGNED);
        if (headOutside != null) {
            newContainer(firstPage << pageBits, headOutside);
        }
        if (tailOutside != null) {
            newContainer(lastPage << pageBits, tailOutside);
        }
        for (int i = firstEndingAtOrAfter(ranges, a); i < ranges.length && U64.le(ranges[i].start(), b); i++) {
            assert U64.le(a, ranges[i].start()) && U64.le(ranges[i].last(), b) : "range " + ranges[i]
                    + " crosses the redone interval " + U64.hex(a) + ".." + U64.hex(b);
            addRange(ranges[i]);
        }
    }

    /**
     * The pieces of the subpage container on page {@code page} (if it has one) that lie outside guest
     * {@code [a, b]}, as {count, piece...}; null when there are none.
     */
    private int[] outsidePieces(long page, long a, long b) {
        int c = AddressSpaceDispatch.walk(st.nodes, treeRoot, levels, page);
        assert !drafts.containsKey(c) : "two redone intervals share page " + U64.hex(page << pageBits);
        int t = (int) st.sec[4 * c + 3];
        if (t < 0) {
            // Unassigned, or whole pages of a range that by the widening lies inside [a, b].
            return null;
        }
        int shift = st.subpages[t];
        int entries = 1 << (pageBits - shift);
        int[] keep = new int[4];
        int n = 0;
        int prev = -1;
        for (int k = 0; k < entries; k++) {
            int p = st.subpages[t + 1 + k];
            if (p == prev || p == UNASSIGNED) {
                prev = p;
                continue;
            }
            prev = p;
            long pFirst = st.sec[4 * p];
            long pLast = pFirst + st.sec[4 * p + 1];
            if (U64.lt(pLast, a) || U64.lt(b, pFirst)) {
                if (n + 1 == keep.length) {
                    keep = Arrays.copyOf(keep, 2 * keep.length);
                }
                keep[++n] = p;
            } else {
                assert U64.le(a, pFirst) && U64.le(pLast, b) : "piece " + p + " crosses " + U64.hex(a) + ".."
                        + U64.hex(b);
            }
        }
        if (n == 0) {
            return null;
        }
        keep[0] = n;
        return keep;
    }

    /** A new subpage container for the page at guest {@code base}, holding {@code pieces} ({count, piece...}). */
    private int newContainer(long base, int[] pieces) {
        int c = addSection(base, pageMask, 0, null);
        drafts.put(c, pieces);
        setPages(base >>> pageBits, 1, c);
        return c;
    }

    /** QEMU's {@code flatview_add_to_dispatch} for one range: a head subpage, the whole pages, a tail subpage. */
    private void addRange(FlatRange range) {
        long rangeXlat = range.offsetInRegion() - range.start();
        RangeAccess r = SharedSecrets.coreAccess().rangeAccess(range); // one record per range, shared by its sections
        DispatchBuilder.splitRange(range.start(), range.last(), pageMask, new DispatchBuilder.Pieces() {
            @Override
            public void subpage(long first, long last) {
                registerSubpage(first, last, rangeXlat, r);
            }

            @Override
            public void pages(long first, long last) {
                int s = addSection(first, last - first, rangeXlat, r);
                setPages(first >>> pageBits, ((last - first) >>> pageBits) + 1, s);
            }
        });
    }

    /** QEMU's {@code register_subpage}, with the container made by this update when the page has none yet. */
    private void registerSubpage(long pieceFirst, long pieceLast, long pieceXlat, RangeAccess r) {
        long base = pieceFirst & ~pageMask;
        int c = AddressSpaceDispatch.walk(st.nodes, treeRoot, levels, base >>> pageBits);
        int[] pieces = drafts.get(c);
        if (pieces == null) {
            assert c == UNASSIGNED : "page " + U64.hex(base) + " still mapped by section " + c;
            pieces = new int[4];
            c = newContainer(base, pieces);
        }
        int piece = addSection(pieceFirst, pieceLast - pieceFirst, pieceXlat, r);
        int n = pieces[0] + 1;
        if (n == pieces.length) {
            pieces = Arrays.copyOf(pieces, 2 * n);
            drafts.put(c, pieces);
        }
        pieces[n] = piece;
        pieces[0] = n;
    }

    /** Writes the table of every container this update made: one entry per granule, as the full build does. */
    private void finishDrafts() {
        for (var e : drafts.entrySet()) {
            int c = e.getKey();
            int[] pieces = e.getValue();
            int shift = pageBits;
            for (int k = 1; k <= pieces[0]; k++) {
                int p = pieces[k];
                shift = AddressSpaceDispatch.subpageShift(shift, pageMask, st.sec[4 * p], st.sec[4 * p + 1]);
            }
            int size = 1 + (1 << (pageBits - shift));
            int t = st.subpageTop;
            if ((long) t + size > st.subpages.length) {
                long cap = Math.max((long) t + size, 2L * st.subpages.length);
                if (cap > Integer.MAX_VALUE - 8) {
                    throw new IllegalStateException("subpageEntries=" + cap + ": too many fine-grained subpages");
                }
                st.subpages = Arrays.copyOf(st.subpages, (int) cap);
            }
            st.subpages[t] = shift;
            Arrays.fill(st.subpages, t + 1, t + size, UNASSIGNED);
            for (int k = 1; k <= pieces[0]; k++) {
                int p = pieces[k];
                AddressSpaceDispatch.fillSubpage(st.subpages, t, shift, pageMask, st.sec[4 * p], st.sec[4 * p + 1], p);
            }
            st.subpageTop = t + size;
            st.sec[4 * c + 3] = t;
        }
    }

    /** Appends a section; {@code r} null makes a subpage container (its table is written by finishDrafts). */
    private int addSection(long first, long sizeM1, long xlat, RangeAccess r) {
        int s = st.sectionTop;
        if (s == st.ranges.length) {
            if (s >= Integer.MAX_VALUE / AddressSpaceDispatch.SEC_STRIDE - 8) {
                throw new IllegalStateException("sections=" + s + ": too many sections for one dispatch");
            }
            int n = (int) Math.min(Integer.MAX_VALUE / AddressSpaceDispatch.SEC_STRIDE - 8L, 2L * s + 16);
            st.ranges = Arrays.copyOf(st.ranges, n);
            st.sec = Arrays.copyOf(st.sec, AddressSpaceDispatch.SEC_STRIDE * n);
        }
        st.sec[4 * s] = first;
        st.sec[4 * s + 1] = sizeM1;
        st.sec[4 * s + 2] = xlat;
        st.sec[4 * s + 3] = -1;
        st.ranges[s] = r;
        st.sectionTop = s + 1;
        return s;
    }

    // ---------------------------------------------------------------- the page tree, path-copied

    @Override
    int[] nodes() {
        return st.nodes;
    }

    /**
     * Over a tree that already holds entries: the node the entry at {@code pos} points to is copied first when an
     * older dispatch shares it, and an entry that is a leaf or NIL where a node is needed becomes a node of 512
     * copies of it.
     */
    @Override
    int writableNode(int pos, int level) {
        int e = pos < 0 ? treeRoot : st.nodes[pos];
        int node;
        if (e >= 0 || e == NIL) {
            // A leaf covers every page below this entry alike; NIL means nothing below (unassigned at the bottom).
            node = allocNode(e >= 0 ? e : level == 0 ? UNASSIGNED : NIL);
        } else {
            assert AddressSpaceDispatch.skipOf(e) == 1 : "a compacted pointer in an updatable tree";
            node = AddressSpaceDispatch.nodeOf(e);
            if (node < sharedNodes) {
                int copy = allocNode(NIL);
                System.arraycopy(st.nodes, node * NODE_SIZE, st.nodes, copy * NODE_SIZE, NODE_SIZE);
                node = copy;
            }
        }
        int p = AddressSpaceDispatch.pointer(node, 1);
        if (pos < 0) {
            treeRoot = p;
        } else {
            st.nodes[pos] = p;
        }
        return node;
    }

    /** Appends a node with every entry {@code fill}. */
    private int allocNode(int fill) {
        int n = st.nodeTop;
        long end = (long) (n + 1) * NODE_SIZE;
        if (end > st.nodes.length) {
            if (end > Integer.MAX_VALUE - 8) {
                throw new IllegalStateException("nodes=" + n + ": the page tree outgrew the largest Java array");
            }
            st.nodes = Arrays.copyOf(st.nodes,
                    (int) Math.min(Integer.MAX_VALUE - 8L, Math.max(end, 2L * st.nodes.length)));
        }
        Arrays.fill(st.nodes, n * NODE_SIZE, n * NODE_SIZE + NODE_SIZE, fill);
        st.nodeTop = n + 1;
        return n;
    }

    // ---------------------------------------------------------------- checking (assertions only)

    /**
     * Checks {@code d} against a full build of its view: at every edge of the redone intervals and of their end
     * pages (each +-1), at the edges of every section this update made (+-1), and at addresses spread over the
     * view's ranges, both must find a section of the same flat range at the same region offset, and {@code d}'s
     * section must lie inside that range. Throws AssertionError otherwise; returns true for {@code assert}.
     */
    private static boolean agreesWithFullBuild(AddressSpaceDispatch d, long[] intervals, int firstNew,
                                               MemoryRegion unassigned) {
        AddressSpaceDispatch full = AddressSpaceDispatch.build(d.view, d.pageBits, unassigned);
        long mask = d.pageMask;
        for (int i = 0; i < intervals.length; i++) {
            long x = intervals[i];
            for (long y : new long[] {x, x & ~mask, x | mask}) {
                check(d, full, y - 1);
                check(d, full, y);
                check(d, full, y + 1);
            }
        }
        for (int s = firstNew; s < d.sectionCount; s++) {
            for (long y : new long[] {d.sectionFirst(s), d.sectionLast(s)}) {
                check(d, full, y - 1);
                check(d, full, y);
                check(d, full, y + 1);
            }
        }
        FlatRange[] ranges = SharedSecrets.coreAccess().rangeArray(d.view);
        int step = Math.max(1, ranges.length / 64);
        for (int i = 0; i < ranges.length; i += step) {
            FlatRange r = ranges[i];
            check(d, full, r.start());
            check(d, full, r.last());
            check(d, full, r.start() + ((r.last() - r.start()) >>> 1));
        }
        return true;
    }

    private static void check(AddressSpaceDispatch d, AddressSpaceDispatch full, long addr) {
        int s = d.sectionIndex(addr);
        int f = full.sectionIndex(addr);
        FlatRange fr = d.flatRange(s);
        boolean inside = fr == null ? s == UNASSIGNED
                : U64.le(fr.start(), d.sectionFirst(s)) && U64.le(d.sectionLast(s), fr.last());
        if (!Objects.equals(fr, full.flatRange(f)) || d.offsetInRegion(s, addr) != full.offsetInRegion(f, addr)
                || !inside || d.isSubpage(s)) {
            throw new AssertionError("derived dispatch differs from a full build at addr=" + U64.hex(addr)
                    + ": section " + s + " [" + U64.hex(d.sectionFirst(s)) + ", " + U64.hex(d.sectionLast(s))
                    + "] of " + fr + ", full build section " + f + " of " + full.flatRange(f));
        }
    }
}
