package dev.guestmem.memory;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
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
    public static final RamAllocator ANONYMOUS_RAM = ArenaRamBlock::new;

    /**
     * RAM that has a size but no memory: for tools that build, render, print and compare maps of machines whose RAM
     * they never touch. Asking such a block for its segment throws.
     */
    public static final RamAllocator LAYOUT_ONLY = LayoutOnlyRamBlock::new;

    private final ReentrantLock topologyLock = new ReentrantLock();
    private final RamAllocator ramAllocator;
    private int transactionDepth;
    private boolean updatePending;
    private final ArrayList<AddressSpace> addressSpaces = new ArrayList<>();
    /** Every registered listener, ascending priority (QEMU's {@code memory_listeners}). */
    private final ArrayList<MemoryListener> listeners = new ArrayList<>();
    private final IdentityHashMap<MemoryListener, AddressSpace> listenerSpaces = new IdentityHashMap<>();
    /** The current view of each flatview root (QEMU's {@code flat_views}); the null key is the empty view. */
    private IdentityHashMap<MemoryRegion, FlatView> flatViews = new IdentityHashMap<>();
    private boolean globalDirtyLog;

    /** A memory system whose RAM is anonymous memory. */
    public MemorySystem() {
        this(ANONYMOUS_RAM);
    }

    public MemorySystem(RamAllocator ramAllocator) {
        this.ramAllocator = Objects.requireNonNull(ramAllocator, "ramAllocator");
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

    /** QEMU's {@code memory_region_init_ram_ptr}: guest RAM over memory the caller owns and keeps alive. */
    public MemoryRegion ramFromSegment(String name, MemorySegment memory) {
        Objects.requireNonNull(memory, "memory");
        return newRegion(MemoryRegion.Kind.RAM, name, segmentSize(name, memory), null, null,
                new SegmentRamBlock(name, memory), null, 0);
    }

    /** QEMU's {@code memory_region_init_ram_device_ptr}: device memory the guest reaches like RAM. */
    public MemoryRegion ramDevice(String name, MemorySegment memory) {
        Objects.requireNonNull(memory, "memory");
        return newRegion(MemoryRegion.Kind.RAM_DEVICE, name, segmentSize(name, memory), null, null,
                new SegmentRamBlock(name, memory), null, 0);
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
        return new MemoryRegion(this, kind, name, size, ops, iommuOps, block, alias, aliasOffset);
    }

    private RamBlock allocate(String name, long size) {
        if (size == U64.SIZE_2_64 || size < 0) {
            throw new IllegalArgumentException("region=" + name + " size=" + U64.sizeHex(size)
                    + ": RAM larger than 2^63-1 bytes cannot be allocated");
        }
        RamBlock block = ramAllocator.allocate(name, size);
        if (block.maxLength() < size) {
            throw new IllegalStateException("region=" + name + " size=" + U64.hex(size) + " blockLength="
                    + U64.hex(block.maxLength()) + ": the allocator returned too little RAM");
        }
        return block;
    }

    private static long segmentSize(String name, MemorySegment memory) {
        if (memory.byteSize() == 0) {
            throw new IllegalArgumentException("region=" + name + " size=0: RAM-backed regions need at least one byte");
        }
        return memory.byteSize();
    }

    // ---------------------------------------------------------------- address spaces

    /** QEMU's {@code address_space_init}: a new address space over {@code root}, rendered at once. */
    public AddressSpace addressSpace(String name, MemoryRegion root) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(root, "root");
        if (root.system != this) {
            throw new IllegalArgumentException("addressSpace=" + name + " root=" + root.name
                    + ": the root belongs to another MemorySystem");
        }
        begin();
        try {
            // Join the current view of this flatview root if there is one, else render it and record it there, as
            // QEMU's address_space_update_topology does: a view kept out of flatViews would be shared with no later
            // space and look changed to the next commit, which would republish it for nothing.
            AddressSpace as = new AddressSpace(this, name, root, viewFor(FlatViewRenderer.flatViewRoot(root),
                    flatViews));
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
            if (--transactionDepth == 0 && updatePending) {
                updatePending = false;
                updateTopology();
            }
        } finally {
            topologyLock.unlock();
        }
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

    /** Whether the calling thread is inside a transaction. */
    public boolean inTransaction() {
        return topologyLock.isHeldByCurrentThread() && transactionDepth > 0;
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
        flatViews = newViews;

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
        FlatRange[] ranges = FlatViewRenderer.render(physmr);
        FlatView old = flatViews.get(physmr);
        v = (old != null && old.sameRanges(ranges)) ? old : new FlatView(physmr, ranges);
        made.put(physmr, v);
        return v;
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
            insertByPriority(listeners, listener);
            insertByPriority(as.listeners, listener);
            listenerSpaces.put(listener, as);

            // Replay the current view to the new listener only (QEMU's listener_add_address_space).
            listener.begin();
            if (globalDirtyLog) {
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
        } finally {
            commit();
        }
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
}
