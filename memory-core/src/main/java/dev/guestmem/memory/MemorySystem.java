package dev.guestmem.memory;

import dev.guestmem.memory.internal.SharedSecrets;
import dev.guestmem.memory.internal.dirty.GlobalDirtyLog;
import dev.guestmem.memory.internal.dirty.RamDirtyMemory;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.ram.LayoutOnlyRamBlock;
import dev.guestmem.memory.internal.ram.PendingReleases;
import dev.guestmem.memory.internal.ram.RamAllocation;
import dev.guestmem.memory.internal.ram.SegmentRamBlock;
import dev.guestmem.memory.internal.render.IoeventfdRegistry;
import dev.guestmem.memory.internal.render.ListenerFailures;
import dev.guestmem.memory.internal.render.ListenerRegistry;
import dev.guestmem.memory.internal.render.ListenerUpdates;
import dev.guestmem.memory.internal.render.RegionChecks;
import dev.guestmem.memory.internal.render.TopologyCommit;
import dev.guestmem.memory.internal.render.TopologyLock;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

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
 * <p>Threading: one writer at a time. {@link #begin()} takes the {@link #globalLock() global lock} and then the
 * topology lock, and the matching {@link #commit()} releases both, so a transaction belongs to one thread. Readers
 * never take them: they load {@link AddressSpace#flatView()}.
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

    /**
     * Anonymous, zeroed RAM, each block in a shared {@code Arena} of its own, closed after the region is destroyed and
     * a grace period has passed (or when the block becomes unreachable). The JVM's own allocation, in 4 KiB pages
     * with no advice to the kernel: memory-offheap's {@code HostMemoryBackend.anonymous()} maps RAM as QEMU does, with
     * transparent huge pages asked for.
     */
    public static final RamAllocator ANONYMOUS_RAM = SegmentRamBlock::anonymous;

    /**
     * RAM that has a size but no memory: for tools that build, render, print and compare maps of machines whose RAM
     * they never touch. Asking such a block for its segment throws.
     */
    public static final RamAllocator LAYOUT_ONLY = LayoutOnlyRamBlock::new;

    /** The page size of address spaces made without one: 4 KiB (QEMU's x86 {@code TARGET_PAGE_BITS}). */
    public static final int DEFAULT_PAGE_BITS = 12;

    /** QEMU's BQL; taken before {@link #topologyLock} (see {@link GlobalLock} for the order). */
    private final GlobalLock globalLock = new GlobalLock();
    private final TopologyLock topologyLock = new TopologyLock();
    private final Rcu rcu = Rcu.global();
    /** Blocks of regions destroyed in the open transaction; released by the outermost commit. Writer only. */
    private final PendingReleases pendingReleases = new PendingReleases();
    private final RamAllocator ramAllocator;
    private final RamList ramList;
    private final boolean targetBigEndian;
    /** One bitmap per dirty-memory client, indexed by {@link DirtyMemoryClient#index()} ({@link RamDirtyMemory}). */
    final DirtyBitmap[] dirtyBitmaps;
    /** The ioeventfds' notifier order, count and pending update. Writer only. */
    private final IoeventfdRegistry ioeventfds = new IoeventfdRegistry();
    /** QEMU's {@code io_mem_unassigned}: what unmapped addresses resolve to. Never mapped anywhere. */
    private final MemoryRegion unassigned;
    private int transactionDepth;
    /** Counts subregion insertions, so the order in which subregions were added can be recovered. */
    private long addSequence;
    private boolean updatePending;
    private final ArrayList<AddressSpace> addressSpaces = new ArrayList<>();
    /** Every registered listener and the address space it watches (QEMU's {@code memory_listeners}). */
    private final ListenerRegistry listenerRegistry = new ListenerRegistry();
    /** Every registered listener, ascending priority: the registry's list. Writer only. */
    private final List<MemoryListener> listeners = listenerRegistry.all();
    /** QEMU's {@code global_dirty_tracking}: the reasons global dirty logging is on, a set of GLOBAL_DIRTY_*. */
    private volatile int globalDirtyTracking;

    /** QEMU's {@code GLOBAL_DIRTY_MIGRATION}: global dirty logging for migration. */
    public static final int GLOBAL_DIRTY_MIGRATION = 1;
    /** QEMU's {@code GLOBAL_DIRTY_DIRTY_RATE}: for measuring the guest's dirty rate. */
    public static final int GLOBAL_DIRTY_DIRTY_RATE = 1 << 1;
    /** QEMU's {@code GLOBAL_DIRTY_LIMIT}: for the dirty-limit throttle. */
    public static final int GLOBAL_DIRTY_LIMIT = 1 << 2;
    /** The global dirty log's start, stop and postponed stop, and the VM's run state. */
    private final GlobalDirtyLog globalDirtyLog = new GlobalDirtyLog(this, listenerRegistry);

    /** The views of the flatview roots and where the tree changed since they were rendered. Writer only. */
    private final TopologyCommit topology;
    /** What listeners threw in the open transaction; its outermost commit throws the first. Writer only. */
    private final ListenerFailures listenerFailures = new ListenerFailures();

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
        RamDirtyMemory dirtyMemory = new RamDirtyMemory(targetPageBits, globalDirtyLog);
        this.dirtyBitmaps = dirtyMemory.bitmaps();
        ramList.setDirtyHook(dirtyMemory);
        this.unassigned = new MemoryRegion(this, MemoryRegion.Kind.IO, "unassigned", U64.SIZE_2_64,
                MemoryRegionOps.UNASSIGNED, null, null, null, 0);
        this.topology = new TopologyCommit(unassigned);
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
        globalDirtyLog.start(flags);
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
        globalDirtyLog.stop(flags);
    }

    /**
     * QEMU's {@code memory_global_dirty_log_sync}: asks every listener to copy dirty bits gathered elsewhere (a
     * peer's log, a hypervisor's bitmap) into guestmem's bitmaps, for every logged section of its address space.
     */
    public void globalDirtyLogSync() {
        globalDirtyLog.sync(null);
    }

    /** QEMU's {@code memory_global_after_dirty_log_sync}: every listener hears {@code logGlobalAfterSync}. */
    public void globalAfterDirtyLogSync() {
        globalDirtyLog.afterSync();
    }

    /**
     * The listener side of dirty memory ({@code memory_region_sync_dirty_bitmap}, {@code _clear_dirty_bitmap}) that
     * regions and code protection call, and the global log's start and stop.
     */
    GlobalDirtyLog dirtyLog() {
        return globalDirtyLog;
    }

    /** The reasons global dirty logging is on (GLOBAL_DIRTY_*), 0 when it is off. */
    public int globalDirtyTracking() {
        return globalDirtyTracking;
    }

    /** Sets the reasons ({@link GlobalDirtyLog}, topology lock held); volatile, for the write path's mask. */
    void setGlobalDirtyTracking(int flags) {
        assert topologyLock.isHeldByCurrentThread();
        globalDirtyTracking = flags;
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
        globalDirtyLog.setVmRunning(running);
    }

    /** QEMU's {@code runstate_is_running}: what {@link #setVmRunning} was last told; true until then. */
    public boolean vmRunning() {
        return globalDirtyLog.vmRunning();
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
        RegionChecks.checkSize(MemoryRegion.Kind.RAM, name, size, null);
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
        RegionChecks.checkSize(MemoryRegion.Kind.RAM, name, size, null);
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
     * never an exception (see {@link AbstractRamBlock#mayFault()}). Memory mapped by other means (an {@code mmap}
     * through FFM) is not recognized: say which it is with {@link #ramFromSegment(String, MemorySegment, boolean)}.
     */
    public MemoryRegion ramFromSegment(String name, MemorySegment memory) {
        Objects.requireNonNull(memory, "memory");
        return ramFromSegment(name, memory, memory.isMapped());
    }

    /**
     * {@link #ramFromSegment(String, MemorySegment)} for memory whose caller knows whether it can fault: with
     * {@code mayFault} true, something outside this JVM can take pages away under the segment (a file, or a memfd not
     * sealed against shrinking, that another process may truncate), and its accesses take the guarded paths of
     * {@link AbstractRamBlock#mayFault()}, as those of a {@code FileChannel} mapping do; false is the caller's word
     * that nothing can (anonymous memory, a memfd sealed with {@code F_SEAL_SHRINK}), and the accesses keep the plain,
     * faster paths, for a {@code FileChannel} mapping too. Nothing else differs.
     *
     * <p>QEMU's {@code memory_region_init_ram_ptr} has no such notion: QEMU touches every RAM block with plain loads
     * and stores, and a truncation under one kills the process with SIGBUS. Here a fault must become a result, and
     * only the caller knows where its memory came from.
     */
    public MemoryRegion ramFromSegment(String name, MemorySegment memory, boolean mayFault) {
        Objects.requireNonNull(memory, "memory");
        return newRegion(MemoryRegion.Kind.RAM, name, RamAllocation.segmentSize(name, memory), null, null,
                SegmentRamBlock.prealloc(ramList.uniqueIdstr(name), memory, mayFault), null, 0);
    }

    /** QEMU's {@code memory_region_init_ram_device_ptr}: device memory the guest reaches like RAM. */
    public MemoryRegion ramDevice(String name, MemorySegment memory) {
        Objects.requireNonNull(memory, "memory");
        return newRegion(MemoryRegion.Kind.RAM_DEVICE, name, RamAllocation.segmentSize(name, memory), null, null,
                SegmentRamBlock.prealloc(ramList.uniqueIdstr(name), memory, memory.isMapped()), null, 0);
    }

    /** A RAM device region over {@code size} bytes from the allocator (for maps whose device memory is simulated). */
    public MemoryRegion ramDevice(String name, long size) {
        RegionChecks.checkSize(MemoryRegion.Kind.RAM_DEVICE, name, size, null);
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
        RegionChecks.checkSize(MemoryRegion.Kind.RAM, name, size, null);
        RamBlock block = allocate(backend, name, RamAllocation.resizeableMaxLength(name, size, maxSize));
        ((AbstractRamBlock) block).makeResizeable(RamAllocation.hostPageAligned(size), resized);
        ramList.add((AbstractRamBlock) block, inTransaction());
        return readonlyIfFlagged(newRegion(MemoryRegion.Kind.RAM, name, size, null, null, block, null, 0));
    }

    /** QEMU's {@code memory_region_init_rom}: {@code size} bytes the guest reads but cannot write. */
    public MemoryRegion rom(String name, long size) {
        RegionChecks.checkSize(MemoryRegion.Kind.ROM, name, size, null);
        return newRegion(MemoryRegion.Kind.ROM, name, size, null, null, allocate(name, size), null, 0);
    }

    /**
     * QEMU's {@code memory_region_init_rom_device}: {@code size} bytes read directly while in romd mode, with
     * writes (and, out of romd mode, reads) going to {@code ops}.
     */
    public MemoryRegion romDevice(String name, long size, MemoryRegionOps ops) {
        Objects.requireNonNull(ops, "ops");
        RegionChecks.checkSize(MemoryRegion.Kind.ROM_DEVICE, name, size, null);
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
        RegionChecks.checkNotDestroyed(target, "alias=" + name + " target");
        RegionChecks.checkAliasWindow(name, target, offset, size);
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
        return RamAllocation.allocate(ramList, allocator, name, size);
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
        RegionChecks.checkNotDestroyed(root, "addressSpace=" + name + " root");
        begin();
        try {
            AddressSpace as = new AddressSpace(this, name, root, pageBits,
                    topology.viewForNewAddressSpace(root, pageBits, updatePending));
            addressSpaces.add(as);
            return as;
        } finally {
            commit();
        }
    }

    /** QEMU's {@code address_space_destroy}: forgets an address space that has no listeners left. */
    public void destroyAddressSpace(AddressSpace as) {
        transaction(() -> {
            if (!as.listeners.isEmpty()) {
                throw new IllegalStateException("addressSpace=" + as.name() + " listeners=" + as.listeners.size()
                        + ": unregister its listeners first");
            }
            if (!addressSpaces.remove(as)) {
                throw new IllegalArgumentException("addressSpace=" + as.name() + ": not an address space of this system");
            }
        });
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

    /** QEMU's {@code memory_region_transaction_begin}: takes the global lock, then the topology lock; nests. */
    public void begin() {
        globalLock.lock();
        topologyLock.lock();
        transactionDepth++;
    }

    /**
     * QEMU's {@code memory_region_transaction_commit}: the outermost commit renders and publishes what changed, then
     * releases the topology lock.
     *
     * <p>A listener that throws does not stop it: every view is still published and every other listener call made
     * (QEMU's order kept), then, with the lock released, the first exception comes out wrapped in an
     * {@link IllegalStateException} naming the listener and the callback, later ones suppressed in it.
     *
     * @throws IllegalStateException if the calling thread has no open transaction, or a listener threw
     */
    public void commit() {
        if (!topologyLock.isHeldByCurrentThread() || transactionDepth == 0) {
            throw new IllegalStateException("commit without begin on thread=" + Thread.currentThread().getName());
        }
        IllegalStateException listenerFailure = null;
        try {
            if (--transactionDepth == 0) {
                // Blocks made in the transaction become findable before any view that maps them is published.
                ramList.publishPending();
                boolean ioeventfdUpdatePending = ioeventfds.takeUpdatePending();
                if (updatePending) {
                    updatePending = false;
                    topology.commit(addressSpaces, listeners, this::updateIoeventfds, listenerFailures);
                } else if (ioeventfdUpdatePending) {
                    for (AddressSpace as : addressSpaces) {
                        updateIoeventfds(as, listenerFailures);
                    }
                }
                if (!pendingReleases.isEmpty()) {
                    // Only now is no published view mapping them: the grace period may begin.
                    pendingReleases.releaseAll(ramList, rcu);
                }
                listenerFailure = listenerFailures.take();
            }
        } finally {
            topologyLock.unlock();
            globalLock.unlock();
        }
        if (listenerFailure != null) {
            throw listenerFailure;
        }
    }

    /**
     * Takes the topology lock without opening a transaction, so that work after an outermost commit (QEMU's resize
     * callback) still runs under it. Pairs with {@link #unlockTopology}.
     */
    void lockTopology() {
        globalLock.lock();
        topologyLock.lock();
    }

    void unlockTopology() {
        topologyLock.unlock();
        globalLock.unlock();
    }

    /** The machine's global lock (QEMU's BQL), which MMIO and transactions take; see {@link GlobalLock}. */
    public GlobalLock globalLock() {
        return globalLock;
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

    /** Whether the calling thread is inside a transaction. */
    public boolean inTransaction() {
        return topologyLock.isHeldByCurrentThread() && transactionDepth > 0;
    }

    /** The ioeventfd bookkeeping of {@link MemoryRegion#addEventfd} and {@code delEventfd}. Writer only. */
    IoeventfdRegistry ioeventfds() {
        assert topologyLock.isHeldByCurrentThread();
        return ioeventfds;
    }

    /**
     * QEMU's {@code memory_region_update_coalesced_range}: tells every address space's listeners about one coalesced
     * range of {@code mr} that was added or removed. Writer only.
     */
    void updateCoalescedRange(MemoryRegion mr, long[] range, boolean add) {
        ListenerUpdates.coalescedRange(addressSpaces, mr, range, add, listenerFailures);
    }

    /**
     * QEMU's {@code address_space_update_ioeventfds}: the address space's ioeventfds as the current view maps them,
     * listeners told the difference. Writer only.
     */
    private void updateIoeventfds(AddressSpace as, ListenerFailures failures) {
        as.ioeventfds = ioeventfds.update(as, as.ioeventfds, failures);
    }

    /** The next subregion insertion number. Writer only. */
    long nextAddSequence() {
        return ++addSequence;
    }

    /**
     * Records every place where {@code r} shows through the tree as a window to re-render on commit; mutators call it
     * before and after changing {@code r}. Writer only.
     */
    void noteChange(MemoryRegion r) {
        assert topologyLock.isHeldByCurrentThread();
        topology.changed();
        topology.windows().note(r);
    }

    /** The next commit renders every view whole. Writer only. */
    void requireFullRender() {
        topology.changed();
        topology.windows().requireFullRender();
    }

    /** Counts regions with the unmergeable flag. Writer only. */
    void unmergeableChanged(boolean nowUnmergeable) {
        topology.windows().unmergeableChanged(nowUnmergeable);
    }

    /** Something visible may have changed; the outermost commit re-renders. Writer only. */
    void markUpdatePending() {
        assert topologyLock.isHeldByCurrentThread();
        topology.changed();
        updatePending = true;
    }

    // ---------------------------------------------------------------- listeners

    void registerListener(AddressSpace as, MemoryListener listener) {
        Objects.requireNonNull(listener, "listener");
        transaction(() -> {
            if (as.system() != this || !addressSpaces.contains(as)) {
                throw new IllegalArgumentException("addressSpace=" + as.name() + ": not an address space of this system");
            }
            listenerRegistry.add(as, listener, globalDirtyTracking != 0);
        });
    }

    void unregisterListener(AddressSpace as, MemoryListener listener) {
        transaction(() -> {
            listenerRegistry.remove(as, listener);
        });
    }

    // ---------------------------------------------------------------- translated code (CodeProtection's hook)

    /** Built with the system; reads nothing of it until used. */
    private final CodeProtection codeProtection = new CodeProtection(this);

    /** This system's {@link CodeProtection}, which its soft TLBs and access paths report to. */
    CodeProtection codeProtection() {
        return codeProtection;
    }
}
