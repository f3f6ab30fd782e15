package dev.guestmem.memory;

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
    /** The root entry (QEMU's {@code phys_map}). */
    final int root;
    final int[] nodes;
    final int nodeCount;
    /**
     * The section table, four longs per section so that one lookup touches one cache line: at {@code 4*i} the
     * guest-physical first byte, at {@code 4*i+1} the size minus one (unsigned; 2^64 - 1 for section 0), at
     * {@code 4*i+2} the region offset minus the address (the region offset of {@code addr} is {@code addr} plus it),
     * and at {@code 4*i+3} where a subpage container's table starts in {@link #subpages}, or -1 for every other
     * section.
     */
    final long[] sec;
    static final int SEC_STRIDE = 4;
    /** Each subpage table: the granule shift, then one section index per granule of the page. */
    final int[] subpages;
    /** The view this dispatch was built from. */
    final FlatView view;
    /**
     * The section objects, made on first use by {@link #section}: null until then, and always null for subpage
     * containers, which are internal. Any reader may fill a slot; a racing reader may make a second, equal object.
     * Both are complete when seen, because a record's fields are final.
     */
    final MemoryRegionSection[] sections;
    /** The flat range each section is a piece of; null for section 0 and subpage containers. */
    final FlatRange[] sectionRanges;

    /**
     * The most recently found section (QEMU's {@code mru_section}): a racy hint read and written with plain
     * accesses by every reader. It is safe because every value it can ever hold is a valid section index of this
     * dispatch: it starts at {@link #UNASSIGNED} and is only ever assigned indexes that a lookup in this
     * dispatch's own final arrays returned; an int store cannot tear. A stale or lost value only costs a tree walk,
     * since it is checked against the address before it is used. Section 0 and subpage containers are never
     * stored, so a hit needs no further resolution.
     */
    private int mru;

    AddressSpaceDispatch(FlatView view, int pageBits, int root, int[] nodes, int nodeCount, long[] sec,
                         int[] subpages, MemoryRegionSection[] sections,
                         FlatRange[] sectionRanges) {
        this.view = view;
        this.pageBits = pageBits;
        this.pageMask = (1L << pageBits) - 1;
        this.levels = levels(pageBits);
        this.root = root;
        this.nodes = nodes;
        this.nodeCount = nodeCount;
        this.sec = sec;
        this.subpages = subpages;
        this.sections = sections;
        this.sectionRanges = sectionRanges;
    }

    /** Builds the dispatch of {@code view} for pages of {@code 2^pageBits} bytes. Writer only. */
    static AddressSpaceDispatch build(FlatView view, int pageBits, MemoryRegion unassigned) {
        return new DispatchBuilder(pageBits).build(view, unassigned);
    }

    /** QEMU's {@code P_L2_LEVELS} for this page size: enough levels to index every page of 2^64 bytes. */
    public static int levels(int pageBits) {
        return (64 - pageBits - 1) / BITS_PER_LEVEL + 1;
    }

    /** Throws unless {@code pageBits} is a supported page size. */
    static void checkPageBits(int pageBits) {
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
        MemoryRegionSection s = sections[i];
        if (s == null) {
            FlatRange fr = sectionRanges[i];
            if (fr == null) {
                return null; // a subpage container
            }
            long first = sec[4 * i];
            s = new MemoryRegionSection(fr.region(), view, first + sec[4 * i + 2], first, first + sec[4 * i + 1],
                    fr.readonly(), fr.nonvolatile(), fr.unmergeable());
            sections[i] = s; // racy store of an immutable object; see the field's comment
        }
        return s;
    }

    /**
     * The flat range section {@code i} is a piece of (whole, not clipped to the piece), or null for
     * {@link #UNASSIGNED}: what the access path works with.
     */
    FlatRange flatRange(int i) {
        return sectionRanges[i];
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
        return len == 0 || Long.compareUnsigned(len - 1, left) <= 0 ? len : left + 1;
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
        return sections.length;
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
        return "AddressSpaceDispatch[pageBits=" + pageBits + ", " + sections.length + " sections, " + nodeCount
                + " nodes]";
    }
}
