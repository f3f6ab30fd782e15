package dev.guestmem.memory;

/**
 * Told about changes to an address space's flat view, as QEMU's {@code MemoryListener}. Every callback has an
 * empty default, so a listener overrides only what it needs.
 *
 * <p>Order, as in QEMU: listeners with a lower {@link #priority()} hear adds and starts first (forward); deletes and
 * stops go in the reverse order. Within one address space sections arrive in ascending address order: first every
 * {@code regionDel} of the old view, then {@code regionNop}/{@code logStart}/{@code logStop}/{@code regionAdd} of the
 * new one. {@link #begin()} and {@link #commit()} bracket every topology change and go to every registered listener,
 * whichever address space it watches.
 *
 * <p>Dirty logging, as in QEMU: {@code logStart}/{@code logStop} come during a commit, for a range that stays and
 * only changes which clients log it (after its {@code regionNop}; a range that appears or moves hears only
 * {@code regionAdd}/{@code regionDel}, whatever it logs). Registering replays {@code regionAdd} then
 * {@code logStart} for each logged range; unregistering sends {@code logStop} then {@code regionDel}.
 * {@code logGlobalStart}, {@code logSync}, {@code logSyncGlobal}, {@code logClear} and {@code logGlobalAfterSync} go
 * forward through all listeners of the memory system in priority order, whichever address space each watches;
 * {@code logGlobalStop} goes in reverse. Per-section callbacks come in address order, for the sections of the
 * listener's own address space.
 *
 * <p>QEMU passes over a listener whose {@code log_sync}, {@code log_sync_global} or {@code log_clear} is NULL; here
 * that is a listener whose class does not override {@link #logSync}, {@link #logSyncGlobal} or {@link #logClear}
 * (checked once per class), and such a listener costs nothing when dirty bits are synced or cleared. A listener
 * syncs either per section or globally: registering one that overrides both throws.
 *
 * <p>Threading: callbacks run on the writer's thread with the topology lock held. A callback must not change the
 * topology.
 */
public interface MemoryListener {
    /** Before a topology change is delivered. */
    default void begin() {
    }

    /** After a topology change has been delivered and published. */
    default void commit() {
    }

    /** A section appeared, or changed its attributes (it was deleted first). */
    default void regionAdd(MemoryRegionSection section) {
    }

    /** A section disappeared, or is about to be re-added with other attributes. */
    default void regionDel(MemoryRegionSection section) {
    }

    /** A section is unchanged by a topology change that touched this address space. */
    default void regionNop(MemoryRegionSection section) {
    }

    /** Dirty logging started for some clients ({@code newMask & ~oldMask}) on a section. */
    default void logStart(MemoryRegionSection section, int oldMask, int newMask) {
    }

    /** Dirty logging stopped for some clients ({@code oldMask & ~newMask}) on a section. */
    default void logStop(MemoryRegionSection section, int oldMask, int newMask) {
    }

    /**
     * Copy dirty bits gathered elsewhere (e.g. a peer's log) into guestmem's bitmaps for a section that logs some
     * client: before a snapshot of the section's region, and for every such section on a global sync.
     */
    default void logSync(MemoryRegionSection section) {
    }

    /**
     * Like {@link #logSync} for the whole address space at once, for a listener that cannot sync finer: once per sync,
     * whichever region the sync is for. Not for a listener that implements {@code logSync}.
     */
    default void logSyncGlobal() {
    }

    /**
     * Dirty bits of a section were taken or cleared (QEMU's {@code log_clear}): clear the listener's own log of that
     * part and re-arm logging there. The section is clipped to the cleared part, so it may be smaller than the range
     * in the view. Heard from {@link MemoryRegion#clearDirtyBitmap}, and, as in QEMU, after
     * {@link MemoryRegion#snapshotAndClearDirty} (the range asked for), {@link MemoryRegion#resetDirty} (widened to
     * whole pages) and a {@link MemoryRegion#ramResize} that changes the used length (the old used range, once per
     * client). Only for sections that log some client.
     */
    default void logClear(MemoryRegionSection section) {
    }

    /** Global dirty logging (migration) started. */
    default void logGlobalStart() {
    }

    /** Global dirty logging stopped. */
    default void logGlobalStop() {
    }

    /** After a global sync has been delivered to every listener. */
    default void logGlobalAfterSync() {
    }

    /** An ioeventfd appeared: writes of {@code size} bytes at {@code addr} (matching {@code data}) signal {@code e}. */
    default void eventfdAdd(MemoryRegionSection section, boolean matchData, long data, EventNotifier e) {
    }

    /** An ioeventfd disappeared. */
    default void eventfdDel(MemoryRegionSection section, boolean matchData, long data, EventNotifier e) {
    }

    /** A coalesced-MMIO range {@code [addr, addr + len)} (guest-physical) appeared. */
    default void coalescedIoAdd(MemoryRegionSection section, long addr, long len) {
    }

    /** A coalesced-MMIO range disappeared. */
    default void coalescedIoDel(MemoryRegionSection section, long addr, long len) {
    }

    /** Lower priorities hear adds first and deletes last. */
    default int priority() {
        return 0;
    }

    /** A name for diagnostics. */
    default String name() {
        return getClass().getSimpleName();
    }
}
