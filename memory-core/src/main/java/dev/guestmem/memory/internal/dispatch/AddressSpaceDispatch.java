package dev.guestmem.memory.internal.dispatch;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionSection;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.SharedSecrets;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * The lookup structure of one {@link FlatView} at one page size, as QEMU's {@code AddressSpaceDispatch}: a radix
 * tree over guest pages whose leaves are indexes into a table of sections, with a most-recently-used section checked
 * before the tree.
 *
 * <h2>Layout</h2>
 * Everything a lookup touches is a primitive array:
 * <ul>
 *   <li><b>Nodes</b> ({@code int[] nodes}): node {@code k} is the 512 entries ({@link #BITS_PER_LEVEL} = 9 bits of
 *   the page number, QEMU's {@code P_L2_BITS}) at {@code [512k, 512k + 511]}. The tree has
 *   {@code (64 - pageBits - 1) / 9 + 1} levels (QEMU's {@code P_L2_LEVELS}), enough for every page of a 64-bit
 *   address space. An entry is either a <em>leaf</em>, a section index {@code >= 0}, or a <em>pointer</em>,
 *   {@code ~(512k | 9 * skip)} for node {@code k} and {@code skip} levels further down (always negative), or
 *   {@code NIL}, the pointer to nothing (QEMU's {@code PHYS_MAP_NODE_NIL}).</li>
 *   <li>A range that covers an aligned block of pages the size of an entry is stored as one leaf at that entry's
 *   level, however high (QEMU's {@code phys_page_set_level}), so a 2^64 range costs a few entries at the top.</li>
 *   <li>Chains of nodes with one child are skipped (QEMU's {@code phys_page_compact}): the pointer to the chain's
 *   head points at its last node with the skips added up. A lookup then ignores the page bits of the skipped
 *   levels, so it may land on a leaf that does not hold the address; every lookup therefore checks that the
 *   section it reached covers the address and answers {@link #UNASSIGNED} when it does not (QEMU's
 *   {@code section_covers_addr}).</li>
 *   <li><b>Sections</b>: parallel arrays indexed by section: first guest-physical byte, size minus one, and the
 *   difference between region offset and address, plus the {@link MemoryRegionSection} objects. Section
 *   {@link #UNASSIGNED} (0) covers the whole space and stands for "nothing mapped" (QEMU's
 *   {@code PHYS_SECTION_UNASSIGNED}, with the system's {@link MemorySystem#unassignedRegion()}).</li>
 *   <li><b>Subpages</b>: a page shared by several sections (or by one section and a hole) gets a <em>subpage
 *   container</em> section of its own, and the tree points at the container (QEMU's {@code subpage_t}). The
 *   container's table in {@code int[] subpages} maps each offset in the page to the section holding it. QEMU keeps
 *   one entry per byte; here one entry covers a <em>granule</em>, the largest power of two that divides every
 *   section boundary inside that page, so a page split at 1 KiB boundaries costs 4 entries and only byte-sized
 *   I/O ports cost one entry per byte. The table starts with the granule's shift.</li>
 * </ul>
 *
 * <p>Sections are numbered as QEMU numbers them (section 0, then each flat range in address order split into a
 * head subpage, its whole pages and a tail subpage, a new subpage container just before the first piece in its
 * page), and nodes are allocated in QEMU's order, so {@code info mtree -d} prints what QEMU prints. There is no
 * limit on the number of sections short of the JVM's array size.
 *
 * <p>Memory: 2 KiB per node (QEMU's is the same), about 80 bytes per section (three {@code long}s, one {@code int},
 * the {@link MemoryRegionSection}), and per subpage container {@code 4 * pageSize / granule} bytes.
 *
 * <p>Threading: built by the writer before the view it belongs to is published, then never changed except for the
 * MRU hint (see {@link #sectionIndex}). Lookups are lock-free and allocation-free from any number of threads.
 */
public final class AddressSpaceDispatch {
    /** Page-number bits resolved per tree level (QEMU's {@code P_L2_BITS}). */
    public static final int BITS_PER_LEVEL = 9;
    /** Entries per node (QEMU's {@code P_L2_SIZE}). */
    public static final int NODE_SIZE = 1 << BITS_PER_LEVEL;
    /** The section of addresses that nothing maps (QEMU's {@code PHYS_SECTION_UNASSIGNED}). */
    public static final int UNASSIGNED = 0;
    /** The smallest page size supported: 256 bytes. */
    public static final int MIN_PAGE_BITS = 8;
    /**
     * The largest page size supported: 1 MiB. A subpage table holds up to one entry per byte of a page, so larger
     * pages would make a few byte-sized I/O ports cost megabytes.
     */
    public static final int MAX_PAGE_BITS = 20;
    /** The number QEMU prints for a pointer to no node ({@code PHYS_MAP_NODE_NIL}). */
    public static final int PRINTED_NIL = (1 << 26) - 1;

    /** The pointer to no node; its skip is 1, as QEMU's. */
    static final int NIL = pointer((1 << 22) - 1, 1);
    private static final int ENTRY_LOW_MASK = NODE_SIZE - 1;

    final int pageBits;
    final long pageMask;
    final int levels;
    /**
     * The root entry lookups start from (QEMU's {@code phys_map}). In a {@linkplain #exact QEMU-exact} build it is
     * QEMU's compacted root; otherwise the chain of nodes with one child below {@link #treeRoot} skipped.
     */
    final int root;
    /**
     * The root of the tree as stored: in a QEMU-exact build the same as {@link #root}; otherwise uncompacted (every
     * pointer skips one level), which is what lets {@link DispatchUpdater} path-copy it.
     */
    final int treeRoot;
    /** Whether sections and nodes are numbered and compacted exactly as QEMU does it (see {@link #qemuLayout}). */
    final boolean exact;
    /**
     * The node table. In a derived dispatch it is shared with the dispatch it was derived from: nodes
     * {@code [0, nodeCount)} are this dispatch's, and a later dispatch may append nodes beyond them (see
     * {@link Store}).
     */
    final int[] nodes;
    final int nodeCount;
    /**
     * The section table, four longs per section so that one lookup touches one cache line: at {@code 4*i} the
     * guest-physical first byte, at {@code 4*i+1} the size minus one (unsigned; 2^64 - 1 for section 0), at
     * {@code 4*i+2} the region offset minus the address (the region offset of {@code addr} is {@code addr} plus it),
     * and at {@code 4*i+3} where a subpage container's table starts in {@link #subpages}, or -1 for every other
     * section. Shared and appended to like {@link #nodes}; sections {@code [0, sectionCount)} are this dispatch's.
     */
    final long[] sec;
    static final int SEC_STRIDE = 4;
    final int sectionCount;
    /** Each subpage table: the granule shift, then one section index per granule of the page. Shared likewise. */
    final int[] subpages;
    /** Entries of {@link #subpages} used by this dispatch. */
    final int subpageEnd;
    /** The view this dispatch was built from. */
    final FlatView view;
    /** The region of section 0. */
    final MemoryRegion unassigned;
    /**
     * The section objects, made on first use by {@link #section}, in chunks of {@link #CHUNK} slots that are made
     * on first use too, so that a derived dispatch costs nothing per section until someone asks. Always null for
     * subpage containers, which are internal. Any reader may fill a slot or a chunk; a racing reader may make a
     * second, equal object. A chunk is published with release and read with acquire ({@link #CHUNKS}); a section
     * object is complete when seen because a record's fields are final. Per dispatch, not shared: a section names
     * its view.
     */
    private final MemoryRegionSection[][] sectionChunks;
    private static final int CHUNK_BITS = 8;
    private static final int CHUNK = 1 << CHUNK_BITS;
    private static final VarHandle CHUNKS = MethodHandles.arrayElementVarHandle(MemoryRegionSection[][].class);
    /**
     * The flat range each section is a piece of, with what a direct access to it needs ({@link RangeAccess}); null
     * for section 0 and subpage containers. Shared likewise.
     */
    final RangeAccess[] sectionRanges;
    /** The writer's append state of the shared tables; never touched by readers. */
    final Store store;

    /**
     * The most recently found section (QEMU's {@code mru_section}): a racy hint read and written with plain
     * accesses by every reader. It is safe because every value it can ever hold is a valid section index of this
     * dispatch: it starts at {@link #UNASSIGNED} and is only ever assigned indexes that a lookup in this
     * dispatch's own final arrays returned; an int store cannot tear. A stale or lost value only costs a tree walk,
     * since it is checked against the address before it is used. Section 0 and subpage containers are never
     * stored, so a hit needs no further resolution.
     */
    private int mru;
    /** The access path's hint: the record of the range {@link #rangeAccess} found last. Racy like {@link #mru}. */
    private RangeAccess mruAccess = RangeAccess.NONE;
    /**
     * The access path's second hint, behind {@link #mruAccess}: a direct-mapped cache of ranges by page, slot
     * {@code page % slots} holding the record of the range a walk last found for a page of that slot (any address of
     * that range then hits). Made by the first walk with {@link #RANGE_CACHE_MIN} slots, so a dispatch nobody misses
     * on costs nothing, and doubled, up to {@link #RANGE_CACHE_MAX}, each time the walks since it was made reach its
     * slot count: a working set that fits stops walking once its pages are in, and one spread over more pages than
     * the cache holds grows it until it fits or the cap is reached (QEMU sizes its TLBs by their use the same way,
     * {@code tlb_mmu_resize_locked}). Racy like {@link #mruAccess}: the array is published with a plain store (a
     * reader sees it with its slots null or filled, never anything else, as the JVM zeroes it before any thread can
     * see it) and its slots are complete immutable records of this dispatch, checked against the address before use;
     * a lost store, or a lost count of {@link #rangeWalks}, only costs a walk.
     */
    private RangeAccess[] rangeCache;
    /** Tree walks behind {@link #rangeCache} since it was made: plain, racy, only a growth heuristic. */
    private int rangeWalks;
    /** Slots of {@link #rangeCache} when it is made: 4 KiB of references, a 4 MiB working set of 4 KiB pages. */
    static final int RANGE_CACHE_MIN = 1024;
    /** The most slots {@link #rangeCache} grows to: 256 KiB of references, 256 MiB of 4 KiB pages. */
    static final int RANGE_CACHE_MAX = 1 << 16;

    AddressSpaceDispatch(FlatView view, int pageBits, MemoryRegion unassigned, boolean exact, int root, int treeRoot,
                         Store store, int nodeCount, int sectionCount, int subpageEnd) {
        this.view = view;
        this.pageBits = pageBits;
        this.pageMask = (1L << pageBits) - 1;
        this.levels = levels(pageBits);
        this.unassigned = unassigned;
        this.exact = exact;
        this.root = root;
        this.treeRoot = treeRoot;
        this.store = store;
        this.nodes = store.nodes;
        this.nodeCount = nodeCount;
        this.sec = store.sec;
        this.sectionCount = sectionCount;
        this.subpages = store.subpages;
        this.subpageEnd = subpageEnd;
        this.sectionRanges = store.ranges;
        this.sectionChunks = new MemoryRegionSection[(sectionCount + CHUNK - 1) >>> CHUNK_BITS][];
    }

    /**
     * The tables a chain of dispatches shares, and how far the newest of them fills them. Each dispatch of the
     * chain uses a prefix; the writer derives the next dispatch only from the newest ({@link #isTip}), appending
     * beyond every prefix in use, so no published entry is ever written again. Growing replaces an array by a
     * larger copy; older dispatches keep the array they had.
     *
     * <p>Threading: writer only (topology lock held); readers see only the arrays, through a dispatch's final
     * fields, after the acquire load of the view that carries it.
     */
    static final class Store {
        int[] nodes;
        int nodeTop;
        long[] sec;
        RangeAccess[] ranges;
        int sectionTop;
        int[] subpages;
        int subpageTop;
        /** Sections and nodes of the last full build: the live size garbage is measured against. */
        final int builtSections;
        final int builtNodes;

        Store(int[] nodes, int nodeTop, long[] sec, RangeAccess[] ranges, int sectionTop, int[] subpages,
              int subpageTop) {
            this.nodes = nodes;
            this.nodeTop = nodeTop;
            this.sec = sec;
            this.ranges = ranges;
            this.sectionTop = sectionTop;
            this.subpages = subpages;
            this.subpageTop = subpageTop;
            this.builtSections = sectionTop;
            this.builtNodes = nodeTop;
        }

        /** Whether {@code d} is the newest dispatch using these tables: only then may a new one append to them. */
        boolean isTip(AddressSpaceDispatch d) {
            return d.store == this && nodeTop == d.nodeCount && sectionTop == d.sectionCount
                    && subpageTop == d.subpageEnd;
        }

        /**
         * Whether what derived dispatches appended (an upper bound on the garbage: sections and nodes no longer
         * reachable) exceeds the live size of the last full build; then a full build is due. Rebuilding only then
         * keeps the cost of rebuilds amortized O(1) per appended entry.
         */
        boolean needsRebuild() {
            return sectionTop - builtSections > builtSections + 1024 || nodeTop - builtNodes > builtNodes + 64;
        }
    }

    /**
     * Builds the dispatch of {@code view} for pages of {@code 2^pageBits} bytes exactly as QEMU would, section and
     * node numbers and compaction included. Writer only (or on a view no writer changes: views are immutable).
     */
    public static AddressSpaceDispatch build(FlatView view, int pageBits, MemoryRegion unassigned) {
        return new DispatchBuilder(pageBits, true).build(view, unassigned);
    }

    /**
     * Builds the dispatch of {@code view} in the form {@link DispatchUpdater} can derive from: QEMU's sections and
     * nodes, but the tree left uncompacted except for the chain below the root. Writer only.
     */
    public static AddressSpaceDispatch buildUpdatable(FlatView view, int pageBits, MemoryRegion unassigned) {
        return new DispatchBuilder(pageBits, false).build(view, unassigned);
    }

    /**
     * The dispatch of {@code as}'s current view (QEMU's {@code address_space_to_dispatch}), from one acquire load of
     * the view. A caller that looks up several things keeps the dispatch it got, so that they all come from one
     * snapshot: the section indexes of one dispatch mean nothing in another. For the {@code info mtree -d} printer
     * and the translation benchmark; the access path gets its dispatch from the address space itself.
     */
    public static AddressSpaceDispatch of(AddressSpace as) {
        return SharedSecrets.coreAccess().dispatch(as);
    }

    /**
     * The dispatch of {@code view} for pages of {@code 2^pageBits} bytes (QEMU's {@code flatview_to_dispatch}).
     *
     * @throws IllegalArgumentException when no address space using this view has that page size
     */
    public static AddressSpaceDispatch of(FlatView view, int pageBits) {
        return SharedSecrets.coreAccess().dispatch(view, pageBits);
    }

    /**
     * This dispatch as QEMU would lay it out for the same view: itself when it is a full QEMU-exact build, else a
     * fresh exact build (a full build's cost), whose lookups give the same regions and offsets. For
     * {@code info mtree -d} and structural inspection; a dispatch derived from an older one has other section and
     * node numbers, unreachable garbage, and no interior compaction. Any thread.
     */
    public AddressSpaceDispatch qemuLayout() {
        return exact ? this : build(view, pageBits, unassigned);
    }

    /**
     * The lookup root for the uncompacted tree below {@code treeRoot}: QEMU's compaction applied to the chain of
     * nodes below the root only, where every entry but one is empty (NIL, or unassigned after a derived dispatch
     * cleared it). Skipping them is safe for the reason all compaction is: a lookup checks that the section it
     * reaches covers the address. Costs one scan of each node on the chain.
     */
    static int lookupRoot(int[] nodes, int treeRoot) {
        int e = treeRoot;
        while (e < 0 && e != NIL) {
            int base = nodeOf(e) * NODE_SIZE;
            int only = NIL;
            int found = 0;
            for (int i = base; i < base + NODE_SIZE && found < 2; i++) {
                int c = nodes[i];
                if (c != NIL && c != UNASSIGNED) {
                    found++;
                    only = c;
                }
            }
            if (found == 0) {
                return NIL;
            }
            if (found > 1) {
                return e;
            }
            if (only >= 0) {
                return only;
            }
            e = pointer(nodeOf(only), skipOf(e) + skipOf(only));
        }
        return e;
    }

    /** QEMU's {@code P_L2_LEVELS} for this page size: enough levels to index every page of 2^64 bytes. */
    public static int levels(int pageBits) {
        return (64 - pageBits - 1) / BITS_PER_LEVEL + 1;
    }

    /** Throws unless {@code pageBits} is a supported page size. */
    public static void checkPageBits(int pageBits) {
        if (pageBits < MIN_PAGE_BITS || pageBits > MAX_PAGE_BITS) {
            throw new IllegalArgumentException("pageBits=" + pageBits + ": supported page sizes are 2^"
                    + MIN_PAGE_BITS + " to 2^" + MAX_PAGE_BITS + " bytes");
        }
    }

    // ---------------------------------------------------------------- lookup (hot path)

    /**
     * The section holding guest-physical {@code addr}, {@link #UNASSIGNED} when nothing is mapped there (QEMU's
     * {@code address_space_lookup_region} with the subpage resolved). Never a subpage container. Lock-free and
     * allocation-free.
     */
    public int sectionIndex(long addr) {
        // Plain read of the racy hint; see the field's comment for why any value read is usable.
        int s = mru;
        if (s != UNASSIGNED && Long.compareUnsigned(addr - sec[4 * s], sec[4 * s + 1]) <= 0) {
            return s;
        }
        return lookup(addr);
    }

    /** The tree walk behind an MRU miss; remembers what it found. */
    private int lookup(long addr) {
        int s = walk(nodes, root, levels, addr >>> pageBits);
        long[] t = sec;
        if (Long.compareUnsigned(addr - t[4 * s], t[4 * s + 1]) > 0) {
            // A skipped level led to a leaf of another part of the space: nothing is mapped here.
            return UNASSIGNED;
        }
        int sub = (int) t[4 * s + 3];
        if (sub >= 0) {
            s = subpages[sub + 1 + (int) ((addr & pageMask) >>> subpages[sub])];
        }
        if (s != UNASSIGNED) {
            mru = s; // plain store of the racy hint: s is a section index of this dispatch
        }
        return s;
    }

    /**
     * One step of a subpage container's granule, for the full and the incremental build alike: {@code shift}
     * (log2 of the granule so far, at most the page bits) lowered to the largest power of two that divides both
     * boundaries of the piece at guest {@code first}, {@code sizeM1} + 1 bytes, inside its page. A table then has
     * one entry per granule, so that {@link #sectionIndex} finds a piece with one shift.
     *
     * @param pageMask bytes per page, minus one
     */
    static int subpageShift(int shift, long pageMask, long first, long sizeM1) {
        long from = first & pageMask;
        long to = from + sizeM1 + 1;
        int s = shift;
        if (from != 0) {
            s = Math.min(s, Long.numberOfTrailingZeros(from));
        }
        if (to != pageMask + 1) {
            s = Math.min(s, Long.numberOfTrailingZeros(to));
        }
        return s;
    }

    /**
     * Points the entries of the subpage table at {@code table[t]} (its granule {@code shift} there, entries after it)
     * that the piece at guest {@code first}, {@code sizeM1} + 1 bytes, covers at section {@code piece}.
     */
    static void fillSubpage(int[] table, int t, int shift, long pageMask, long first, long sizeM1, int piece) {
        long from = first & pageMask;
        int lo = (int) (from >>> shift);
        int hi = (int) ((from + sizeM1) >>> shift);
        Arrays.fill(table, t + 1 + lo, t + 2 + hi, piece);
    }

    /**
     * QEMU's {@code phys_page_find} without the coverage check: the leaf reached from {@code entry} for page number
     * {@code page}. Pointer entries carry the number of page bits to skip in their low bits.
     */
    static int walk(int[] nodes, int entry, int levels, long page) {
        int e = entry;
        int shift = levels * BITS_PER_LEVEL;
        while (e < 0) {
            if (e == NIL) {
                return UNASSIGNED;
            }
            int x = ~e;
            shift -= x & ENTRY_LOW_MASK;
            e = nodes[(x & ~ENTRY_LOW_MASK) + ((int) (page >>> shift) & ENTRY_LOW_MASK)];
        }
        return e;
    }

    /** The section at index {@code i}; null for a subpage container (never returned by {@link #sectionIndex}). */
    public MemoryRegionSection section(int i) {
        if (i < 0 || i >= sectionCount) {
            throw new IndexOutOfBoundsException("section=" + i + " sectionCount=" + sectionCount);
        }
        MemoryRegionSection[] chunk = (MemoryRegionSection[]) CHUNKS.getAcquire(sectionChunks, i >>> CHUNK_BITS);
        if (chunk == null) {
            chunk = new MemoryRegionSection[CHUNK];
            // Release: a reader that loads the chunk with acquire sees it empty, never half made. A racing reader may
            // publish its own chunk instead; either holds only complete, equal objects.
            CHUNKS.setRelease(sectionChunks, i >>> CHUNK_BITS, chunk);
        }
        MemoryRegionSection s = chunk[i & (CHUNK - 1)];
        if (s == null) {
            if (i == UNASSIGNED) {
                s = new MemoryRegionSection(unassigned, view, 0, 0, -1L, false, false, false);
            } else {
                RangeAccess a = sectionRanges[i];
                if (a == null) {
                    return null; // a subpage container
                }
                FlatRange fr = a.range;
                long first = sec[4 * i];
                s = new MemoryRegionSection(fr.region(), view, first + sec[4 * i + 2], first,
                        first + sec[4 * i + 1], fr.readonly(), fr.nonvolatile(), fr.unmergeable());
            }
            chunk[i & (CHUNK - 1)] = s; // racy store of an immutable object; see the field's comment
        }
        return s;
    }

    /**
     * The flat range section {@code i} is a piece of (whole, not clipped to the piece), or null for
     * {@link #UNASSIGNED}: what the access path works with.
     */
    public FlatRange flatRange(int i) {
        RangeAccess a = sectionRanges[i];
        return a == null ? null : a.range;
    }

    /**
     * The {@link RangeAccess} of the flat range serving guest-physical {@code addr}, {@link RangeAccess#NONE} where
     * nothing is mapped: the access path's lookup. A range-sized most-recently-used hint comes first (any address of
     * the last range found, not only of its section), then a direct-mapped cache of ranges by page, then
     * {@link #sectionIndex}'s tree walk. Lock-free, and allocation-free but for the cache, made once per dispatch.
     */
    public RangeAccess rangeAccess(long addr) {
        // Plain read of a racy hint, as mru: every value it can hold is a complete, immutable record of a range of
        // this dispatch (or NONE), so a stale or lost value only costs a walk; it is checked against addr first.
        RangeAccess m = mruAccess;
        if (Long.compareUnsigned(addr - m.first, m.sizeM1) <= 0) {
            return m;
        }
        return rangeAccessWalk(addr);
    }

    /**
     * The record a walk found last, whatever address it covers ({@link RangeAccess#NONE} at first): the access path's
     * fast case checks it against the address itself and tries {@link #rangeCached} when it misses.
     */
    public RangeAccess rangeHint() {
        // Plain read of the racy hint; see rangeAccess.
        return mruAccess;
    }

    /**
     * {@link #rangeAccess} for a caller that found {@link #rangeHint()} does not cover {@code addr}: the cache, then
     * the tree.
     */
    public RangeAccess rangeAccessWalk(long addr) {
        RangeAccess c = rangeCached(addr);
        return c != null ? c : rangeWalk(addr);
    }

    /**
     * The record of the range at {@code addr} if the range cache holds it, else null: what the access path's inline
     * part tries after its hint, leaving the walk ({@link #rangeAccessWalk}) to its out-of-line general case, so that
     * the code compiled into every load and store stays small.
     */
    public RangeAccess rangeCached(long addr) {
        // Plain reads of the racy cache; see the field's comment.
        RangeAccess[] cache = rangeCache;
        if (cache != null) {
            RangeAccess c = cache[(int) (addr >>> pageBits) & (cache.length - 1)];
            if (c != null && Long.compareUnsigned(addr - c.first, c.sizeM1) <= 0) {
                // Not made the range hint: a hit writes nothing, so threads hitting here share the dispatch's lines.
                return c;
            }
        }
        return null;
    }

    /** The tree walk behind a miss of the range cache; fills the cache and the hint. */
    private RangeAccess rangeWalk(long addr) {
        RangeAccess[] cache = rangeCache;
        // The tree: the section hint is set by the same walks as the range hint, so it would miss too.
        int s = lookup(addr);
        if (s == UNASSIGNED) {
            return RangeAccess.NONE;
        }
        RangeAccess a = sectionRanges[s];
        if (cache == null || ++rangeWalks >= cache.length) {
            cache = grownRangeCache(cache);
        }
        cache[(int) (addr >>> pageBits) & (cache.length - 1)] = a; // plain stores of the racy hints; see rangeAccess
        mruAccess = a;
        return a;
    }

    /**
     * The range cache to fill after a walk that found {@code cache} (null before the first walk) due to grow: a new
     * empty one of twice its slots, or of {@link #RANGE_CACHE_MIN} at first, published; {@code cache} itself once it
     * has {@link #RANGE_CACHE_MAX}. Out of the walk's way, as it runs a few times per dispatch.
     */
    private RangeAccess[] grownRangeCache(RangeAccess[] cache) {
        rangeWalks = 0;
        if (cache != null && cache.length >= RANGE_CACHE_MAX) {
            return cache;
        }
        RangeAccess[] grown = new RangeAccess[cache == null ? RANGE_CACHE_MIN : 2 * cache.length];
        rangeCache = grown; // plain store of a zeroed array; see the field's comment
        return grown;
    }

    /** Slots in the range cache now, 0 before the first walk: how far it has grown. */
    int rangeCacheSlots() {
        RangeAccess[] cache = rangeCache;
        return cache == null ? 0 : cache.length;
    }

    /** Tree walks behind the range cache since it last grew (racy, as the count itself). */
    int rangeWalks() {
        return rangeWalks;
    }

    /** The region-relative offset of guest-physical {@code addr} in section {@code i}, which must hold it. */
    public long offsetInRegion(int i, long addr) {
        return addr + sec[4 * i + 2];
    }

    /**
     * How many of the {@code len} bytes from {@code addr} (inclusive, in section {@code i}) lie inside section
     * {@code i}: {@code len} clipped at the section's last byte. {@code len} 0 gives 0.
     */
    public long clipToSection(int i, long addr, long len) {
        long left = sec[4 * i] + sec[4 * i + 1] - addr; // bytes after addr in the section, unsigned
        return U64.clip(len, left);
    }

    /** The view this dispatch was built for (QEMU's dispatch belongs to its {@code FlatView} the same way). */
    public FlatView view() {
        return view;
    }

    // ---------------------------------------------------------------- structure (info mtree -d, tests)

    /** Pages are {@code 2^pageBits} bytes. */
    public int pageBits() {
        return pageBits;
    }

    /** Levels of the tree (QEMU's {@code P_L2_LEVELS}). */
    public int levels() {
        return levels;
    }

    /** Sections, including section 0 and the subpage containers. */
    public int sectionCount() {
        return sectionCount;
    }

    /** Guest-physical first byte of section {@code i}. */
    public long sectionFirst(int i) {
        return sec[4 * i];
    }

    /** Guest-physical last byte of section {@code i}, inclusive. */
    public long sectionLast(int i) {
        return sec[4 * i] + sec[4 * i + 1];
    }

    /** Whether section {@code i} is a subpage container: one page shared by several sections (QEMU's subpage). */
    public boolean isSubpage(int i) {
        return sec[4 * i + 3] >= 0;
    }

    /**
     * For a subpage container, the granule of its table in bytes: each table entry covers that many bytes of the
     * page (QEMU's table has one entry per byte).
     */
    public long subpageGranule(int i) {
        int sub = (int) sec[4 * i + 3];
        if (sub < 0) {
            throw new IllegalArgumentException("section=" + i + ": not a subpage container");
        }
        return 1L << subpages[sub];
    }

    /** The section the MRU hint holds now, {@link #UNASSIGNED} when none; changes as readers look things up. */
    public int mruSection() {
        return mru;
    }

    /** Nodes allocated, including those that compaction left unreachable (QEMU prints them too). */
    public int nodeCount() {
        return nodeCount;
    }

    /** QEMU's {@code phys_map.skip}: levels the root entry skips (0 when the root is a leaf). */
    public int rootSkip() {
        return skipOf(root);
    }

    /** QEMU's {@code phys_map.ptr}: the root's node, or its section when a leaf, or {@link #PRINTED_NIL}. */
    public int rootPtr() {
        return ptrOf(root);
    }

    /** QEMU's {@code skip} of entry {@code slot} of node {@code node}: 0 for a leaf, 1 for NIL. */
    public int entrySkip(int node, int slot) {
        return skipOf(entry(node, slot));
    }

    /**
     * QEMU's {@code ptr} of entry {@code slot} of node {@code node}: a section index when the skip is 0, else a
     * node index, or {@link #PRINTED_NIL}.
     */
    public int entryPtr(int node, int slot) {
        return ptrOf(entry(node, slot));
    }

    private int entry(int node, int slot) {
        if (node < 0 || node >= nodeCount || slot < 0 || slot >= NODE_SIZE) {
            throw new IndexOutOfBoundsException("node=" + node + " slot=" + slot + " nodeCount=" + nodeCount);
        }
        return nodes[node * NODE_SIZE + slot];
    }

    // ---------------------------------------------------------------- entry encoding, shared with the builder

    /** The pointer entry to node {@code node}, skipping {@code skip} levels. */
    static int pointer(int node, int skip) {
        return ~((node << BITS_PER_LEVEL) | (skip * BITS_PER_LEVEL));
    }

    static int skipOf(int entry) {
        return entry >= 0 ? 0 : ((~entry) & ENTRY_LOW_MASK) / BITS_PER_LEVEL;
    }

    static int ptrOf(int entry) {
        if (entry >= 0) {
            return entry;
        }
        return entry == NIL ? PRINTED_NIL : nodeOf(entry);
    }

    static int nodeOf(int pointer) {
        return (~pointer) >>> BITS_PER_LEVEL;
    }

    @Override
    public String toString() {
        return "AddressSpaceDispatch[pageBits=" + pageBits + ", " + sectionCount + " sections, " + nodeCount
                + " nodes]";
    }
}
