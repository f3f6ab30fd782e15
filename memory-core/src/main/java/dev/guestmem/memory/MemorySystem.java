package dev.guestmem.memory;

import dev.guestmem.memory.internal.SharedSecrets;
import dev.guestmem.memory.internal.dirty.HeapDirtyBitmap;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One machine's memory: what QEMU keeps in globals ({@code address_spaces}, {@code memory_listeners}, the
 * transaction depth, {@code flat_views}) gathered into an object, with the factory methods that make regions.
 *
 * <p>Transactions: every change happens between {@link #begin()} and {@link #commit()}; they nest, and only the
 * outermost commit does work. Each region mutator called outside a transaction is its own transaction. On the
 * outermost commit, if anything visible may have changed, every address space gets the view its root renders to
 * now. Address spaces whose roots render the same tree (after QEMU's flatview-root rule) share one {@link FlatView},
 * and a view whose ranges did not change is kept as it was: no listener hears about it and readers keep the same
 * object. Listeners hear begin, then per address space the deletions and additions, then commit; each changed view
 * is published with one release store after its listeners have been told.
 *
 * <p>Threading: one writer at a time. {@link #begin()} takes the topology lock (QEMU's BQL for memory) and the
 * matching {@link #commit()} releases it, so a transaction belongs to one thread. Readers never take it: they load
 * {@link AddressSpace#flatView()}.
 */
public final class MemorySystem {
    static {
        SharedSecrets.setCoreAccess(new CoreAccessImpl());
    }


    /** Makes the {@link RamBlock} behind a new RAM, ROM or ROM device region. */
    @FunctionalInterface
    public interface RamAllocator {
        /**
         * @param name the region's name
         * @param size bytes, at least 1
         */
        RamBlock allocate(String name, long size);
    }

    /** Anonymous, zeroed RAM in an automatic {@code Arena}. */
    public static final RamAllocator ANONYMOUS_RAM = SegmentRamBlock::anonymous;

    /**
     * RAM that has a size but no memory: for tools that build, render, print and compare maps of machines whose RAM
     * they never touch. Asking such a block for its segment throws.
     */
    public static final RamAllocator LAYOUT_ONLY = LayoutOnlyRamBlock::new;

    /** The page size of address spaces made without one: 4 KiB (QEMU's x86 {@code TARGET_PAGE_BITS}). */
    public static final int DEFAULT_PAGE_BITS = 12;

    private final ReentrantLock topologyLock = new ReentrantLock();
    private final Rcu rcu = Rcu.global();
    /** Blocks of regions destroyed in the open transaction; released by the outermost commit. Writer only. */
    private final ArrayList<AbstractRamBlock> pendingReleases = new ArrayList<>();
    private final RamAllocator ramAllocator;
    private final RamList ramList;
    private final boolean targetBigEndian;
    /** One bitmap per dirty-memory client, indexed by {@link DirtyMemoryClient#index()}; they only grow. */
    final DirtyBitmap[] dirtyBitmaps;
    /** Registration numbers of event notifiers: a stable total order, as QEMU orders them by pointer. Writer only. */
    private final IdentityHashMap<EventNotifier, Long> notifierOrders = new IdentityHashMap<>();
    private boolean ioeventfdUpdatePending;
    /** Ioeventfd registrations on all regions; while 0 no commit scans views for them. Writer only. */
    private int ioeventfdRegistrations;
    /** QEMU's {@code io_mem_unassigned}: what unmapped addresses resolve to. Never mapped anywhere. */
    private final MemoryRegion unassigned;
    private int transactionDepth;
    /** Counts subregion insertions, so the order in which subregions were added can be recovered. */
    private long addSequence;
    private boolean updatePending;
    private final ArrayList<AddressSpace> addressSpaces = new ArrayList<>();
    /** Every registered listener, ascending priority (QEMU's {@code memory_listeners}). */
    private final ArrayList<MemoryListener> listeners = new ArrayList<>();
    private final IdentityHashMap<MemoryListener, AddressSpace> listenerSpaces = new IdentityHashMap<>();
    /** The current view of each flatview root (QEMU's {@code flat_views}); the null key is the empty view. */
    private IdentityHashMap<MemoryRegion, FlatView> flatViews = new IdentityHashMap<>();
    /** QEMU's {@code global_dirty_tracking}: the reasons global dirty logging is on, a set of GLOBAL_DIRTY_*. */
    private volatile int globalDirtyTracking;

    /** QEMU's {@code GLOBAL_DIRTY_MIGRATION}: global dirty logging for migration. */
    public static final int GLOBAL_DIRTY_MIGRATION = 1;
    /** QEMU's {@code GLOBAL_DIRTY_DIRTY_RATE}: for measuring the guest's dirty rate. */
    public static final int GLOBAL_DIRTY_DIRTY_RATE = 1 << 1;
    /** QEMU's {@code GLOBAL_DIRTY_LIMIT}: for the dirty-limit throttle. */
    public static final int GLOBAL_DIRTY_LIMIT = 1 << 2;
    private static final int GLOBAL_DIRTY_MASK = 0x7;
    /**
     * QEMU's {@code runstate_is_running()}: whether the guest's vCPUs run, as {@link #setVmRunning} was last told.
     * Written by the writer under the topology lock, read by any thread.
     */
    private volatile boolean vmRunning = true;
    /**
     * QEMU's {@code postponed_stop_flags}: reasons whose global dirty-log stop was asked for while the VM was stopped
     * and waits for it to run again; 0 when none waits (QEMU then has no {@code vmstate_change} handler). Writer only.
     */
    private int postponedStopFlags;
    /**
     * The listeners that implement {@link MemoryListener#logClear}, in priority order: while none does, clearing
     * dirty bits costs one volatile read. Replaced (never changed in place) by the writer under the topology lock.
     */
    private volatile MemoryListener[] logClearListeners = new MemoryListener[0];

    /**
     * Where the tree changed since the last render, per region, in that region's own offsets: pairs of first and
     * last offset. Each mutator records the places of the region it changes before and after the change, in every
     * region above it (containers, and aliases of it), so that on commit each flatview root knows which of its
     * windows to re-render. Writer only.
     */
    private final IdentityHashMap<MemoryRegion, long[]> dirtyWindows = new IdentityHashMap<>();
    private int dirtyWindowCount;
    /** Set when windows are not worth tracking (too many, or a change they cannot describe). Writer only. */
    private boolean fullRenderPending;
    /** Regions with the unmergeable flag; while there are any, views are always rendered whole. Writer only. */
    private int unmergeableRegions;
    private static final int MAX_DIRTY_WINDOWS = 64;

    /** A little-endian target's memory system whose RAM is anonymous memory. */
    public MemorySystem() {
        this(ANONYMOUS_RAM);
    }

    /** A little-endian target's memory system. */
    public MemorySystem(RamAllocator ramAllocator) {
        this(ramAllocator, false);
    }

    /**
     * @param ramAllocator    where RAM regions get their memory
     * @param targetBigEndian the guest CPU's byte order ({@code TARGET_BIG_ENDIAN}), which {@link DeviceEndian#NATIVE}
     *                        devices share
     */
    public MemorySystem(RamAllocator ramAllocator, boolean targetBigEndian) {
        this(ramAllocator, targetBigEndian, DEFAULT_PAGE_BITS);
    }

    /**
     * @param ramAllocator    where RAM regions get their memory
     * @param targetBigEndian the guest CPU's byte order ({@code TARGET_BIG_ENDIAN}), which {@link DeviceEndian#NATIVE}
     *                        devices share
     * @param targetPageBits  the target page size ({@code TARGET_PAGE_BITS}) of the ram_addr space and its dirty
     *                        bitmaps: blocks are aligned to 64 such pages (see {@link RamList})
     */
    public MemorySystem(RamAllocator ramAllocator, boolean targetBigEndian, int targetPageBits) {
        this.ramAllocator = Objects.requireNonNull(ramAllocator, "ramAllocator");
        this.targetBigEndian = targetBigEndian;
        this.ramList = new RamList(targetPageBits);
        this.dirtyBitmaps = new DirtyBitmap[DirtyMemoryClient.COUNT];
        for (int c = 0; c < dirtyBitmaps.length; c++) {
            dirtyBitmaps[c] = new HeapDirtyBitmap(1L << targetPageBits, 0);
        }
        ramList.setDirtyHook(new RamList.DirtyHook() {
            @Override
            public void blockAdded(RamBlock block, long lastRamPage) {
                if (!((AbstractRamBlock) block).hasHostMemory()) {
                    return; // layout only: never written, and possibly far too large for a bitmap
                }
                // QEMU's ram_block_add: the bitmaps grow first, then the new block is dirty for every client.
                for (DirtyBitmap b : dirtyBitmaps) {
                    if (b.pageCount() < lastRamPage) {
                        b.extend(lastRamPage);
                    }
                    b.setDirtyRange(block.offset(), block.usedLength());
                }
            }

            @Override
            public void usedLengthChanged(RamBlock block, long oldUsedLength, long newUsedLength) {
                if (!((AbstractRamBlock) block).hasHostMemory()) {
                    return;
                }
                // QEMU's qemu_ram_resize: the old used range is cleared, client by client, each clear telling the
                // listeners (logClear, in the view from before the resize); then the new one is dirty for every client.
                for (DirtyBitmap b : dirtyBitmaps) {
                    b.testAndClearDirty(block.offset(), oldUsedLength);
                    clearDirtyBitmapPages(null, block, 0, oldUsedLength);
                }
                for (DirtyBitmap b : dirtyBitmaps) {
                    b.setDirtyRange(block.offset(), newUsedLength);
                }
            }
        });
        this.unassigned = new MemoryRegion(this, MemoryRegion.Kind.IO, "unassigned", U64.SIZE_2_64,
                MemoryRegionOps.UNASSIGNED, null, null, null, 0);
    }

    /**
     * The dirty bitmap of {@code client} over the whole ram_addr space (QEMU's {@code ram_list.dirty_memory}): one
     * bit per target page, set by writes to RAM regions whose flat range logs that client.
     */
    public DirtyBitmap dirtyBitmap(DirtyMemoryClient client) {
        return dirtyBitmaps[client.index()];
    }

    /**
     * QEMU's {@code memory_global_dirty_log_start}: turns global dirty logging on for the reasons in {@code flags}
     * (GLOBAL_DIRTY_*). A stop that was postponed while the VM was stopped is settled first: the reasons started
     * again are taken out of it (their logging simply goes on), and the rest of it is done now, VM stopped or not.
     * Then, when global logging was off, every listener hears {@code logGlobalStart} (forward), then a commit in
     * which every RAM-backed and IOMMU range also logs the MIGRATION client ({@code logStart} for each).
     */
    public void globalDirtyLogStart(int flags) {
        checkGlobalFlags(flags);
        // Held across both steps, so no other writer sees the postponed stop done and this start not yet.
        lockTopology();
        try {
            if (postponedStopFlags != 0) {
                int rest = postponedStopFlags & ~flags;
                postponedStopFlags = 0;
                if (rest != 0) {
                    doGlobalDirtyLogStop(rest);
                }
            }
            begin();
            try {
                int add = flags & ~globalDirtyTracking;
                if (add == 0) {
                    return;
                }
                int old = globalDirtyTracking;
                globalDirtyTracking = old | add;
                if (old == 0) {
                    for (MemoryListener l : listeners) {
                        l.logGlobalStart();
                    }
                    requireFullRender();
                    markUpdatePending();
                }
            } finally {
                commit();
            }
        } finally {
            unlockTopology();
        }
    }

    /**
     * QEMU's {@code memory_global_dirty_log_stop}: drops the reasons in {@code flags}; when none is left, a commit
     * stops the MIGRATION logging of every range ({@code logStop}), then every listener hears
     * {@code logGlobalStop} (in reverse).
     *
     * <p>While the VM is stopped ({@link #setVmRunning setVmRunning(false)}) the stop is postponed, as QEMU postpones
     * it: nothing changes and no listener hears anything until the VM runs again, when the reasons postponed
     * meanwhile are stopped together, as above, before {@code setVmRunning(true)} returns. A
     * {@link #globalDirtyLogStart} in between cancels the postponed stop of the reasons it starts. Until a postponed
     * stop happens, {@link #globalDirtyTracking()} still holds its reasons and the ranges still log MIGRATION.
     *
     * @throws IllegalStateException if a reason in {@code flags} was not started, or its stop is already postponed
     */
    public void globalDirtyLogStop(int flags) {
        checkGlobalFlags(flags);
        lockTopology();
        try {
            int live = globalDirtyTracking & ~postponedStopFlags;
            if ((live & flags) != flags) {
                throw new IllegalStateException("flags=0x" + Integer.toHexString(flags) + " tracking=0x"
                        + Integer.toHexString(globalDirtyTracking) + " postponed=0x"
                        + Integer.toHexString(postponedStopFlags) + ": stopping a reason that was not started");
            }
            if (!vmRunning) {
                postponedStopFlags |= flags;
                return;
            }
            doGlobalDirtyLogStop(flags);
        } finally {
            unlockTopology();
        }
    }

    /** QEMU's {@code memory_global_dirty_log_do_stop}: {@code flags} are being tracked. Topology lock held. */
    private void doGlobalDirtyLogStop(int flags) {
        boolean stopped;
        begin();
        try {
            globalDirtyTracking &= ~flags;
            stopped = globalDirtyTracking == 0;
            if (stopped) {
                requireFullRender();
                markUpdatePending();
            }
        } finally {
            commit();
        }
        if (stopped) {
            begin();
            try {
                for (int k = listeners.size() - 1; k >= 0; k--) {
                    listeners.get(k).logGlobalStop();
                }
            } finally {
                commit();
            }
        }
    }

    /**
     * QEMU's {@code memory_global_dirty_log_sync}: asks every listener to copy dirty bits gathered elsewhere (a
     * peer's log, a hypervisor's bitmap) into guestmem's bitmaps, for every logged section of its address space.
     */
    public void globalDirtyLogSync() {
        syncDirtyBitmap(null);
    }

    /** QEMU's {@code memory_global_after_dirty_log_sync}: every listener hears {@code logGlobalAfterSync}. */
    public void globalAfterDirtyLogSync() {
        begin();
        try {
            for (MemoryListener l : listeners) {
                l.logGlobalAfterSync();
            }
        } finally {
            commit();
        }
    }

    /**
     * QEMU's {@code memory_region_sync_dirty_bitmap}: in priority order (of all listeners, whichever address space
     * each watches), a listener that implements {@code logSync} hears it for every section of its own address
     * space's view that logs some client (only {@code mr}'s, unless {@code mr} is null), in address order; one that
     * implements {@code logSyncGlobal} hears that once, whatever {@code mr} is; one that implements neither is passed
     * over without a look at its view.
     */
    void syncDirtyBitmap(MemoryRegion mr) {
        begin();
        try {
            for (MemoryListener l : listeners) {
                int hooks = ListenerHooks.of(l);
                if ((hooks & ListenerHooks.LOG_SYNC) != 0) {
                    FlatView view = listenerSpaces.get(l).flatView();
                    for (int i = 0; i < view.rangeCount(); i++) {
                        FlatRange fr = view.range(i);
                        if (fr.dirtyLogMask() != 0 && (mr == null || fr.region() == mr)) {
                            l.logSync(view.section(i));
                        }
                    }
                } else if ((hooks & ListenerHooks.LOG_SYNC_GLOBAL) != 0) {
                    l.logSyncGlobal();
                }
            }
        } finally {
            commit();
        }
    }

    /**
     * QEMU's {@code memory_region_clear_dirty_bitmap}, behind {@link MemoryRegion#clearDirtyBitmap}: every listener
     * that implements {@code logClear}, in priority order, hears it once for each range of its own address space's
     * current view that maps part of region-relative {@code [start, start + len)} and logs some client, with the
     * section clipped to that part, in address order. Unchecked: a range past the region's end is cut by the ranges.
     *
     * @param mr    the region whose ranges are meant; null to mean the region whose RAM block is {@code block}
     * @param block used only when {@code mr} is null
     */
    void clearDirtyBitmap(MemoryRegion mr, RamBlock block, long start, long len) {
        if (len == 0 || logClearListeners.length == 0) {
            return;
        }
        long last = U64.saturatingAdd(start, len - 1);
        begin();
        try {
            for (MemoryListener l : logClearListeners) {
                FlatView view = listenerSpaces.get(l).flatView();
                for (int i = 0; i < view.rangeCount(); i++) {
                    FlatRange fr = view.range(i);
                    if (fr.dirtyLogMask() == 0 || (mr != null ? fr.region() != mr : fr.region().ramBlock != block)) {
                        continue;
                    }
                    long first = U64.max(fr.offsetInRegion(), start);
                    long clippedLast = U64.min(fr.offsetInRegion() + (fr.last() - fr.start()), last);
                    if (U64.lt(clippedLast, first)) {
                        continue;
                    }
                    long addr = fr.start() + (first - fr.offsetInRegion());
                    l.logClear(new MemoryRegionSection(fr.region(), view, first, addr, addr + (clippedLast - first),
                            fr.readonly(), fr.nonvolatile(), fr.unmergeable()));
                }
            }
        } finally {
            commit();
        }
    }

    /**
     * What QEMU's {@code cpu_physical_memory_test_and_clear_dirty} tells listeners after clearing one client's bits
     * of region-relative {@code [offset, offset + len)} of RAM: {@link #clearDirtyBitmap} of that range widened to
     * whole target pages of the ram_addr space.
     */
    void clearDirtyBitmapPages(MemoryRegion mr, RamBlock block, long offset, long len) {
        if (len == 0 || logClearListeners.length == 0) {
            return;
        }
        long pageMask = (1L << ramList.pageBits()) - 1;
        long first = offset & ~pageMask;
        // Inside a RAM block, so far below 2^64: the rounding cannot wrap.
        long end = (offset + len + pageMask) & ~pageMask;
        clearDirtyBitmap(mr, block, first, end - first);
    }

    /** The reasons global dirty logging is on (GLOBAL_DIRTY_*), 0 when it is off. */
    public int globalDirtyTracking() {
        return globalDirtyTracking;
    }

    /**
     * Tells the memory system whether the guest's vCPUs run: QEMU's run state ({@code runstate_is_running}) as
     * {@code vm_stop} and {@code vm_start} change it. It starts running. guestmem uses it for one thing, as QEMU's
     * memory code does: a {@link #globalDirtyLogStop} while the VM is stopped is postponed until it runs again, and
     * this call (with {@code true}) is where the postponed stop then happens, listeners included.
     *
     * <p>Threading: a writer; takes the topology lock.
     */
    public void setVmRunning(boolean running) {
        lockTopology();
        try {
            if (vmRunning == running) {
                return;
            }
            vmRunning = running;
            // QEMU's VM-change-state handler for the postponed stop: it runs when the VM starts.
            if (running && postponedStopFlags != 0) {
                int flags = postponedStopFlags;
                postponedStopFlags = 0;
                doGlobalDirtyLogStop(flags);
            }
        } finally {
            unlockTopology();
        }
    }

    /** QEMU's {@code runstate_is_running}: what {@link #setVmRunning} was last told; true until then. */
    public boolean vmRunning() {
        return vmRunning;
    }

    private static void checkGlobalFlags(int flags) {
        if (flags == 0 || (flags & ~GLOBAL_DIRTY_MASK) != 0) {
            throw new IllegalArgumentException("flags=0x" + Integer.toHexString(flags)
                    + ": expected a non-empty set of GLOBAL_DIRTY_MIGRATION, _DIRTY_RATE, _LIMIT");
        }
    }

    /**
     * QEMU's {@code memory_region_get_dirty_log_mask}: the clients logging {@code mr}, its own plus MIGRATION for
     * RAM with memory and IOMMUs while global dirty logging is on.
     */
    int dirtyLogMaskOf(MemoryRegion mr) {
        int mask = mr.dirtyLogMask;
        if (globalDirtyTracking != 0 && ((mr.ramBlock instanceof AbstractRamBlock b && b.hasHostMemory())
                || mr.kind == MemoryRegion.Kind.IOMMU)) {
            mask |= DirtyMemoryClient.MIGRATION.mask();
        }
        return mask;
    }

    /** The ram_addr space that every RAM-backed region's block is placed in (QEMU's {@code ram_list}). */
    public RamList ramList() {
        return ramList;
    }

    /** This system's discard coordination; QEMU keeps it once per process. */
    private final RamBlockDiscard ramBlockDiscard = new RamBlockDiscard();

    /**
     * QEMU's {@code ram_block_discard_disable}/{@code _require} family for this system's guest RAM: see
     * {@link RamBlockDiscard}.
     */
    public RamBlockDiscard ramBlockDiscard() {
        return ramBlockDiscard;
    }

    /** Whether the guest CPU is big-endian. */
    public boolean targetBigEndian() {
        return targetBigEndian;
    }

    /**
     * QEMU's {@code io_mem_unassigned}: the region that every address nothing maps resolves to (section
     * {@code AddressSpaceDispatch.UNASSIGNED} of every dispatch). An I/O region of 2^64 bytes whose ops accept no
     * access, so every access to it is a decode error. It is never mapped and must not be.
     */
    public MemoryRegion unassignedRegion() {
        return unassigned;
    }

    // ---------------------------------------------------------------- regions

    /** QEMU's {@code memory_region_init}: a container; {@code size} -1 means 2^64. */
    public MemoryRegion container(String name, long size) {
        return newRegion(MemoryRegion.Kind.CONTAINER, name, size, null, null, null, null, 0);
    }

    /** QEMU's {@code memory_region_init_ram}: {@code size} bytes of zeroed guest RAM from the allocator. */
    public MemoryRegion ram(String name, long size) {
        MemoryRegion.checkSize(MemoryRegion.Kind.RAM, name, size, null);
        return newRegion(MemoryRegion.Kind.RAM, name, size, null, null, allocate(name, size), null, 0);
    }

    /**
     * QEMU's {@code memory_region_init_ram_from_file} and {@code memory_region_init_ram_from_fd}, and the RAM of a
     * {@code memory-backend-*} object: {@code size} bytes of guest RAM from {@code backend} instead of this
     * system's own allocator (memory-offheap's backends map files, fds, memfds and huge pages). A block flagged
     * {@link RamFlag#READONLY} gives a read-only region, so a guest store is refused as a store to ROM is.
     */
    public MemoryRegion ram(String name, long size, RamAllocator backend) {
        Objects.requireNonNull(backend, "backend");
        MemoryRegion.checkSize(MemoryRegion.Kind.RAM, name, size, null);
        return readonlyIfFlagged(newRegion(MemoryRegion.Kind.RAM, name, size, null, null,
                allocate(backend, name, size), null, 0));
    }

    private static MemoryRegion readonlyIfFlagged(MemoryRegion mr) {
        if (mr.ramBlock.flags().contains(RamFlag.READONLY)) {
            mr.setReadonly(true);
        }
        return mr;
    }

    /**
     * QEMU's {@code memory_region_init_ram_ptr}: guest RAM over memory the caller owns and keeps alive. A file mapping
     * ({@code FileChannel.map}, {@link MemorySegment#isMapped()}) is taken for memory that another process can
     * truncate: its accesses take guarded paths on which a fault is {@link MemTxResult#ERROR} and one logged warning,
     * never an exception (see {@link AbstractRamBlock#mayFault()}).
     */
    public MemoryRegion ramFromSegment(String name, MemorySegment memory) {
        Objects.requireNonNull(memory, "memory");
        return newRegion(MemoryRegion.Kind.RAM, name, segmentSize(name, memory), null, null,
                SegmentRamBlock.prealloc(ramList.uniqueIdstr(name), memory), null, 0);
    }

    /** QEMU's {@code memory_region_init_ram_device_ptr}: device memory the guest reaches like RAM. */
    public MemoryRegion ramDevice(String name, MemorySegment memory) {
        Objects.requireNonNull(memory, "memory");
        return newRegion(MemoryRegion.Kind.RAM_DEVICE, name, segmentSize(name, memory), null, null,
                SegmentRamBlock.prealloc(ramList.uniqueIdstr(name), memory), null, 0);
    }

    /** A RAM device region over {@code size} bytes from the allocator (for maps whose device memory is simulated). */
    public MemoryRegion ramDevice(String name, long size) {
        MemoryRegion.checkSize(MemoryRegion.Kind.RAM_DEVICE, name, size, null);
        return newRegion(MemoryRegion.Kind.RAM_DEVICE, name, size, null, null, allocate(name, size), null, 0);
    }

    /**
     * QEMU's {@code memory_region_init_resizeable_ram}: RAM whose size can change with {@link MemoryRegion#ramResize}
     * up to {@code maxSize} bytes. The block reserves {@code maxSize} rounded up to the host page size (4 KiB), in
     * memory and in the ram_addr space; its used length is {@code size} rounded up likewise, and the region's size
     * is {@code size}.
     *
     * @param resized called after each resize (see {@link RamBlock.Resized}), or null
     */
    public MemoryRegion resizeableRam(String name, long size, long maxSize, RamBlock.Resized resized) {
        return resizeableRam(name, size, maxSize, resized, ramAllocator);
    }

    /**
     * {@link #resizeableRam(String, long, long, RamBlock.Resized)} with the block from {@code backend}, which
     * reserves the max size up front so that a resize never moves the memory.
     */
    public MemoryRegion resizeableRam(String name, long size, long maxSize, RamBlock.Resized resized,
                                      RamAllocator backend) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(backend, "backend");
        MemoryRegion.checkSize(MemoryRegion.Kind.RAM, name, size, null);
        if (U64.lt(maxSize, size) || maxSize > Long.MAX_VALUE - (RamList.HOST_PAGE_SIZE - 1)) {
            throw new IllegalArgumentException("region=" + name + " size=" + U64.sizeHex(size) + " maxSize="
                    + U64.sizeHex(maxSize) + ": the max size must be at least the size and below 2^63-2^12 bytes");
        }
        long pageMask = -RamList.HOST_PAGE_SIZE;
        long max = (maxSize + RamList.HOST_PAGE_SIZE - 1) & pageMask;
        RamBlock block = allocate(backend, name, max);
        ((AbstractRamBlock) block).makeResizeable((size + RamList.HOST_PAGE_SIZE - 1) & pageMask, resized);
        ramList.add((AbstractRamBlock) block, inTransaction());
        return readonlyIfFlagged(newRegion(MemoryRegion.Kind.RAM, name, size, null, null, block, null, 0));
    }

    /** QEMU's {@code memory_region_init_rom}: {@code size} bytes the guest reads but cannot write. */
    public MemoryRegion rom(String name, long size) {
        MemoryRegion.checkSize(MemoryRegion.Kind.ROM, name, size, null);
        return newRegion(MemoryRegion.Kind.ROM, name, size, null, null, allocate(name, size), null, 0);
    }

    /**
     * QEMU's {@code memory_region_init_rom_device}: {@code size} bytes read directly while in romd mode, with
     * writes (and, out of romd mode, reads) going to {@code ops}.
     */
    public MemoryRegion romDevice(String name, long size, MemoryRegionOps ops) {
        Objects.requireNonNull(ops, "ops");
        MemoryRegion.checkSize(MemoryRegion.Kind.ROM_DEVICE, name, size, null);
        return newRegion(MemoryRegion.Kind.ROM_DEVICE, name, size, ops, null, allocate(name, size), null, 0);
    }

    /** QEMU's {@code memory_region_init_io}: an MMIO or port I/O region served by {@code ops}. */
    public MemoryRegion io(String name, long size, MemoryRegionOps ops) {
        Objects.requireNonNull(ops, "ops");
        return newRegion(MemoryRegion.Kind.IO, name, size, ops, null, null, null, 0);
    }

    /**
     * QEMU's {@code memory_region_init_alias}: a window of {@code size} bytes into {@code target} starting at
     * {@code offset}, which must lie inside the target.
     */
    public MemoryRegion alias(String name, MemoryRegion target, long offset, long size) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(target, "target");
        if (target.system != this) {
            throw new IllegalArgumentException("region=" + name + " target=" + target.name
                    + ": the target belongs to another MemorySystem");
        }
        if (target == unassigned) {
            throw new IllegalArgumentException("region=" + name + ": the unassigned region cannot be aliased");
        }
        target.checkNotDestroyed("alias=" + name + " target");
        MemoryRegion.checkAliasWindow(name, target, offset, size);
        begin();
        try {
            MemoryRegion a = new MemoryRegion(this, MemoryRegion.Kind.ALIAS, name, size, null, null, null, target,
                    offset);
            target.aliasedBy.add(a);
            return a;
        } finally {
            commit();
        }
    }

    /** QEMU's {@code memory_region_init_iommu}: accesses are translated by {@code ops}. */
    public MemoryRegion iommu(String name, long size, IommuOps ops) {
        Objects.requireNonNull(ops, "ops");
        return newRegion(MemoryRegion.Kind.IOMMU, name, size, null, ops, null, null, 0);
    }

    /**
     * QEMU's {@code memory_region_init_reservation}: a region with no ops that hides lower-priority regions; every
     * access to it is a decode error.
     */
    public MemoryRegion reservation(String name, long size) {
        return newRegion(MemoryRegion.Kind.RESERVATION, name, size, MemoryRegionOps.UNASSIGNED, null, null, null, 0);
    }

    private MemoryRegion newRegion(MemoryRegion.Kind kind, String name, long size, MemoryRegionOps ops,
                                   IommuOps iommuOps, RamBlock block, MemoryRegion alias, long aliasOffset) {
        Objects.requireNonNull(name, "name");
        if (block != null && block.offset() == AbstractRamBlock.UNPLACED) {
            ramList.add((AbstractRamBlock) block, inTransaction());
        }
        return new MemoryRegion(this, kind, name, size, ops, iommuOps, block, alias, aliasOffset);
    }

    /** A new block from the allocator, not yet placed: {@link #newRegion} places it in the ram_addr space. */
    private RamBlock allocate(String name, long size) {
        return allocate(ramAllocator, name, size);
    }

    private RamBlock allocate(RamAllocator allocator, String name, long size) {
        if (size == U64.SIZE_2_64 || size < 0) {
            throw new IllegalArgumentException("region=" + name + " size=" + U64.sizeHex(size)
                    + ": RAM larger than 2^63-1 bytes cannot be allocated");
        }
        // Block names are unique within the memory system, as QEMU's idstr (which QEMU makes unique with the owner's
        // path); without owners, a repeated name gets a #n suffix. The region keeps the name it was given.
        String idstr = ramList.uniqueIdstr(name);
        try {
            RamBlock block = allocator.allocate(idstr, size);
            if (!(block instanceof AbstractRamBlock ab) || ab.offset() != AbstractRamBlock.UNPLACED) {
                throw new IllegalStateException("region=" + name + " block=" + block
                        + ": the allocator must return a new block, not yet placed in a ram_addr space");
            }
            if (block.maxLength() < size) {
                ab.freeMemory(); // nobody else has seen the block: give its memory (and fd) back now
                throw new IllegalStateException("region=" + name + " size=" + U64.hex(size) + " blockLength="
                        + U64.hex(block.maxLength()) + ": the allocator returned too little RAM");
            }
            return block;
        } catch (RuntimeException | Error e) {
            ramList.releaseIdstr(idstr); // a refused allocation leaves the ram_addr space as it was, names included
            throw e;
        }
    }

    private static long segmentSize(String name, MemorySegment memory) {
        if (memory.byteSize() == 0) {
            throw new IllegalArgumentException("region=" + name + " size=0: RAM-backed regions need at least one byte");
        }
        return memory.byteSize();
    }

    // ---------------------------------------------------------------- address spaces

    /**
     * QEMU's {@code address_space_init}: a new address space over {@code root} with 4 KiB pages, rendered at once.
     */
    public AddressSpace addressSpace(String name, MemoryRegion root) {
        return addressSpace(name, root, DEFAULT_PAGE_BITS);
    }

    /**
     * QEMU's {@code address_space_init}: a new address space over {@code root}, rendered at once, whose dispatch
     * works in pages of {@code 2^pageBits} bytes (QEMU's {@code TARGET_PAGE_BITS} of the target: 12 for x86,
     * 10 for 32-bit Arm boards such as vexpress).
     *
     * @param pageBits {@code AddressSpaceDispatch.MIN_PAGE_BITS} to {@code AddressSpaceDispatch.MAX_PAGE_BITS}
     */
    public AddressSpace addressSpace(String name, MemoryRegion root, int pageBits) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(root, "root");
        AddressSpaceDispatch.checkPageBits(pageBits);
        if (root.system != this) {
            throw new IllegalArgumentException("addressSpace=" + name + " root=" + root.name
                    + ": the root belongs to another MemorySystem");
        }
        if (root == unassigned) {
            throw new IllegalArgumentException("addressSpace=" + name + ": the unassigned region cannot be a root");
        }
        root.checkNotDestroyed("addressSpace=" + name + " root");
        begin();
        try {
            // Share the current view of the same flatview root (QEMU's flat_views lookup in address_space_init).
            // Inside a transaction with changes pending, that view may be stale: render afresh, and the commit
            // hands the fresh object to every address space of this root.
            MemoryRegion physmr = FlatViewRenderer.flatViewRoot(root);
            FlatView view = flatViews.get(physmr);
            if (view == null || updatePending) {
                FlatRange[] ranges = FlatViewRenderer.render(physmr);
                view = view != null && view.rootAddr == (physmr == null ? 0 : physmr.addr) && view.sameRanges(ranges)
                        ? view : new FlatView(physmr, ranges);
                flatViews.put(physmr, view);
            }
            // Before the address space publishes the view: its readers look up through this dispatch.
            view.ensureDispatch(pageBits, unassigned);
            AddressSpace as = new AddressSpace(this, name, root, pageBits, view);
            addressSpaces.add(as);
            return as;
        } finally {
            commit();
        }
    }

    /** QEMU's {@code address_space_destroy}: forgets an address space that has no listeners left. */
    public void destroyAddressSpace(AddressSpace as) {
        begin();
        try {
            if (!as.listeners.isEmpty()) {
                throw new IllegalStateException("addressSpace=" + as.name() + " listeners=" + as.listeners.size()
                        + ": unregister its listeners first");
            }
            if (!addressSpaces.remove(as)) {
                throw new IllegalArgumentException("addressSpace=" + as.name() + ": not an address space of this system");
            }
        } finally {
            commit();
        }
    }

    /** The address spaces in creation order (QEMU's {@code address_spaces}). */
    public List<AddressSpace> addressSpaces() {
        begin();
        try {
            return List.copyOf(addressSpaces);
        } finally {
            commit();
        }
    }

    /** The first address space whose root is {@code root} (QEMU's {@code memory_region_to_address_space}). */
    AddressSpace addressSpaceWithRoot(MemoryRegion root) {
        for (AddressSpace as : addressSpaces) {
            if (as.root() == root) {
                return as;
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- transactions

    /** QEMU's {@code memory_region_transaction_begin}: takes the topology lock; transactions nest. */
    public void begin() {
        topologyLock.lock();
        transactionDepth++;
    }

    /**
     * QEMU's {@code memory_region_transaction_commit}: the outermost commit renders and publishes what changed, then
     * releases the topology lock.
     *
     * @throws IllegalStateException if the calling thread has no open transaction
     */
    public void commit() {
        if (!topologyLock.isHeldByCurrentThread() || transactionDepth == 0) {
            throw new IllegalStateException("commit without begin on thread=" + Thread.currentThread().getName());
        }
        try {
            if (--transactionDepth == 0) {
                // Blocks made in the transaction become findable before any view that maps them is published.
                ramList.publishPending();
                if (updatePending) {
                    updatePending = false;
                    ioeventfdUpdatePending = false;
                    updateTopology();
                } else if (ioeventfdUpdatePending) {
                    ioeventfdUpdatePending = false;
                    for (AddressSpace as : addressSpaces) {
                        updateIoeventfds(as);
                    }
                }
                if (!pendingReleases.isEmpty()) {
                    // Only now is no published view mapping them: the grace period may begin.
                    releasePending();
                }
            }
        } finally {
            topologyLock.unlock();
        }
    }

    /**
     * Takes the topology lock without opening a transaction, so that work after an outermost commit (QEMU's resize
     * callback) still runs under it. Pairs with {@link #unlockTopology}.
     */
    void lockTopology() {
        topologyLock.lock();
    }

    void unlockTopology() {
        topologyLock.unlock();
    }

    /** Runs {@code change} as one transaction. */
    public void transaction(Runnable change) {
        begin();
        try {
            change.run();
        } finally {
            commit();
        }
    }

    // ---------------------------------------------------------------- freeing RAM

    /**
     * The RCU domain whose grace periods guard this system's RAM: readers that keep memory across accesses lock it
     * (see {@link Rcu}), and the memory of a {@link MemoryRegion#destroy() destroyed} region is freed after one.
     */
    public Rcu rcu() {
        return rcu;
    }

    /** Queues the block of a region destroyed in the open transaction, for after the outermost commit. Writer only. */
    void queueRelease(AbstractRamBlock block) {
        assert topologyLock.isHeldByCurrentThread();
        pendingReleases.add(block);
    }

    /**
     * QEMU's {@code qemu_ram_free}, after the views without the blocks are published: takes each block out of the
     * ram list (its ram_addr range and name become free) and drops the region's reference, so the memory is freed
     * after a grace period, or after the last mapping or cache over it ends if that is later. Writer only.
     */
    private void releasePending() {
        for (AbstractRamBlock b : pendingReleases) {
            ramList.remove(b);
            b.release(rcu);
        }
        pendingReleases.clear();
    }

    /** Whether the calling thread is inside a transaction. */
    public boolean inTransaction() {
        return topologyLock.isHeldByCurrentThread() && transactionDepth > 0;
    }

    /** Ioeventfds changed on an enabled region; the outermost commit tells listeners. Writer only. */
    void markIoeventfdUpdatePending() {
        assert topologyLock.isHeldByCurrentThread();
        ioeventfdUpdatePending = true;
    }

    /** Counts ioeventfd registrations (+1 or -1). Writer only. */
    void ioeventfdRegistered(int delta) {
        ioeventfdRegistrations += delta;
    }

    /** The registration number of {@code e}. Writer only. */
    long notifierOrder(EventNotifier e) {
        return notifierOrders.computeIfAbsent(e, k -> (long) notifierOrders.size());
    }

    /**
     * QEMU's {@code memory_region_update_coalesced_range}: tells every address space's listeners, at once, about one
     * coalesced range of {@code mr} that was added or removed, for each place {@code mr} is mapped in its current
     * view. Writer only.
     */
    void updateCoalescedRange(MemoryRegion mr, long[] range, boolean add) {
        for (AddressSpace as : addressSpaces) {
            FlatView view = as.flatView();
            for (int i = 0; i < view.rangeCount(); i++) {
                FlatRange fr = view.range(i);
                if (fr.region() == mr) {
                    coalescedNotify(as, view, fr, range, add);
                }
            }
        }
    }

    /**
     * QEMU's {@code flat_range_coalesced_io_notify}: the part of coalesced {@code range} (region-relative offset and
     * size) that flat range {@code fr} shows, in guest-physical terms; adds go forward, deletions in reverse.
     */
    private static void coalescedNotify(AddressSpace as, FlatView view, FlatRange fr, long[] range, boolean add) {
        long offset = range[0];
        long size = range[1];
        if (size == 0) {
            return;
        }
        long rangeLast = U64.saturatingAdd(offset, size - 1);
        long frFirstOff = fr.offsetInRegion();
        long frLastOff = frFirstOff + (fr.last() - fr.start());
        long lo = U64.max(offset, frFirstOff);
        long hi = U64.min(rangeLast, frLastOff);
        if (U64.lt(hi, lo)) {
            return;
        }
        long addr = fr.start() + (lo - frFirstOff);
        long len = hi - lo + 1;
        MemoryRegionSection s = MemoryRegionSection.of(fr, view);
        if (add) {
            for (MemoryListener l : as.listeners) {
                l.coalescedIoAdd(s, addr, len);
            }
        } else {
            for (int k = as.listeners.size() - 1; k >= 0; k--) {
                as.listeners.get(k).coalescedIoDel(s, addr, len);
            }
        }
    }

    private static void coalescedDel(AddressSpace as, FlatView view, FlatRange fr) {
        for (long[] range : fr.region().coalesced) {
            coalescedNotify(as, view, fr, range, false);
        }
    }

    private static void coalescedAdd(AddressSpace as, FlatView view, FlatRange fr) {
        for (long[] range : fr.region().coalesced) {
            coalescedNotify(as, view, fr, range, true);
        }
    }

    /**
     * QEMU's {@code address_space_update_ioeventfds}: the address space's ioeventfds as the current view maps them,
     * and listeners told the difference from the last set (QEMU's order: deletions forward, additions in reverse).
     * Writer only.
     */
    private void updateIoeventfds(AddressSpace as) {
        Ioeventfd[] old = as.ioeventfds;
        if (old.length == 0 && ioeventfdRegistrations == 0) {
            return; // nothing registered anywhere: no need to scan the view
        }
        FlatView view = as.flatView();
        ArrayList<Ioeventfd> now = new ArrayList<>(old.length);
        for (int i = 0; i < view.rangeCount(); i++) {
            FlatRange fr = view.range(i);
            for (Ioeventfd fd : fr.region().ioeventfds) {
                // Shifted into guest addresses through this range, a registration counts when it overlaps the
                // range; one of size 0 (any size) counts when its address lies inside it, as in QEMU.
                long guest = fd.addr() - fr.offsetInRegion() + fr.start();
                long frFirstOff = fr.offsetInRegion();
                long frLastOff = frFirstOff + (fr.last() - fr.start());
                long fdLastOff = fd.size() == 0 ? fd.addr() : U64.saturatingAdd(fd.addr(), fd.size() - 1);
                boolean intersects = U64.le(fd.addr(), frLastOff) && U64.le(frFirstOff, fdLastOff);
                if (intersects) {
                    now.add(fd.at(guest));
                }
            }
        }
        Ioeventfd[] next = now.toArray(Ioeventfd.NONE);
        if (old.length == 0 && next.length == 0) {
            return;
        }
        // QEMU collects them in flat-range order; the merge walk below needs them in QEMU's sort order.
        Arrays.sort(next, (a, b) -> a.before(b) ? -1 : b.before(a) ? 1 : 0);
        int iold = 0;
        int inew = 0;
        while (iold < old.length || inew < next.length) {
            if (iold < old.length && (inew == next.length || old[iold].before(next[inew]))) {
                Ioeventfd fd = old[iold++];
                MemoryRegionSection s = eventfdSection(view, fd);
                for (MemoryListener l : as.listeners) {
                    l.eventfdDel(s, fd.matchData(), fd.data(), fd.notifier());
                }
            } else if (inew < next.length && (iold == old.length || next[inew].before(old[iold]))) {
                Ioeventfd fd = next[inew++];
                MemoryRegionSection s = eventfdSection(view, fd);
                for (int k = as.listeners.size() - 1; k >= 0; k--) {
                    as.listeners.get(k).eventfdAdd(s, fd.matchData(), fd.data(), fd.notifier());
                }
            } else {
                iold++;
                inew++;
            }
        }
        as.ioeventfds = next;
    }

    /** QEMU's ioeventfd section: just the guest range; a size-0 (any size) one ends before it starts. */
    private static MemoryRegionSection eventfdSection(FlatView view, Ioeventfd fd) {
        FlatRange fr = view.lookup(fd.addr());
        return new MemoryRegionSection(fr == null ? null : fr.region(), view, 0, fd.addr(), fd.addr() + fd.size() - 1,
                false, false, false);
    }

    /** The next subregion insertion number. Writer only. */
    long nextAddSequence() {
        return ++addSequence;
    }

    /**
     * Records every place where {@code r} shows through the tree (its whole extent, shifted and clipped through each
     * container and alias above it) as a window to re-render on commit. Mutators call it before and after changing
     * {@code r}, so both the old and the new places are covered. Writer only.
     */
    void noteChange(MemoryRegion r) {
        assert topologyLock.isHeldByCurrentThread();
        if (fullRenderPending || r.size == 0) {
            return;
        }
        ArrayDeque<Object[]> work = new ArrayDeque<>();
        work.push(new Object[] {r, 0L, U64.lastOffset(r.size)});
        while (!work.isEmpty()) {
            Object[] item = work.pop();
            MemoryRegion x = (MemoryRegion) item[0];
            long lo = (Long) item[1];
            long hi = (Long) item[2];
            if (++dirtyWindowCount > MAX_DIRTY_WINDOWS) {
                requireFullRender();
                return;
            }
            long[] w = dirtyWindows.get(x);
            int n = w == null ? 0 : (int) w[0];
            if (w == null || 1 + 2 * (n + 1) > w.length) {
                long[] grown = new long[1 + 2 * Math.max(4, 2 * n)];
                if (w != null) {
                    System.arraycopy(w, 0, grown, 0, 1 + 2 * n);
                }
                w = grown;
                dirtyWindows.put(x, w);
            }
            w[1 + 2 * n] = lo;
            w[2 + 2 * n] = hi;
            w[0] = n + 1;

            MemoryRegion c = x.container;
            if (c != null && c.size != 0) {
                long nlo = lo + x.addr;
                long clast = U64.lastOffset(c.size);
                if (!U64.lt(nlo, lo) && U64.le(nlo, clast)) {
                    work.push(new Object[] {c, nlo, U64.min(U64.saturatingAdd(hi, x.addr), clast)});
                }
            }
            for (MemoryRegion a : x.aliasedBy) {
                long off = a.aliasOffset;
                if (a.size == 0 || U64.lt(hi, off)) {
                    continue;
                }
                long nlo = U64.lt(lo, off) ? 0 : lo - off;
                long nhi = U64.min(hi - off, U64.lastOffset(a.size));
                if (U64.le(nlo, nhi)) {
                    work.push(new Object[] {a, nlo, nhi});
                }
            }
        }
    }

    /** The next commit renders every view whole. Writer only. */
    void requireFullRender() {
        fullRenderPending = true;
        dirtyWindows.clear();
    }

    /** Counts regions with the unmergeable flag. Writer only. */
    void unmergeableChanged(boolean nowUnmergeable) {
        unmergeableRegions += nowUnmergeable ? 1 : -1;
    }

    /** The dirty windows of {@code root} (its own offsets), sorted and merged into [first, last] pairs. */
    private long[] windowsOf(MemoryRegion root) {
        long[] w = dirtyWindows.get(root);
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

    /** Something visible may have changed; the outermost commit re-renders. Writer only. */
    void markUpdatePending() {
        assert topologyLock.isHeldByCurrentThread();
        updatePending = true;
    }

    private void updateTopology() {
        IdentityHashMap<MemoryRegion, FlatView> newViews = new IdentityHashMap<>();
        FlatView[] next = new FlatView[addressSpaces.size()];
        for (int i = 0; i < next.length; i++) {
            next[i] = viewFor(FlatViewRenderer.flatViewRoot(addressSpaces.get(i).root()), newViews);
        }
        for (int i = 0; i < next.length; i++) {
            // Every dispatch a new view needs is built before any view is published (QEMU builds it in
            // generate_memory_topology): readers never build anything.
            next[i].ensureDispatch(addressSpaces.get(i).pageBits(), unassigned);
        }
        for (FlatView v : next) {
            v.forgetDerivation();
        }
        flatViews = newViews;
        dirtyWindows.clear();
        dirtyWindowCount = 0;
        fullRenderPending = false;

        for (MemoryListener l : listeners) {
            l.begin();
        }
        for (int i = 0; i < next.length; i++) {
            AddressSpace as = addressSpaces.get(i);
            FlatView old = as.flatView();
            if (old == next[i]) {
                continue;
            }
            if (!as.listeners.isEmpty()) {
                topologyPass(as, old, next[i], false);
                topologyPass(as, old, next[i], true);
            }
            as.publish(next[i]);
        }
        for (AddressSpace as : addressSpaces) {
            updateIoeventfds(as);
        }
        for (MemoryListener l : listeners) {
            l.commit();
        }
    }

    /** The view of flatview root {@code physmr}: shared within one commit, and the old object if unchanged. */
    private FlatView viewFor(MemoryRegion physmr, IdentityHashMap<MemoryRegion, FlatView> made) {
        FlatView v = made.get(physmr);
        if (v != null) {
            return v;
        }
        FlatView old = flatViews.get(physmr);
        FlatRange[] ranges;
        long[] changed = null;
        if (old != null && old.rootAddr == (physmr == null ? 0 : physmr.addr) && !fullRenderPending
                && unmergeableRegions == 0) {
            long[] windows = windowsOf(physmr);
            ranges = windows.length == 0 ? old.rangeArray()
                    : FlatViewRenderer.renderWindows(physmr, old.rangeArray(), windows);
            changed = guestWindows(physmr, windows);
            assert Arrays.equals(ranges, FlatViewRenderer.render(physmr))
                    : "incremental render of " + physmr + " differs from a full render; windows="
                    + Arrays.toString(windows) + "\nold=" + Arrays.toString(old.rangeArray()) + "\nnew="
                    + Arrays.toString(ranges) + "\nfull=" + Arrays.toString(FlatViewRenderer.render(physmr));
        } else {
            ranges = FlatViewRenderer.render(physmr);
        }
        v = (old != null && old.rootAddr == (physmr == null ? 0 : physmr.addr) && old.sameRanges(ranges)) ? old
                : new FlatView(physmr, ranges);
        if (v != old && changed != null) {
            // Rendered from old by windows: its dispatches can be derived from old's (FlatView.ensureDispatch).
            v.derivedFrom = old;
            v.changedWindows = changed;
        }
        made.put(physmr, v);
        return v;
    }

    /**
     * The windows of {@code root} (pairs of its offsets, as {@link #windowsOf} gives them) as guest-physical pairs,
     * clipped where they pass 2^64 as {@link FlatViewRenderer#renderWindows} clips them.
     */
    private static long[] guestWindows(MemoryRegion root, long[] windows) {
        long delta = root == null ? 0 : root.addr;
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

    /** QEMU's {@code address_space_update_topology_pass}: one merge walk over the old and new ranges. */
    private static void topologyPass(AddressSpace as, FlatView oldView, FlatView newView, boolean adding) {
        FlatRange[] olds = oldView.rangeArray();
        FlatRange[] news = newView.rangeArray();
        int iold = 0;
        int inew = 0;
        while (iold < olds.length || inew < news.length) {
            FlatRange frold = iold < olds.length ? olds[iold] : null;
            FlatRange frnew = inew < news.length ? news[inew] : null;
            if (frold != null && (frnew == null || U64.lt(frold.start(), frnew.start())
                    || (frold.start() == frnew.start() && !frold.sameMapping(frnew)))) {
                // In the old view only, or in both with other attributes.
                if (!adding) {
                    coalescedDel(as, oldView, frold);
                    MemoryRegionSection s = MemoryRegionSection.of(frold, oldView);
                    for (int k = as.listeners.size() - 1; k >= 0; k--) {
                        as.listeners.get(k).regionDel(s);
                    }
                }
                iold++;
            } else if (frold != null && frnew != null && frold.sameMapping(frnew)) {
                // In both; only dirty logging may differ.
                if (adding) {
                    MemoryRegionSection s = MemoryRegionSection.of(frnew, newView);
                    for (MemoryListener l : as.listeners) {
                        l.regionNop(s);
                    }
                    int oldMask = frold.dirtyLogMask();
                    int newMask = frnew.dirtyLogMask();
                    if ((newMask & ~oldMask) != 0) {
                        for (MemoryListener l : as.listeners) {
                            l.logStart(s, oldMask, newMask);
                        }
                    }
                    if ((oldMask & ~newMask) != 0) {
                        for (int k = as.listeners.size() - 1; k >= 0; k--) {
                            as.listeners.get(k).logStop(s, oldMask, newMask);
                        }
                    }
                }
                iold++;
                inew++;
            } else {
                // In the new view only.
                if (adding) {
                    MemoryRegionSection s = MemoryRegionSection.of(frnew, newView);
                    for (MemoryListener l : as.listeners) {
                        l.regionAdd(s);
                    }
                    coalescedAdd(as, newView, frnew);
                }
                inew++;
            }
        }
    }

    // ---------------------------------------------------------------- listeners

    void registerListener(AddressSpace as, MemoryListener listener) {
        Objects.requireNonNull(listener, "listener");
        begin();
        try {
            if (as.system() != this || !addressSpaces.contains(as)) {
                throw new IllegalArgumentException("addressSpace=" + as.name() + ": not an address space of this system");
            }
            AddressSpace prev = listenerSpaces.get(listener);
            if (prev != null) {
                throw new IllegalArgumentException("listener=" + listener.name() + ": already registered on addressSpace="
                        + prev.name());
            }
            ListenerHooks.checkRegistrable(listener);
            insertByPriority(listeners, listener);
            insertByPriority(as.listeners, listener);
            listenerSpaces.put(listener, as);
            logClearListeners = listenersWith(ListenerHooks.LOG_CLEAR);

            // Replay the current view to the new listener only (QEMU's listener_add_address_space).
            listener.begin();
            if (globalDirtyTracking != 0) {
                listener.logGlobalStart();
            }
            FlatView view = as.flatView();
            for (int i = 0; i < view.rangeCount(); i++) {
                FlatRange fr = view.range(i);
                MemoryRegionSection s = view.section(i);
                listener.regionAdd(s);
                if (fr.dirtyLogMask() != 0) {
                    listener.logStart(s, 0, fr.dirtyLogMask());
                }
            }
            listener.commit();
        } finally {
            commit();
        }
    }

    void unregisterListener(AddressSpace as, MemoryListener listener) {
        begin();
        try {
            if (listenerSpaces.get(listener) != as) {
                throw new IllegalArgumentException("listener=" + listener.name() + ": not registered on addressSpace="
                        + as.name());
            }
            // QEMU's listener_del_address_space: every section goes away, stopping its logging first.
            listener.begin();
            FlatView view = as.flatView();
            for (int i = 0; i < view.rangeCount(); i++) {
                FlatRange fr = view.range(i);
                MemoryRegionSection s = view.section(i);
                if (fr.dirtyLogMask() != 0) {
                    listener.logStop(s, fr.dirtyLogMask(), 0);
                }
                listener.regionDel(s);
            }
            listener.commit();
            removeIdentity(listeners, listener);
            removeIdentity(as.listeners, listener);
            listenerSpaces.remove(listener);
            logClearListeners = listenersWith(ListenerHooks.LOG_CLEAR);
        } finally {
            commit();
        }
    }

    /** The registered listeners that implement {@code hook} (a {@link ListenerHooks} bit), in priority order. */
    private MemoryListener[] listenersWith(int hook) {
        return listeners.stream().filter(l -> (ListenerHooks.of(l) & hook) != 0).toArray(MemoryListener[]::new);
    }

    /** Inserts after every listener of lower or equal priority, as QEMU does. */
    private static void insertByPriority(ArrayList<MemoryListener> list, MemoryListener listener) {
        int p = listener.priority();
        int i = list.size();
        while (i > 0 && p < list.get(i - 1).priority()) {
            i--;
        }
        list.add(i, listener);
    }

    private static void removeIdentity(ArrayList<MemoryListener> list, MemoryListener listener) {
        for (int i = 0; i < list.size(); i++) {
            if (list.get(i) == listener) {
                list.remove(i);
                return;
            }
        }
    }

    // ---------------------------------------------------------------- translated code (CodeProtection's hook)

    /** Built with the system; reads nothing of it until used. */
    private final CodeProtection codeProtection = new CodeProtection(this);

    /** This system's {@link CodeProtection}, which its soft TLBs and access paths report to. */
    CodeProtection codeProtection() {
        return codeProtection;
    }
}
