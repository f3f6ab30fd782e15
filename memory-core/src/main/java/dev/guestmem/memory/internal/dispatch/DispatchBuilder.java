package dev.guestmem.memory.internal.dispatch;

import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.Arrays;

import static dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch.NIL;
import static dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch.NODE_SIZE;
import static dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch.UNASSIGNED;

/**
 * Builds an {@link AddressSpaceDispatch} from a flat view, as QEMU's {@code flatview_add_to_dispatch},
 * {@code register_subpage}, {@code register_multipage}, {@code phys_page_set} and {@code phys_page_compact} do, in
 * the same order, so that sections and nodes get QEMU's numbers. Cost: proportional to the ranges plus the nodes
 * written (at most a few partial nodes per level per range) plus one pass over the nodes to compact them.
 *
 * <p>Two forms: QEMU-exact ({@code compact}: QEMU's {@code phys_page_compact} over the whole tree, for the first
 * dispatch of a view root and for {@code info mtree -d}), and updatable (only the chain below the root skipped, see
 * {@link AddressSpaceDispatch#lookupRoot}; the tables get headroom), which {@link DispatchUpdater} derives later
 * dispatches from.
 *
 * <p>Threading: used once, by the writer.
 */
final class DispatchBuilder extends PageTreeWriter {
    private final int pageBits;
    private final long pageMask;
    private final boolean compact;

    private int[] nodes = new int[NODE_SIZE * 8];
    private int nodeCount;
    private int root = NIL;

    private int sectionCount;
    private long[] first = new long[16];
    private long[] sizeM1 = new long[16];
    private long[] xlat = new long[16];
    /** The flat range a section is a piece of; -1 for a subpage container, -2 for section 0. */
    private int[] rangeOf = new int[16];
    /** For a subpage container, its first piece, else -1; pieces of one container are chained by nextPiece. */
    private int[] firstPiece = new int[16];
    private int[] nextPiece = new int[16];

    DispatchBuilder(int pageBits, boolean compact) {
        super(checkedLevels(pageBits));
        this.compact = compact;
        this.pageBits = pageBits;
        this.pageMask = (1L << pageBits) - 1;
    }

    AddressSpaceDispatch build(FlatView view, MemoryRegion unassigned) {
        FlatRange[] ranges = SharedSecrets.coreAccess().rangeArray(view);
        addSection(0, -1L, 0, -2); // section 0: the whole space, unassigned
        for (int i = 0; i < ranges.length; i++) {
            addRange(i, ranges[i]);
        }
        int treeRoot = root;
        if (compact && root != NIL) {
            root = compact(root);
            treeRoot = root;
        } else if (!compact) {
            root = AddressSpaceDispatch.lookupRoot(nodes, treeRoot);
        }
        return freeze(view, ranges, unassigned, treeRoot);
    }

    /** QEMU's {@code flatview_add_to_dispatch}: a head subpage, the whole pages, a tail subpage. */
    private void addRange(int range, FlatRange r) {
        // One difference between region offset and address holds for every piece of the range.
        long rangeXlat = r.offsetInRegion() - r.start();
        splitRange(r.start(), r.last(), pageMask, new Pieces() {
            @Override
            public void subpage(long first, long last) {
                registerSubpage(first, last, rangeXlat, range);
            }

            @Override
            public void pages(long first, long last) {
                int s = addSection(first, last - first, rangeXlat, range);
                setPages(first >>> pageBits, ((last - first) >>> pageBits) + 1, s);
            }
        });
    }

    /** Where {@link #splitRange} hands the pieces of a range, in address order. */
    interface Pieces {
        /** {@code [first, last]} lies inside one page and does not fill it. */
        void subpage(long first, long last);

        /** {@code [first, last]} is one or more whole, aligned pages. */
        void pages(long first, long last);
    }

    /**
     * QEMU's split of a range for the dispatch ({@code flatview_add_to_dispatch}): the part in the first page if the
     * range starts inside one, then the whole pages, then the part in the last page if it ends inside one. Pages are
     * {@code pageMask + 1} bytes; {@code [start, last]} is inclusive and may be the whole 2^64 space.
     */
    static void splitRange(long start, long last, long pageMask, Pieces out) {
        if ((start & pageMask) != 0) {
            long headLast = U64.min(last, start | pageMask);
            out.subpage(start, headLast);
            if (headLast == last) {
                return;
            }
            start = headLast + 1;
        }
        // start is page-aligned here; whole pages exist when at least a page's worth remains (compared as
        // last - start, so that the whole 2^64 space does not wrap).
        if (Long.compareUnsigned(last - start, pageMask) >= 0) {
            long pagesLast = ((last + 1) & pageMask) == 0 ? last : (last & ~pageMask) - 1;
            out.pages(start, pagesLast);
            if (pagesLast == last) {
                return;
            }
            start = pagesLast + 1;
        }
        out.subpage(start, last);
    }

