package dev.guestmem.memory;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Objects;

/**
 * The {@link RamDiscardManager} of a RAM region plugged and unplugged in fixed blocks, modelled on QEMU's virtio-mem
 * device ({@code VirtIOMEM} in {@code hw/virtio/virtio-mem.c}): its plugged-block bitmap, its plug, unplug and
 * unplug-all requests, and its listener list. The machine model (the device) decides what to plug; this class keeps
 * the state, tells the listeners and gives unplugged memory back.
 *
 * <ul>
 *   <li>{@link #realize} makes the manager, as QEMU's {@code virtio_mem_device_realize}: it requires coordinated
 *   discards ({@link RamBlockDiscard#coordinatedRequire}; refused while discarding is disabled), discards the whole
 *   region so that every block starts unplugged and reads as zeros, and sets itself as the region's manager, which
 *   must happen while the region is unmapped. While it lives, discards cannot be disabled, so an unplug always gives
 *   the memory back; {@link #close()} ends the requirement.</li>
 *   <li>{@link #plug} tells every listener whose section overlaps the range {@code notifyPopulate} for the overlap;
 *   if one refuses, those already told hear {@code notifyDiscard} for it, the range is discarded again (a refusing
 *   listener may have touched it) and the request fails with the blocks still unplugged.</li>
 *   <li>{@link #unplug} first gives the memory back ({@link AbstractRamBlock#discardRange}, so with memory-offheap's
 *   backends it returns to the host, and it reads back as zeros), then tells the overlapping listeners
 *   {@code notifyDiscard}; a discard that fails tells nobody and leaves the blocks plugged.</li>
 * </ul>
 * Listeners are told in QEMU's order: its {@code rdl_list} is a list with the newest registration at the head, so
 * the most recently registered listener hears first; a rollback tells the listeners already told in that same order.
 * Unplugged blocks stay mapped (as virtio-mem's {@code unplugged-inaccessible=off}); keeping the guest off them is
 * the device's business.
 *
 * <p>Units: offsets are region-relative bytes (QEMU's requests carry guest-physical addresses; subtract the region's
 * address), sizes are bytes, multiples of {@link #blockSize()}.
 *
 * <p>Threading: every method takes the topology lock of the region's {@link MemorySystem} (QEMU's BQL), and
 * listeners are called with it held.
 */
public final class VirtioMemDiscardManager implements RamDiscardManager, AutoCloseable {
    /** One entry of QEMU's {@code rdl_list}: a listener and the section it registered for. */
    private record Registration(RamDiscardListener rdl, MemoryRegionSection section) {
    }

    private final MemorySystem system;
    private final MemoryRegion region;
    private final AbstractRamBlock block;
    /** The region's size in bytes when the manager was realized: {@code blockCount} blocks. */
    private final long regionSize;
    private final long blockSize;
    private final int blockShift;
    private final int blockCount;
    /** QEMU's {@code bitmap}: bit {@code i} is set while block {@code i} is plugged. Writer only. */
    private final BitSet plugged = new BitSet();
    /** QEMU's {@code rdl_list}: newest registration first. Writer only. */
    private final ArrayList<Registration> listeners = new ArrayList<>();
    /** QEMU's {@code size}: plugged bytes. Writer only. */
    private long pluggedSize;
    private boolean closed;

