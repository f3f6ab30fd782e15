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

    /** Copy dirty bits gathered elsewhere (e.g. a peer's log) into guestmem's bitmaps for a section. */
    default void logSync(MemoryRegionSection section) {
    }

    /** Like {@link #logSync} for the whole address space at once. */
    default void logSyncGlobal() {
    }

    /** Dirty bits of a section were cleared; re-arm logging there. */
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