    /** QEMU's {@code register_subpage}: a piece of one page, in that page's container (made on first use). */
    private void registerSubpage(long pieceFirst, long pieceLast, long pieceXlat, int range) {
        long base = pieceFirst & ~pageMask;
        int container = AddressSpaceDispatch.walk(nodes, root, levels, base >>> pageBits);
        if (rangeOf[container] != -1) {
            assert container == UNASSIGNED : "page " + U64.hex(base) + " already mapped by section " + container;
            container = addSection(base, pageMask, 0, -1);
            setPages(base >>> pageBits, 1, container);
        }
        int piece = addSection(pieceFirst, pieceLast - pieceFirst, pieceXlat, range);
        // Pieces never overlap, so their order in the chain does not matter.
        nextPiece[piece] = firstPiece[container];
        firstPiece[container] = piece;
    }

    /** A capacity a third above {@code n}, for the appends of derived dispatches. */
    private static int headroom(int n) {
        return (int) Math.min(Integer.MAX_VALUE - 8L, n + n / 3L + 16);
    }

    /** QEMU's {@code phys_section_add}. */
    private int addSection(long sFirst, long sSizeM1, long sXlat, int range) {
        int s = sectionCount;
        if (s == first.length) {
            if (s == Integer.MAX_VALUE - 8) {
                throw new IllegalStateException("sections=" + s + ": too many sections for one dispatch");
            }
            int n = (int) Math.min(Integer.MAX_VALUE - 8L, 2L * s);
            first = Arrays.copyOf(first, n);
            sizeM1 = Arrays.copyOf(sizeM1, n);
            xlat = Arrays.copyOf(xlat, n);
            rangeOf = Arrays.copyOf(rangeOf, n);
            firstPiece = Arrays.copyOf(firstPiece, n);
            nextPiece = Arrays.copyOf(nextPiece, n);
        }
        first[s] = sFirst;
        sizeM1[s] = sSizeM1;
        xlat[s] = sXlat;
        rangeOf[s] = range;
        firstPiece[s] = -1;
        nextPiece[s] = -1;
        sectionCount = s + 1;
        return s;
    }

    // ---------------------------------------------------------------- the page tree

    private static int checkedLevels(int pageBits) {
        AddressSpaceDispatch.checkPageBits(pageBits);
        return AddressSpaceDispatch.levels(pageBits);
    }

    @Override
    int[] nodes() {
        return nodes;
    }

    /** Allocates the node when the entry is NIL (QEMU's {@code phys_page_set_level}). */
    @Override
    int writableNode(int pos, int level) {
        int e = pos < 0 ? root : nodes[pos];
        if (e == NIL) {
            e = AddressSpaceDispatch.pointer(allocNode(level == 0), 1);
            if (pos < 0) {
                root = e;
            } else {
                nodes[pos] = e;
            }
        }
        assert e < 0 : "a leaf where pages still need a node: entry " + e + " at level " + level;
        return AddressSpaceDispatch.nodeOf(e);
    }

    /** QEMU's {@code phys_map_node_alloc}: a bottom node starts all unassigned, any other all NIL. */
    private int allocNode(boolean bottom) {
        int n = nodeCount;
        long end = (long) (n + 1) * NODE_SIZE;
        if (end > nodes.length) {
            if (end > Integer.MAX_VALUE - 8) {
                throw new IllegalStateException("nodes=" + n + ": the page tree outgrew the largest Java array");
            }
            nodes = Arrays.copyOf(nodes, (int) Math.min(Integer.MAX_VALUE - 8L, Math.max(end, 2L * nodes.length)));
        }
        Arrays.fill(nodes, n * NODE_SIZE, n * NODE_SIZE + NODE_SIZE, bottom ? UNASSIGNED : NIL);
        nodeCount = n + 1;
        return n;
    }

