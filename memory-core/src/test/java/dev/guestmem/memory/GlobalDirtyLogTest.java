package dev.guestmem.memory;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Global dirty logging as QEMU 7.2's {@code memory_global_dirty_log_start/stop} (softmmu/memory.c): reasons are a bit
 * set; turning it on tells every listener {@code logGlobalStart} (ascending priority) and then commits, so every RAM
 * range logs MIGRATION too ({@code logStart} with the new mask); turning the last reason off commits first
 * ({@code logStop}) and then tells every listener {@code logGlobalStop} (descending priority); a listener registered
 * meanwhile hears {@code logGlobalStart} in its replay.
 *
 * <p>Syncing, as {@code memory_region_sync_dirty_bitmap}: the global listener list forward; a listener with
 * {@code log_sync} hears it for each logged section of its own address space (of the one region, for a snapshot), one
 * with {@code log_sync_global} instead hears that once. A snapshot ({@code memory_region_snapshot_and_clear_dirty})
 * syncs, takes the bits, clears ({@code log_clear} for the range asked) and ends with
 * {@code memory_global_after_dirty_log_sync}.
 *
 * <p>Stopping while the VM is stopped ({@code !runstate_is_running()}) is postponed to the VM-start handler, the
 * reasons of several stops added together; a start meanwhile first takes its own reasons out of the postponed set and
 * stops the rest at once ({@code memory_global_dirty_log_stop_postponed_run}), whatever the run state.
 */
class GlobalDirtyLogTest {
    private static final long PAGE = 4096;
    private static final int MIG = DirtyMemoryClient.MIGRATION.mask();

    /** What A (priority 0) and B (priority 1) hear when global logging goes from off to on, {@code nop}s left out. */
    private static final List<String> START = List.of("A log_global_start", "B log_global_start", "A begin", "B begin",
            "A log_start 0000000000000000-0000000000007fff ram @0 old=0 new=" + MIG,
            "B log_start 0000000000000000-0000000000007fff ram @0 old=0 new=" + MIG,
            "A commit", "B commit");
    /** What they hear when it goes from on to off: the commit first, then the global stop in reverse. */
    private static final List<String> STOP = List.of("A begin", "B begin",
            "B log_stop 0000000000000000-0000000000007fff ram @0 old=" + MIG + " new=0",
            "A log_stop 0000000000000000-0000000000007fff ram @0 old=" + MIG + " new=0",
            "A commit", "B commit", "B log_global_stop", "A log_global_stop");

    private MemorySystem m;
    private MemoryRegion ram;
    private AddressSpace as;
    private final List<String> log = new ArrayList<>();

    @BeforeEach
    void setUp() {
        m = new MemorySystem();
        MemoryRegion root = m.container("root", -1L);
        ram = m.ram("ram", 8 * PAGE);
        root.addSubregion(0, ram);
        root.addSubregion(0x10000, m.io("dev", 0x100, MemoryRegionOps.builder().read((a, s) -> 0)
                .write((a, d, s) -> { }).build()));
        as = m.addressSpace("memory", root);
        as.registerListener(new RecordingListener("A", 0, log));
        as.registerListener(new RecordingListener("B", 1, log));
        ram.resetDirty(0, 8 * PAGE, DirtyMemoryClient.MIGRATION);
        log.clear();
    }

    /** The log without the {@code nop}s of ranges a change leaves alone, then emptied. */
    private List<String> interesting() {
        List<String> l = log.stream().filter(s -> !s.contains(" nop ")).toList();
        log.clear();
        return l;
    }

    @Test
    void startTellsListenersThenLogsEveryRamRange() {
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        assertEquals(START, interesting(), "the I/O region gets no log_start");
        assertEquals(MIG, ram.dirtyLogMask());
        as.stlLe(3 * PAGE, 1, MemTxAttrs.UNSPECIFIED);
        assertTrue(ram.getDirty(3 * PAGE, PAGE, DirtyMemoryClient.MIGRATION));
        assertFalse(ram.getDirty(2 * PAGE, PAGE, DirtyMemoryClient.MIGRATION));
    }

