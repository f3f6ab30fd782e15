package dev.guestmem.memory.internal.dirty;

import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryListener;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionSection;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import dev.guestmem.memory.internal.render.ListenerHooks;
import dev.guestmem.memory.internal.render.ListenerRegistry;
import java.util.List;

/**
 * QEMU's global dirty log for one {@link MemorySystem}: {@code memory_global_dirty_log_start} and {@code _stop} with
 * their reasons ({@code GLOBAL_DIRTY_*}), and the stop postponed while the VM is stopped ({@code postponed_stop_flags}
 * and its VM-change-state handler), with the run state it depends on. The reasons themselves stay a volatile field of
 * the system, which every direct write reads ({@code memory_region_get_dirty_log_mask}); this class changes them, under
 * the topology lock, through the {@link CoreAccess} bridge. Also the listener side of dirty memory: syncing
 * ({@code memory_region_sync_dirty_bitmap}) and telling {@code logClear} listeners about cleared bits
 * ({@code memory_region_clear_dirty_bitmap}). {@code MemorySystem}'s methods of the same names are facades over
 * this.
 *
 * <p>Threading: {@link #start}, {@link #stop} and {@link #setVmRunning} are writers and take the topology lock;
 * {@link #vmRunning} may be read by any thread.
 */
public final class GlobalDirtyLog {
    private static final int GLOBAL_DIRTY_MASK = MemorySystem.GLOBAL_DIRTY_MIGRATION
            | MemorySystem.GLOBAL_DIRTY_DIRTY_RATE | MemorySystem.GLOBAL_DIRTY_LIMIT;

    private final MemorySystem system;
    /** The system's listeners, ascending priority: the registry's list. Writer only. */
    private final List<MemoryListener> listeners;
    private final ListenerRegistry registry;
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

    /** The global dirty log of {@code system}, whose listeners are {@code registry}'s. Reads nothing of it yet. */
    public GlobalDirtyLog(MemorySystem system, ListenerRegistry registry) {
        this.system = system;
        this.registry = registry;
        this.listeners = registry.all();
    }

    private static CoreAccess core() {
        return SharedSecrets.coreAccess();
    }

    /** See {@link MemorySystem#globalDirtyLogStart}. */
    public void start(int flags) {
        checkGlobalFlags(flags);
        // Held across both steps, so no other writer sees the postponed stop done and this start not yet.
        core().lockTopology(system);
        try {
            if (postponedStopFlags != 0) {
                int rest = postponedStopFlags & ~flags;
                postponedStopFlags = 0;
                if (rest != 0) {
                    doStop(rest);
                }
            }
            system.transaction(() -> {
                int old = system.globalDirtyTracking();
                int add = flags & ~old;
                if (add == 0) {
                    return;
                }
                core().setGlobalDirtyTracking(system, old | add);
                if (old == 0) {
                    for (MemoryListener l : listeners) {
                        l.logGlobalStart();
                    }
                    core().renderAllOnCommit(system);
                }
            });
        } finally {
            core().unlockTopology(system);
        }
    }

    /** See {@link MemorySystem#globalDirtyLogStop}. */
    public void stop(int flags) {
        checkGlobalFlags(flags);
        core().lockTopology(system);
        try {
            int tracking = system.globalDirtyTracking();
            int live = tracking & ~postponedStopFlags;
            if ((live & flags) != flags) {
                throw new IllegalStateException("flags=0x" + Integer.toHexString(flags) + " tracking=0x"
                        + Integer.toHexString(tracking) + " postponed=0x"
                        + Integer.toHexString(postponedStopFlags) + ": stopping a reason that was not started");
            }
            if (!vmRunning) {
                postponedStopFlags |= flags;
                return;
            }
            doStop(flags);
        } finally {
            core().unlockTopology(system);
        }
    }