    /**
     * QEMU's {@code phys_page_compact}: compacts below the pointer entry {@code e}, then, if its node has exactly
     * one entry that is not NIL, returns an entry that goes straight to that child (a leaf, or its node with the
     * skips added up); else returns {@code e}. Nodes stay where they are, so unreachable ones remain in the dump.
     */
    private int compact(int e) {
        if (e == NIL) {
            return e;
        }
        int base = AddressSpaceDispatch.nodeOf(e) * NODE_SIZE;
        int valid = 0;
        int only = -1;
        for (int i = base; i < base + NODE_SIZE; i++) {
            int c = nodes[i];
            if (c == NIL) {
                continue;
            }
            valid++;
            only = i;
            if (c < 0) {
                nodes[i] = compact(c);
            }
        }
        if (valid != 1) {
            return e;
        }
        int child = nodes[only];
        if (child >= 0) {
            return child;
        }
        return AddressSpaceDispatch.pointer(AddressSpaceDispatch.nodeOf(child),
                AddressSpaceDispatch.skipOf(e) + AddressSpaceDispatch.skipOf(child));
    }

    // ---------------------------------------------------------------- finishing

    private AddressSpaceDispatch freeze(FlatView view, FlatRange[] ranges, MemoryRegion unassigned, int treeRoot) {
        int n = sectionCount;
        int[] secSubpage = new int[n];
        Arrays.fill(secSubpage, -1);
        // Granule of each container: the largest power of two dividing every piece boundary inside the page.
        long tableSize = 0;
        int[] shifts = new int[n];
        for (int c = 0; c < n; c++) {
            if (rangeOf[c] != -1) {
                continue;
            }
            int shift = pageBits;
            for (int p = firstPiece[c]; p >= 0; p = nextPiece[p]) {
                shift = AddressSpaceDispatch.subpageShift(shift, pageMask, first[p], sizeM1[p]);
            }
            shifts[c] = shift;
            secSubpage[c] = (int) Math.min(tableSize, Integer.MAX_VALUE);
            tableSize += 1 + (1L << (pageBits - shift));
        }
        if (tableSize > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("subpageEntries=" + tableSize + ": too many fine-grained subpages");
        }
        // An updatable build leaves room for the dispatches derived from it to append (see Store).
        int nSub = (int) tableSize;
        int subCap = compact ? nSub : headroom(nSub);
        int secCap = compact ? n : headroom(n);
        int nodeCap = compact ? nodeCount * NODE_SIZE : headroom(nodeCount) * NODE_SIZE;
        int[] subpages = new int[subCap];
        for (int c = 0; c < n; c++) {
            int t = secSubpage[c];
            if (t < 0) {
                continue;
            }
            int shift = shifts[c];
            subpages[t] = shift;
            // Entries start unassigned (0), as QEMU's zeroed table: bytes of the page no piece covers.
            for (int p = firstPiece[c]; p >= 0; p = nextPiece[p]) {
                AddressSpaceDispatch.fillSubpage(subpages, t, shift, pageMask, first[p], sizeM1[p], p);
            }
        }
        // Section objects are made on first use (AddressSpaceDispatch.section): the access path needs only the
        // flat ranges, and a large map has hundreds of thousands of sections per commit.
        RangeAccess[] sectionRanges = new RangeAccess[secCap];
        RangeAccess[] perRange = new RangeAccess[ranges.length]; // one record per range, shared by its sections
        for (int s = 1; s < n; s++) {
            int r = rangeOf[s];
            if (r >= 0) {
                if (perRange[r] == null) {
                    perRange[r] = SharedSecrets.coreAccess().rangeAccess(ranges[r]);
                }
                sectionRanges[s] = perRange[r];
            }
        }
        long[] sec = new long[AddressSpaceDispatch.SEC_STRIDE * secCap];
        for (int i = 0; i < n; i++) {
            sec[4 * i] = first[i];
            sec[4 * i + 1] = sizeM1[i];
            sec[4 * i + 2] = xlat[i];
            sec[4 * i + 3] = secSubpage[i];
        }
        AddressSpaceDispatch.Store store = new AddressSpaceDispatch.Store(Arrays.copyOf(nodes, nodeCap), nodeCount,
                sec, sectionRanges, n, subpages, nSub);
        return new AddressSpaceDispatch(view, pageBits, unassigned, compact, root, treeRoot, store, nodeCount, n,
                nSub);
    }
}
