package dev.guestmem.memory;

/**
 * QEMU's {@code RamDiscardManager} (the {@code RamDiscardManagerClass} interface of {@code include/exec/memory.h}):
 * the owner of a RAM region whose memory is populated and discarded in parts while the region stays mapped (as a
 * virtio-mem device plugs and unplugs blocks of its region). Technologies that cannot live with discarded memory
 * silently coming back (a device that pins guest RAM for DMA) ask it which parts are populated and register
 * {@link RamDiscardListener}s to hear about changes; technologies that don't care map the whole region.
 *
 * <p>A manager is set on its region with {@link MemoryRegion#setRamDiscardManager} before the region is mapped, so
 * that everyone who maps it finds the manager, and cleared only once the region is unmapped again;
 * {@link VirtioMemDiscardManager} is the implementation guestmem provides.
 *
 * <p>Units: sections are parts of the manager's region; their {@code offsetWithinRegion} is region-relative, their
 * size in bytes. Every section passed in must be a section of the manager's region, inside it.
 *
 * <p>Threading: implementations run every method under the topology lock of the region's {@link MemorySystem}
 * (QEMU's BQL) and call listeners and replay callbacks on the caller's thread, with that lock held.
 */
public interface RamDiscardManager {
    /** QEMU's {@code ReplayRamPopulate}: told about one populated part; returns false to stop the replay. */
    @FunctionalInterface
    interface ReplayRamPopulate {
        boolean replay(MemoryRegionSection section);
    }

    /** QEMU's {@code ReplayRamDiscard}: told about one discarded part. */
    @FunctionalInterface
    interface ReplayRamDiscard {
        void replay(MemoryRegionSection section);
    }

    /**
     * QEMU's {@code get_min_granularity}: the smallest unit, in bytes, in which the manager populates and discards
     * {@code mr}'s memory, and so the alignment of every change listeners hear about (before cropping to their
     * section). A power of two.
     *
     * @throws IllegalArgumentException if {@code mr} is not the manager's region
     */
    long getMinGranularity(MemoryRegion mr);

    /**
     * QEMU's {@code is_populated}: whether all of {@code section} is populated (no part discarded). The section need
     * not be aligned to the granularity; a unit it only partly covers counts whole.
     */
    boolean isPopulated(MemoryRegionSection section);

    /**
     * QEMU's {@code replay_populated}: calls {@code replayFn} for each populated part of {@code section} in ascending
     * order, each part a maximal run cropped to the section, and stops at the first call that returns false.
     *
     * @return true if every call returned true (QEMU's 0), false if one refused
     */
    boolean replayPopulated(MemoryRegionSection section, ReplayRamPopulate replayFn);

    /**
     * QEMU's {@code replay_discarded}: calls {@code replayFn} for each discarded part of {@code section} in
     * ascending order, each part a maximal run cropped to the section.
     */
    void replayDiscarded(MemoryRegionSection section, ReplayRamDiscard replayFn);

    /**
     * QEMU's {@code register_listener}: registers {@code rdl} for {@code section} and tells it, through
     * {@link RamDiscardListener#notifyPopulate}, about every part of the section that is populated now.
     *
     * @throws IllegalArgumentException if the section is not one of the manager's region, or {@code rdl} is already
     *                                  registered
     * @throws IllegalStateException    if {@code rdl} refuses a populated part: it is then told that the parts it
     *                                  accepted are discarded again, and is not registered (QEMU only logs an error
     *                                  and leaves the listener registered with a partial picture)
     */
    void registerListener(RamDiscardListener rdl, MemoryRegionSection section);

    /**
     * QEMU's {@code unregister_listener}: tells {@code rdl} that the populated parts of its section are discarded (in
     * one notification for the whole section if it {@link RamDiscardListener#doubleDiscardSupported supports double
     * discards}), then unregisters it.
     *
     * @throws IllegalArgumentException if {@code rdl} is not registered with this manager
     */
    void unregisterListener(RamDiscardListener rdl);
}
