package dev.guestmem.memory;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Global dirty logging as QEMU 7.2's {@code memory_global_dirty_log_start/stop}: reasons are a bit set; turning it
 * on tells every listener {@code logGlobalStart} (ascending priority) and then commits, so every RAM range logs
 * MIGRATION too ({@code logStart} with the new mask); turning the last reason off commits first ({@code logStop})
 * and then tells every listener {@code logGlobalStop} (descending priority); a listener registered meanwhile hears
 * {@code logGlobalStart} in its replay.
 */
class GlobalDirtyLogTest {
    private static final long PAGE = 4096;
    private static final int MIG = DirtyMemoryClient.MIGRATION.mask();

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

    @Test
    void startTellsListenersThenLogsEveryRamRange() {
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        List<String> interesting = log.stream().filter(l -> !l.contains(" nop ")).toList();
        assertEquals(List.of("A log_global_start", "B log_global_start", "A begin", "B begin",
                "A log_start 0000000000000000-0000000000007fff ram @0 old=0 new=" + MIG,
                "B log_start 0000000000000000-0000000000007fff ram @0 old=0 new=" + MIG,
                "A commit", "B commit"), interesting, "the I/O region gets no log_start");
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
        List<String> interesting = log.stream().filter(l -> !l.contains(" nop ")).toList();
        assertEquals(List.of("A begin", "B begin",
                "B log_stop 0000000000000000-0000000000007fff ram @0 old=" + MIG + " new=0",
                "A log_stop 0000000000000000-0000000000007fff ram @0 old=" + MIG + " new=0",
                "A commit", "B commit", "B log_global_stop", "A log_global_stop"), interesting);
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
        // Listeners in priority order (the peer, priority 0, was registered after A): each syncs the logged
        // section, then its global sync; after the snapshot every listener hears that the sync is over.
        assertEquals(List.of("A log_sync 0000000000000000-0000000000007fff ram @0", "A log_sync_global",
                "peer log_sync ram",
                "B log_sync 0000000000000000-0000000000007fff ram @0", "B log_sync_global",
                "A log_global_after_sync", "peer after_sync", "B log_global_after_sync"), log);
        log.clear();
        m.globalDirtyLogSync();
        assertEquals(List.of("A log_sync 0000000000000000-0000000000007fff ram @0", "A log_sync_global",
                "peer log_sync ram", "B log_sync 0000000000000000-0000000000007fff ram @0", "B log_sync_global"),
                log, "only the logged RAM section is synced, not the I/O region");
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
}