    @Test
    void reasonsAreABitSetAndTheLastStopEndsIt() {
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        log.clear();
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_DIRTY_RATE);
        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        assertEquals(List.of(), log, "still on for the dirty rate");
        assertEquals(MemorySystem.GLOBAL_DIRTY_DIRTY_RATE, m.globalDirtyTracking());
        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_DIRTY_RATE);
        assertEquals(STOP, interesting());
        as.stlLe(3 * PAGE, 1, MemTxAttrs.UNSPECIFIED);
        assertFalse(ram.getDirty(0, 8 * PAGE, DirtyMemoryClient.MIGRATION), "no longer logged");
        assertThrows(IllegalStateException.class, () -> m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_LIMIT));
        assertThrows(IllegalArgumentException.class, () -> m.globalDirtyLogStart(8));
    }

    @Test
    void snapshotsSyncBitsGatheredElsewhereFirst() {
        // A listener standing for a peer that logs writes of its own (say, a vhost-user backend's dirty log).
        as.registerListener(new MemoryListener() {
            @Override
            public void logSync(MemoryRegionSection section) {
                log.add("peer log_sync " + section.region().name());
                section.region().setDirty(5 * PAGE, 1);
            }

            @Override
            public void logGlobalAfterSync() {
                log.add("peer after_sync");
            }
        });
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        log.clear();
        DirtySnapshot snap = ram.snapshotAndClearDirty(0, 8 * PAGE, DirtyMemoryClient.MIGRATION);
        assertTrue(snap.getDirty(ram.ramBlock().offset() + 5 * PAGE, PAGE), "the peer's bit is in the snapshot");
        // Listeners in priority order (the peer, priority 0, was registered after A): each syncs the logged section;
        // once the bits are taken, those with logClear (not the peer) clear it; then every listener hears that the
        // sync is over.
        assertEquals(List.of("A log_sync 0000000000000000-0000000000007fff ram @0",
                "peer log_sync ram",
                "B log_sync 0000000000000000-0000000000007fff ram @0",
                "A log_clear 0000000000000000-0000000000007fff ram @0",
                "B log_clear 0000000000000000-0000000000007fff ram @0",
                "A log_global_after_sync", "peer after_sync", "B log_global_after_sync"), log);
        log.clear();
        m.globalDirtyLogSync();
        assertEquals(List.of("A log_sync 0000000000000000-0000000000007fff ram @0", "peer log_sync ram",
                "B log_sync 0000000000000000-0000000000007fff ram @0"),
                log, "only the logged RAM section is synced, not the I/O region");
    }

    @Test
    void eachListenerSyncsPerSectionOrGloballyInTheGlobalOrder() {
        // A second address space that sees ram through an alias, with a listener of its own that comes first.
        MemoryRegion dmaRoot = m.container("dma-root", -1L);
        dmaRoot.addSubregion(0x80000000L, m.alias("dma-ram", ram, 0, 8 * PAGE));
        AddressSpace dma = m.addressSpace("dma", dmaRoot);
        dma.registerListener(new RecordingListener("D", -1, log));
        // A listener that can only sync everything at once, between A and B.
        as.registerListener(new MemoryListener() {
            @Override
            public void logSyncGlobal() {
                log.add("G log_sync_global");
            }
        });
        MemoryRegion other = m.ram("other", PAGE);
        as.root().addSubregion(0x20000, other);
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        log.clear();

        m.globalDirtyLogSync();
        assertEquals(List.of(
                "D log_sync 0000000080000000-0000000080007fff ram @0",
                "A log_sync 0000000000000000-0000000000007fff ram @0",
                "A log_sync 0000000000020000-0000000000020fff other @0",
                "G log_sync_global",
                "B log_sync 0000000000000000-0000000000007fff ram @0",
                "B log_sync 0000000000020000-0000000000020fff other @0"), log);
        log.clear();

        // A snapshot of one region: D's space does not map it, G syncs everything anyway.
        other.snapshotAndClearDirty(0, PAGE, DirtyMemoryClient.MIGRATION);
        assertEquals(List.of(
                "A log_sync 0000000000020000-0000000000020fff other @0",
                "G log_sync_global",
                "B log_sync 0000000000020000-0000000000020fff other @0",
                "A log_clear 0000000000020000-0000000000020fff other @0",
                "B log_clear 0000000000020000-0000000000020fff other @0",
                "D log_global_after_sync", "A log_global_after_sync", "B log_global_after_sync"), log);
    }

    @Test
    void aListenerThatSyncsBothWaysIsRefused() {
        MemoryListener both = new MemoryListener() {
            @Override
            public void logSync(MemoryRegionSection section) {
                log.add("both log_sync");
            }

            @Override
            public void logSyncGlobal() {
                log.add("both log_sync_global");
            }

            @Override
            public String name() {
                return "both";
            }
        };
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> as.registerListener(both));
        assertTrue(e.getMessage().startsWith("listener=both "), e.getMessage());
        assertTrue(e.getMessage().contains("overrides both logSync and logSyncGlobal"), e.getMessage());
        assertEquals(2, as.listeners().size());
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        m.globalDirtyLogSync();
        assertFalse(log.stream().anyMatch(s -> s.startsWith("both")), log.toString());
    }

    @Test
    void aListenerRegisteredWhileOnHearsItInTheReplay() {
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        List<String> late = new ArrayList<>();
        as.registerListener(new RecordingListener("C", 2, late));
        assertEquals("C begin", late.get(0));
        assertEquals("C log_global_start", late.get(1));
        assertTrue(late.contains("C log_start 0000000000000000-0000000000007fff ram @0 old=0 new=" + MIG), late.toString());
    }

    /** Global logging on for {@code reasons}, then the VM stopped, with an empty log. */
    private void startThenStopTheVm(int reasons) {
        m.globalDirtyLogStart(reasons);
        m.setVmRunning(false);
        log.clear();
    }

    @Test
    void aStopWhileTheVmIsStoppedWaitsUntilItRuns() {
        assertTrue(m.vmRunning(), "a new memory system runs");
        startThenStopTheVm(MemorySystem.GLOBAL_DIRTY_MIGRATION);

        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        assertEquals(List.of(), log, "postponed: nobody hears anything yet");
        assertEquals(MemorySystem.GLOBAL_DIRTY_MIGRATION, m.globalDirtyTracking());
        as.stlLe(3 * PAGE, 1, MemTxAttrs.UNSPECIFIED);
        assertTrue(ram.getDirty(3 * PAGE, PAGE, DirtyMemoryClient.MIGRATION), "still logging");
        m.setVmRunning(false);
        assertEquals(List.of(), log, "stopping a stopped VM changes nothing");

        m.setVmRunning(true);
        assertTrue(m.vmRunning());
        assertEquals(STOP, interesting(), "the VM runs: the postponed stop happens");
        assertEquals(0, m.globalDirtyTracking());
        m.setVmRunning(true);
        assertEquals(List.of(), log);
    }

    @Test
    void aStartInBetweenCancelsThePostponedStopOfItsReason() {
        startThenStopTheVm(MemorySystem.GLOBAL_DIRTY_MIGRATION);

        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        assertEquals(List.of(), log, "logging simply goes on");
        m.setVmRunning(true);
        assertEquals(List.of(), log, "nothing is left to stop when the VM runs");
        assertEquals(MemorySystem.GLOBAL_DIRTY_MIGRATION, m.globalDirtyTracking());

        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        assertEquals(STOP, interesting(), "running: a stop happens at once");
    }

    @Test
    void aStartOfAnotherReasonDoesThePostponedStopAtOnce() {
        startThenStopTheVm(MemorySystem.GLOBAL_DIRTY_DIRTY_RATE);

        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_DIRTY_RATE);
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        // The postponed stop is settled first though the VM is still stopped: DIRTY_RATE was the only reason, so
        // logging goes off completely, then on again for MIGRATION.
        assertEquals(Stream.concat(STOP.stream(), START.stream()).toList(), interesting());
        assertEquals(MemorySystem.GLOBAL_DIRTY_MIGRATION, m.globalDirtyTracking());
        m.setVmRunning(true);
        assertEquals(List.of(), log);
    }

    @Test
    void postponedStopsAddUpAndAStartTakesOutOnlyItsOwnReasons() {
        startThenStopTheVm(MemorySystem.GLOBAL_DIRTY_MIGRATION | MemorySystem.GLOBAL_DIRTY_DIRTY_RATE);

        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_DIRTY_RATE);
        IllegalStateException twice = assertThrows(IllegalStateException.class,
                () -> m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION));
        assertEquals("flags=0x1 tracking=0x3 postponed=0x3: stopping a reason that was not started",
                twice.getMessage());

        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        // DIRTY_RATE is stopped now; MIGRATION, taken out of the postponed stop, keeps logging on: nothing to hear.
        assertEquals(List.of(), log);
        assertEquals(MemorySystem.GLOBAL_DIRTY_MIGRATION, m.globalDirtyTracking());
        m.setVmRunning(true);
        assertEquals(List.of(), log);
        assertThrows(IllegalStateException.class, () -> m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_DIRTY_RATE));
        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        assertEquals(STOP, interesting());
    }
}