    private VirtioMemDiscardManager(MemoryRegion region, long blockSize) {
        this.system = region.system();
        this.region = region;
        if (region.kind() != MemoryRegion.Kind.RAM) {
            throw new IllegalArgumentException("region=" + region.name() + " kind=" + region.kind().mapName()
                    + ": virtio-mem needs a RAM region");
        }
        if (!(region.ramBlock() instanceof AbstractRamBlock b) || !b.hasMemory()) {
            throw new IllegalArgumentException("region=" + region.name() + " block=" + region.ramBlock()
                    + ": virtio-mem needs RAM with memory it can discard");
        }
        this.block = b;
        if (b.flags().contains(RamFlag.RESIZEABLE)) {
            throw new IllegalArgumentException("region=" + region.name() + " block=" + b.idstr()
                    + ": virtio-mem needs a RAM block of fixed size, not a RESIZEABLE one");
        }
        long pageSize = b.pageSize();
        if (blockSize <= 0 || Long.bitCount(blockSize) != 1 || blockSize < pageSize) {
            throw new IllegalArgumentException("region=" + region.name() + " blockSize=" + U64.hex(blockSize)
                    + " pageSize=" + U64.hex(pageSize) + ": the block size must be a power of two, at least the page size");
        }
        this.regionSize = region.size();
        if ((regionSize & (blockSize - 1)) != 0) {
            throw new IllegalArgumentException("region=" + region.name() + " size=" + U64.hex(regionSize) + " blockSize="
                    + U64.hex(blockSize) + ": the region size must be a multiple of the block size");
        }
        long blocks = regionSize / blockSize;
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("region=" + region.name() + " size=" + U64.hex(regionSize) + " blockSize="
                    + U64.hex(blockSize) + ": more than 2^31-1 blocks; take a larger block size");
        }
        this.blockSize = blockSize;
        this.blockShift = Long.numberOfTrailingZeros(blockSize);
        this.blockCount = (int) blocks;
    }

    /**
     * QEMU's {@code virtio_mem_device_realize}, for its discard part: a manager of {@code region} with every block
     * unplugged (the region's memory discarded), set as the region's {@link RamDiscardManager}.
     *
     * @param region    an unmapped RAM region without a manager, of fixed size, a multiple of {@code blockSize}
     * @param blockSize bytes, a power of two, at least the RAM block's {@link RamBlock#pageSize()}
     * @throws IllegalArgumentException if the region or block size does not fit
     * @throws IllegalStateException    if the region is mapped or already has a manager, or discarding RAM is
     *                                  disabled in its memory system; nothing is changed
     */
    public static VirtioMemDiscardManager realize(MemoryRegion region, long blockSize) {
        Objects.requireNonNull(region, "region");
        MemorySystem system = region.system();
        system.lockTopology();
        try {
            VirtioMemDiscardManager m = new VirtioMemDiscardManager(region, blockSize);
            region.setRamDiscardManager(m);
            RamBlockDiscard coordination = system.ramBlockDiscard();
            if (!coordination.coordinatedRequire(true)) {
                region.setRamDiscardManager(null);
                throw new IllegalStateException("region=" + region.name() + " " + coordination
                        + ": discarding RAM is disabled, and virtio-mem needs coordinated discards");
            }
            try {
                m.block.discardRange(0, m.regionSize);
            } catch (RuntimeException e) {
                coordination.coordinatedRequire(false);
                region.setRamDiscardManager(null);
                throw e;
            }
            return m;
        } finally {
            system.unlockTopology();
        }
    }

    /** The region whose memory this manager plugs and unplugs. */
    public MemoryRegion region() {
        return region;
    }

    /** QEMU's {@code block-size}: the unit of plugging, in bytes. */
    public long blockSize() {
        return blockSize;
    }

    /** QEMU's {@code size}: how many bytes are plugged. */
    public long pluggedSize() {
        system.lockTopology();
        try {
            return pluggedSize;
        } finally {
            system.unlockTopology();
        }
    }

    // ---------------------------------------------------------------- requests

    /**
     * QEMU's plug request ({@code virtio_mem_state_change_request} with {@code plug}): makes the unplugged blocks of
     * region-relative bytes {@code [offset, offset + size)} plugged, after telling the listeners.
     *
     * @throws IllegalArgumentException if the range is not whole blocks inside the region
     * @throws IllegalStateException    if a block of the range is plugged already, a listener refused (the others
     *                                  were told the range is discarded again), or the manager is closed; nothing
     *                                  is changed
     */
    public void plug(long offset, long size) {
        stateChangeRequest(true, offset, size);
    }

    /**
     * QEMU's unplug request: discards the plugged blocks of region-relative bytes {@code [offset, offset + size)}
     * (they read as zeros afterwards), then tells the listeners.
     *
     * @throws IllegalArgumentException if the range is not whole blocks inside the region
     * @throws IllegalStateException    if a block of the range is not plugged, the discard failed, or the manager is
     *                                  closed; nothing is changed
     */
    public void unplug(long offset, long size) {
        stateChangeRequest(false, offset, size);
    }

    /** QEMU's {@code virtio_mem_state_change_request} and {@code virtio_mem_set_block_state}. */
    private void stateChangeRequest(boolean plug, long offset, long size) {
        system.lockTopology();
        try {
            String what = plug ? "plug" : "unplug";
            checkOpen();
            long mask = blockSize - 1;
            if (size == 0 || (offset & mask) != 0 || (size & mask) != 0 || Long.compareUnsigned(offset, regionSize) > 0
                    || Long.compareUnsigned(size, regionSize - offset) > 0) {
                throw new IllegalArgumentException("region=" + region.name() + " offset=" + U64.hex(offset) + " size="
                        + U64.hex(size) + " blockSize=" + U64.hex(blockSize) + " regionSize=" + U64.hex(regionSize)
                        + ": a " + what + " must cover whole blocks inside the region");
            }
            int first = (int) (offset >>> blockShift);
            int end = first + (int) (size >>> blockShift);
            int wrong = nextBit(plug, first); // every block must be in the state the request changes
            if (wrong < end) {
                throw new IllegalStateException("region=" + region.name() + " offset=" + U64.hex(offset) + " size="
                        + U64.hex(size) + " block=" + U64.hex((long) wrong << blockShift) + ": the " + what
                        + " was refused, that block " + (plug ? "is plugged already" : "is not plugged"));
            }
            if (plug) {
                notifyPlug(offset, size);
                plugged.set(first, end);
                pluggedSize += size;
            } else {
                block.discardRange(offset, size); // first, as QEMU: a discard that fails has told nobody
                for (Registration r : listeners) {
                    MemoryRegionSection s = r.section.intersectRange(offset, size);
                    if (s != null) {
                        r.rdl.notifyDiscard(s);
                    }
                }
                plugged.clear(first, end);
                pluggedSize -= size;
            }
        } finally {
            system.unlockTopology();
        }
    }

    /**
     * QEMU's {@code virtio_mem_unplug_all}: discards the whole region and tells each listener, with one
     * notification for its whole section if it {@link RamDiscardListener#doubleDiscardSupported supports double
     * discards}, else one per plugged part. Nothing happens while nothing is plugged.
     *
     * @throws IllegalStateException if the discard failed or the manager is closed; nothing is changed
     */
    public void unplugAll() {
        system.lockTopology();
        try {
            checkOpen();
            if (pluggedSize == 0) {
                return;
            }
            block.discardRange(0, regionSize);
            for (Registration r : listeners) {
                notifyDiscardAll(r);
            }
            plugged.clear();
            pluggedSize = 0;
        } finally {
            system.unlockTopology();
        }
    }

    /**
     * QEMU's {@code virtio_mem_device_unrealize}, for its discard part: clears the region's manager and ends the
     * coordinated-discard requirement. Plugged blocks keep their memory. Closing twice does nothing.
     *
     * @throws IllegalStateException if listeners are still registered or the region is mapped; nothing is changed
     */
    @Override
    public void close() {
        system.lockTopology();
        try {
            if (closed) {
                return;
            }
            if (!listeners.isEmpty()) {
                throw new IllegalStateException("region=" + region.name() + " listeners=" + listeners.size()
                        + ": unregister every RamDiscardListener before closing its manager");
            }
            region.setRamDiscardManager(null);
            system.ramBlockDiscard().coordinatedRequire(false);
            closed = true;
        } finally {
            system.unlockTopology();
        }
    }

    // ---------------------------------------------------------------- RamDiscardManager

    @Override
    public long getMinGranularity(MemoryRegion mr) {
        if (mr != region) {
            throw new IllegalArgumentException("region=" + (mr == null ? null : mr.name()) + " managerRegion="
                    + region.name() + ": not the manager's region");
        }
        return blockSize;
    }

    @Override
    public boolean isPopulated(MemoryRegionSection section) {
        system.lockTopology();
        try {
            checkSection(section);
            int first = (int) (section.offsetWithinRegion() >>> blockShift);
            int last = (int) ((section.offsetWithinRegion() + section.sizeMinusOne()) >>> blockShift);
            return plugged.nextClearBit(first) > last;
        } finally {
            system.unlockTopology();
        }
    }

    @Override
    public boolean replayPopulated(MemoryRegionSection section, ReplayRamPopulate replayFn) {
        Objects.requireNonNull(replayFn, "replayFn");
        system.lockTopology();
        try {
            checkSection(section);
            return forEachRun(true, section, replayFn);
        } finally {
            system.unlockTopology();
        }
    }

    @Override
    public void replayDiscarded(MemoryRegionSection section, ReplayRamDiscard replayFn) {
        Objects.requireNonNull(replayFn, "replayFn");
        system.lockTopology();
        try {
            checkSection(section);
            forEachRun(false, section, s -> {
                replayFn.replay(s);
                return true;
            });
        } finally {
            system.unlockTopology();
        }
    }

    @Override
    public void registerListener(RamDiscardListener rdl, MemoryRegionSection section) {
        Objects.requireNonNull(rdl, "rdl");
        system.lockTopology();
        try {
            checkOpen();
            checkSection(section);
            if (indexOf(rdl) >= 0) {
                throw new IllegalArgumentException("region=" + region.name() + " listener=" + rdl
                        + ": already registered");
            }
            Registration r = new Registration(rdl, section);
            listeners.addFirst(r);
            ArrayList<MemoryRegionSection> told = new ArrayList<>();
            MemoryRegionSection[] refused = new MemoryRegionSection[1];
            boolean registered = false;
            try {
                registered = forEachRun(true, section, s -> {
                    if (!rdl.notifyPopulate(s)) {
                        refused[0] = s;
                        return false;
                    }
                    told.add(s);
                    return true;
                });
            } finally {
                if (!registered) {
                    listeners.remove(r);
                    for (MemoryRegionSection s : told) {
                        rdl.notifyDiscard(s);
                    }
                }
            }
            if (!registered) {
                throw new IllegalStateException("region=" + region.name() + " listener=" + rdl + " section="
                        + refused[0] + ": the listener refused a populated part; it was not registered");
            }
        } finally {
            system.unlockTopology();
        }
    }

    @Override
    public void unregisterListener(RamDiscardListener rdl) {
        system.lockTopology();
        try {
            int i = indexOf(rdl);
            if (i < 0) {
                throw new IllegalArgumentException("region=" + region.name() + " listener=" + rdl
                        + ": not registered");
            }
            notifyDiscardAll(listeners.get(i));
            listeners.remove(i);
        } finally {
            system.unlockTopology();
        }
    }

    @Override
    public String toString() {
        return "VirtioMemDiscardManager[region=" + region.name() + " blockSize=" + U64.hex(blockSize) + "]";
    }

    // ---------------------------------------------------------------- internals

    /**
     * QEMU's {@code virtio_mem_notify_plug}: {@code notifyPopulate} to each listener overlapping the range, in list
     * order; on the first refusal (or exception), {@code notifyDiscard} to those already told, in the same order, and
     * the range discarded again, then the failure.
     */
    private void notifyPlug(long offset, long size) {
        for (int i = 0; i < listeners.size(); i++) {
            Registration r = listeners.get(i);
            MemoryRegionSection s = r.section.intersectRange(offset, size);
            if (s == null) {
                continue;
            }
            boolean accepted = false;
            try {
                accepted = r.rdl.notifyPopulate(s);
            } finally {
                if (!accepted) {
                    for (int j = 0; j < i; j++) {
                        Registration told = listeners.get(j);
                        MemoryRegionSection t = told.section.intersectRange(offset, size);
                        if (t != null) {
                            told.rdl.notifyDiscard(t);
                        }
                    }
                    block.discardRange(offset, size);
                }
            }
            if (!accepted) {
                throw new IllegalStateException("region=" + region.name() + " offset=" + U64.hex(offset) + " size="
                        + U64.hex(size) + " listener=" + r.rdl + " section=" + s
                        + ": the listener refused to populate; the plug was rolled back");
            }
        }
    }

    /** QEMU's discard of one listener's whole section ({@code virtio_mem_notify_unplug_all}, unregister). */
    private void notifyDiscardAll(Registration r) {
        if (pluggedSize == 0) {
            return;
        }
        if (r.rdl.doubleDiscardSupported()) {
            r.rdl.notifyDiscard(r.section);
        } else {
            forEachRun(true, r.section, s -> {
                r.rdl.notifyDiscard(s);
                return true;
            });
        }
    }

    /**
     * QEMU's {@code virtio_mem_for_each_plugged_section} ({@code wantPlugged}) and {@code _unplugged_section}: calls
     * {@code fn} for each maximal run of plugged (or unplugged) blocks that overlaps {@code section}, cropped to it,
     * in ascending order, until {@code fn} returns false.
     *
     * @return false if {@code fn} did
     */
    private boolean forEachRun(boolean wantPlugged, MemoryRegionSection section, ReplayRamPopulate fn) {
        int bit = nextBit(wantPlugged, (int) (section.offsetWithinRegion() >>> blockShift));
        while (bit < blockCount) {
            int end = Math.min(nextBit(!wantPlugged, bit), blockCount);
            MemoryRegionSection part = section.intersectRange((long) bit << blockShift, (long) (end - bit) << blockShift);
            if (part == null) {
                break; // the run starts past the section
            }
            if (!fn.replay(part)) {
                return false;
            }
            bit = nextBit(wantPlugged, end);
        }
        return true;
    }

    /** The first block at or after {@code from} that is plugged ({@code plugged}) or not; {@code blockCount} if none. */
    private int nextBit(boolean wantPlugged, int from) {
        int i = wantPlugged ? plugged.nextSetBit(from) : plugged.nextClearBit(from);
        return i < 0 ? blockCount : i;
    }

    private int indexOf(RamDiscardListener rdl) {
        for (int i = 0; i < listeners.size(); i++) {
            if (listeners.get(i).rdl == rdl) {
                return i;
            }
        }
        return -1;
    }

    private void checkSection(MemoryRegionSection section) {
        Objects.requireNonNull(section, "section");
        long first = section.offsetWithinRegion();
        long last = first + section.sizeMinusOne();
        if (section.region() != region || U64.lt(last, first) || !U64.lt(last, regionSize)) {
            throw new IllegalArgumentException("section=" + section + " managerRegion=" + region.name()
                    + " regionSize=" + U64.hex(regionSize) + ": not a section of the manager's region");
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("region=" + region.name() + ": the manager is closed");
        }
    }
}