    /** QEMU's {@code memory_global_dirty_log_do_stop}: {@code flags} are being tracked. Topology lock held. */
    private void doStop(int flags) {
        final int now = system.globalDirtyTracking() & ~flags; // the topology lock is held: no writer races
        final boolean stopped = now == 0;
        system.transaction(() -> {
            core().setGlobalDirtyTracking(system, now);
            if (stopped) {
                core().renderAllOnCommit(system);
            }
        });
        if (stopped) {
            system.transaction(() -> {
                for (int k = listeners.size() - 1; k >= 0; k--) {
                    listeners.get(k).logGlobalStop();
                }
            });
        }
    }

    /** See {@link MemorySystem#setVmRunning}. */
    public void setVmRunning(boolean running) {
        core().lockTopology(system);
        try {
            if (vmRunning == running) {
                return;
            }
            vmRunning = running;
            // QEMU's VM-change-state handler for the postponed stop: it runs when the VM starts.
            if (running && postponedStopFlags != 0) {
                int flags = postponedStopFlags;
                postponedStopFlags = 0;
                doStop(flags);
            }
        } finally {
            core().unlockTopology(system);
        }
    }

    /** See {@link MemorySystem#vmRunning}. */
    public boolean vmRunning() {
        return vmRunning;
    }

    /** See {@link MemorySystem#globalAfterDirtyLogSync}: every listener hears {@code logGlobalAfterSync}. */
    public void afterSync() {
        system.transaction(() -> {
            for (MemoryListener l : listeners) {
                l.logGlobalAfterSync();
            }
        });
    }

    /**
     * QEMU's {@code memory_region_sync_dirty_bitmap}: in priority order (of all listeners, whichever address space
     * each watches), a listener that implements {@code logSync} hears it for every section of its own address
     * space's view that logs some client (only {@code mr}'s, unless {@code mr} is null), in address order; one that
     * implements {@code logSyncGlobal} hears that once, whatever {@code mr} is; one that implements neither is passed
     * over without a look at its view.
     */
    public void sync(MemoryRegion mr) {
        system.transaction(() -> {
            for (MemoryListener l : listeners) {
                int hooks = ListenerHooks.of(l);
                if ((hooks & ListenerHooks.LOG_SYNC) != 0) {
                    FlatView view = registry.spaceOf(l).flatView();
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
        });
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
    public void clear(MemoryRegion mr, RamBlock block, long start, long len) {
        if (len == 0 || registry.logClearListeners().length == 0) {
            return;
        }
        long last = U64.saturatingAdd(start, len - 1);
        system.transaction(() -> {
            for (MemoryListener l : registry.logClearListeners()) {
                FlatView view = registry.spaceOf(l).flatView();
                for (int i = 0; i < view.rangeCount(); i++) {
                    FlatRange fr = view.range(i);
                    if (fr.dirtyLogMask() == 0 || (mr != null ? fr.region() != mr : fr.region().ramBlock() != block)) {
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
        });
    }

    /**
     * What QEMU's {@code cpu_physical_memory_test_and_clear_dirty} tells listeners after clearing one client's bits
     * of region-relative {@code [offset, offset + len)} of RAM: {@link #clear} of that range widened to
     * whole target pages of the ram_addr space.
     */
    public void clearPages(MemoryRegion mr, RamBlock block, long offset, long len) {
        if (len == 0 || registry.logClearListeners().length == 0) {
            return;
        }
        long pageMask = (1L << system.ramList().pageBits()) - 1;
        long first = offset & ~pageMask;
        // Inside a RAM block, so far below 2^64: the rounding cannot wrap.
        long end = (offset + len + pageMask) & ~pageMask;
        clear(mr, block, first, end - first);
    }

    private static void checkGlobalFlags(int flags) {
        if (flags == 0 || (flags & ~GLOBAL_DIRTY_MASK) != 0) {
            throw new IllegalArgumentException("flags=0x" + Integer.toHexString(flags)
                    + ": expected a non-empty set of GLOBAL_DIRTY_MIGRATION, _DIRTY_RATE, _LIMIT");
        }
    }
}
