package dev.guestmem.memory;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Dirty logging from regions to bitmaps, as QEMU does it for a client such as VGA: {@code setLog} is counted and
 * shows in the flat ranges' dirty masks (listeners hear {@code logStart}/{@code logStop}); writes through the access
 * path mark exactly the pages they touch in the bitmap of every client that logs the range, and nothing while nobody
 * logs; a new block starts dirty for every client (QEMU's {@code ram_block_add}).
 *
 * <p>Clearing, as QEMU 7.2's {@code memory_region_clear_dirty_bitmap} (softmmu/memory.c): it walks the global
 * listener list forward, passes over a listener without {@code log_clear}, and for each other one walks that
 * listener's own address space, keeping the flat ranges whose region is the cleared one and whose dirty-log mask is
 * not 0, each cut to the cleared range (offsets and size moved together). QEMU calls it on its own from
 * {@code cpu_physical_memory_test_and_clear_dirty} (behind {@code memory_region_reset_dirty}, and once per client
 * in {@code qemu_ram_resize}) with the range widened to whole target pages, and from
 * {@code cpu_physical_memory_snapshot_and_clear_dirty} with the range as asked. {@code memory_region_flush_rom_device}
 * (softmmu/physmem.c) asserts a ROM device in romd mode and marks the range as {@code invalidate_and_set_dirty} does.
 */
class DirtyLoggingTest {
    private static final long PAGE = 4096;
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    private MemorySystem m;
    private MemoryRegion vram;
    private MemoryRegion ram;
    private AddressSpace as;
    private RecordingListener listener;
    private final List<String> log = new ArrayList<>();

    @BeforeEach
    void setUp() {
        m = new MemorySystem();
        MemoryRegion root = m.container("root", -1L);
        ram = m.ram("ram", 16 * PAGE);
        vram = m.ram("vram", 16 * PAGE);
        root.addSubregion(0, ram);
        root.addSubregion(0x100000, vram);
        as = m.addressSpace("memory", root);
        listener = new RecordingListener("L", 0, log);
        as.registerListener(listener);
        // new blocks are dirty for every client; start from clean bitmaps
        for (DirtyMemoryClient c : DirtyMemoryClient.values()) {
            vram.resetDirty(0, 16 * PAGE, c);
            ram.resetDirty(0, 16 * PAGE, c);
        }
        log.clear();
    }

    private List<Long> dirtyPages(MemoryRegion r, DirtyMemoryClient c) {
        List<Long> pages = new ArrayList<>();
        for (long p = 0; p < r.size() / PAGE; p++) {
            if (r.getDirty(p * PAGE, PAGE, c)) {
                pages.add(p);
            }
        }
        return pages;
    }

    /** The log without the {@code nop}s of ranges a change leaves alone, then emptied. */
    private List<String> changes() {
        List<String> c = log.stream().filter(l -> !l.contains(" nop ")).toList();
        log.clear();
        return c;
    }

    @Test
    void newBlocksStartDirtyForEveryClient() {
        MemoryRegion fresh = m.ram("fresh", 4 * PAGE);
        for (DirtyMemoryClient c : DirtyMemoryClient.values()) {
            assertTrue(fresh.getDirty(0, 4 * PAGE, c), c.toString());
        }
    }

    @Test
    void setLogIsCountedAndToldToListeners() {
        vram.setLog(true, DirtyMemoryClient.VGA);
        assertEquals(List.of("L begin", "L nop 0000000000000000-000000000000ffff ram @0",
                "L nop 0000000000100000-000000000010ffff vram @0",
                "L log_start 0000000000100000-000000000010ffff vram @0 old=0 new=1", "L commit"),
                log.stream().map(String::strip).toList());
        log.clear();
        vram.setLog(true, DirtyMemoryClient.VGA);   // a second user: no change
        vram.setLog(false, DirtyMemoryClient.VGA);  // one of two stops: still logging
        assertEquals(List.of(), log);
        assertEquals(DirtyMemoryClient.VGA.mask(), vram.dirtyLogMask());
        vram.setLog(false, DirtyMemoryClient.VGA);
        assertTrue(log.contains("L log_stop 0000000000100000-000000000010ffff vram @0 old=1 new=0"), log.toString());
        assertThrows(IllegalStateException.class, () -> vram.setLog(false, DirtyMemoryClient.VGA));
    }

    @Test
    void writesMarkExactlyTheTouchedPagesOfLoggingClients() {
        vram.setLog(true, DirtyMemoryClient.VGA);
        as.stqLe(0x100000 + 3 * PAGE + 8, 1, ATTRS);                     // one page
        as.write(0x100000 + 5 * PAGE - 2, ATTRS, new byte[4], 0, 4);      // straddles pages 4 and 5
        as.set(0x100000 + 9 * PAGE, (byte) 1, 2 * PAGE, ATTRS);           // pages 9 and 10
        as.writeRom(0x100000 + 12 * PAGE, ATTRS, new byte[1], 0, 1);      // firmware loads count too
        assertEquals(List.of(3L, 4L, 5L, 9L, 10L, 12L), dirtyPages(vram, DirtyMemoryClient.VGA));
        assertEquals(List.of(), dirtyPages(vram, DirtyMemoryClient.MIGRATION), "MIGRATION is not logging");
        as.stqLe(7 * PAGE, 1, ATTRS);
        assertEquals(List.of(), dirtyPages(ram, DirtyMemoryClient.VGA), "nobody logs ram");
        DirtySnapshot snap = vram.snapshotAndClearDirty(0, 16 * PAGE, DirtyMemoryClient.VGA);
        assertTrue(snap.getDirty(vram.ramBlock().offset() + 3 * PAGE, PAGE));
        assertFalse(snap.getDirty(vram.ramBlock().offset() + 6 * PAGE, PAGE));
        assertEquals(List.of(), dirtyPages(vram, DirtyMemoryClient.VGA), "taken and cleared");
    }

    @Test
    void aSnapshotCanBeTakenAgainIntoTheSameObject() {
        vram.setLog(true, DirtyMemoryClient.VGA);
        vram.resetDirty(0, 16 * PAGE, DirtyMemoryClient.VGA);
        DirtySnapshot reused = new DirtySnapshot();
        as.stb(0x100000 + 2 * PAGE, 1, ATTRS);
        assertSame(reused, vram.snapshotAndClearDirty(0, 16 * PAGE, DirtyMemoryClient.VGA, reused));
        assertEquals(1, reused.dirtyPageCount());
        assertTrue(reused.getDirty(vram.ramBlock().offset() + 2 * PAGE, PAGE));
        // Refilled, not added to: the first snapshot's page is gone from it.
        as.stb(0x100000 + 5 * PAGE, 1, ATTRS);
        assertSame(reused, vram.snapshotAndClearDirty(0, 16 * PAGE, DirtyMemoryClient.VGA, reused));
        assertEquals(1, reused.dirtyPageCount());
        assertFalse(reused.getDirty(vram.ramBlock().offset() + 2 * PAGE, PAGE));
        assertTrue(reused.getDirty(vram.ramBlock().offset() + 5 * PAGE, PAGE));
        assertEquals(List.of(), dirtyPages(vram, DirtyMemoryClient.VGA), "taken and cleared");
    }

    @Test
    void softTlbStoresToLoggedPagesAreMarked() {
        vram.setLog(true, DirtyMemoryClient.VGA);
        SoftTlb tlb = new SoftTlb(as);
        for (int i = 0; i < 3; i++) {
            tlb.stqLe(0x100000 + 2 * PAGE + 8 * i, i);   // repeated stores: each must mark, not only the first
            vram.resetDirty(0, 16 * PAGE, DirtyMemoryClient.VGA);
            tlb.stqLe(0x100000 + 2 * PAGE + 8 * i, i);
            assertEquals(List.of(2L), dirtyPages(vram, DirtyMemoryClient.VGA), "store " + i);
        }
        tlb.stqLe(7 * PAGE, 1);
        assertEquals(List.of(), dirtyPages(ram, DirtyMemoryClient.VGA), "unlogged RAM stays fast and unmarked");
        assertEquals(1, (int) tlb.ldqLe(7 * PAGE));
    }

    @Test
    void stoppingLogStopsMarking() {
        vram.setLog(true, DirtyMemoryClient.VGA);
        vram.setLog(false, DirtyMemoryClient.VGA);
        as.stqLe(0x100000, 1, ATTRS);
        assertEquals(List.of(), dirtyPages(vram, DirtyMemoryClient.VGA));
    }

    @Test
    void resizingDirtiesTheNewUsedRange() {
        MemoryRegion grow = m.resizeableRam("grow", 4 * PAGE, 16 * PAGE, null);
        for (DirtyMemoryClient c : DirtyMemoryClient.values()) {
            grow.resetDirty(0, 16 * PAGE, c);
        }
        grow.ramResize(8 * PAGE);
        assertTrue(grow.getDirty(0, 8 * PAGE, DirtyMemoryClient.MIGRATION));
        assertFalse(grow.getDirty(8 * PAGE, 8 * PAGE, DirtyMemoryClient.MIGRATION));
    }

    @Test
    void clearDirtyBitmapTellsEachListenerItsLoggedSectionsCutToTheRange() {
        // vram is mapped twice in "memory" (at 0x100000, and its upper half through an alias at 0x200000) and once,
        // through another alias, in a second address space; ram is mapped but not logged.
        as.root().addSubregion(0x200000, m.alias("vram-hi", vram, 8 * PAGE, 8 * PAGE));
        MemoryRegion gpuRoot = m.container("gpu-root", -1L);
        gpuRoot.addSubregion(0x40000000, m.alias("gpu-vram", vram, 0, 16 * PAGE));
        AddressSpace gpu = m.addressSpace("gpu", gpuRoot);
        as.registerListener(new RecordingListener("M", -1, log));
        gpu.registerListener(new RecordingListener("X", 5, log));
        List<String> syncOnly = new ArrayList<>();
        as.registerListener(new MemoryListener() {
            @Override
            public void logSync(MemoryRegionSection section) {
                syncOnly.add(section.toString());
            }
        });
        vram.setLog(true, DirtyMemoryClient.VGA);
        as.stqLe(0x100000 + 7 * PAGE, 1, ATTRS);
        log.clear();

        vram.clearDirtyBitmap(6 * PAGE, 4 * PAGE);          // vram pages 6 to 9
        // Listeners in global priority order (M -1, L 0, X 5), each with its own space's sections in address order:
        // the direct mapping cut to pages 6-9, the alias (vram pages 8-15) cut to pages 8-9.
        assertEquals(List.of(
                "M log_clear 0000000000106000-0000000000109fff vram @6000",
                "M log_clear 0000000000200000-0000000000201fff vram @8000",
                "L log_clear 0000000000106000-0000000000109fff vram @6000",
                "L log_clear 0000000000200000-0000000000201fff vram @8000",
                "X log_clear 0000000040006000-0000000040009fff vram @6000"), log);
        assertEquals(List.of(), syncOnly, "a listener without logClear is passed over");
        assertTrue(vram.getDirty(7 * PAGE, PAGE, DirtyMemoryClient.VGA), "guestmem's own bits are left alone");
        log.clear();

        vram.clearDirtyBitmap(12 * PAGE, 4 * PAGE);         // vram pages 12 to 15, the end of both mappings
        assertEquals(List.of(
                "M log_clear 000000000010c000-000000000010ffff vram @c000",
                "M log_clear 0000000000204000-0000000000207fff vram @c000",
                "L log_clear 000000000010c000-000000000010ffff vram @c000",
                "L log_clear 0000000000204000-0000000000207fff vram @c000",
                "X log_clear 000000004000c000-000000004000ffff vram @c000"), log);
        log.clear();

        vram.clearDirtyBitmap(2 * PAGE, 0);
        ram.clearDirtyBitmap(0, 16 * PAGE);
        assertEquals(List.of(), log, "an empty range, and a region that nobody logs, are cleared for nobody");
    }

    @Test
    void clearDirtyBitmapRefusesARangeOutsideTheRegion() {
        IllegalArgumentException past = assertThrows(IllegalArgumentException.class,
                () -> vram.clearDirtyBitmap(15 * PAGE, 2 * PAGE));
        assertEquals("region=vram start=0xf000 len=0x2000 size=0x10000: clearDirtyBitmap outside the region",
                past.getMessage());
        assertThrows(IllegalArgumentException.class, () -> vram.clearDirtyBitmap(-PAGE, 2 * PAGE), "wraps around");
        assertThrows(IllegalArgumentException.class, () -> as.root().clearDirtyBitmap(-1L, 2), "past 2^64");
        assertDoesNotThrow(() -> vram.clearDirtyBitmap(16 * PAGE, 0));
        assertDoesNotThrow(() -> as.root().clearDirtyBitmap(-1L, 1));
        assertEquals(List.of(), log);
    }

    @Test
    void resetSnapshotAndResizeClearWhereQemuDoes() {
        vram.setLog(true, DirtyMemoryClient.VGA);
        log.clear();

        vram.resetDirty(5 * PAGE + 1, 10, DirtyMemoryClient.VGA);      // widened to page 5
        vram.resetDirty(PAGE - 1, 2, DirtyMemoryClient.VGA);           // straddles pages 0 and 1
        vram.resetDirty(3 * PAGE, 0, DirtyMemoryClient.VGA);           // nothing
        assertEquals(List.of(
                "L log_clear 0000000000105000-0000000000105fff vram @5000",
                "L log_clear 0000000000100000-0000000000101fff vram @0"), changes());

        vram.snapshotAndClearDirty(0x100, 0x2000, DirtyMemoryClient.VGA);
        assertEquals(List.of(
                "L log_sync 0000000000100000-000000000010ffff vram @0",
                "L log_clear 0000000000100100-00000000001020ff vram @100",
                "L log_global_after_sync"), changes(), "the snapshot's range as asked, not widened to words");

        MemoryRegion grow = m.resizeableRam("grow", 4 * PAGE, 16 * PAGE, null);
        as.root().addSubregion(0x400000, grow);
        grow.setLog(true, DirtyMemoryClient.VGA);
        log.clear();
        grow.ramResize(8 * PAGE);
        // The old used range is cleared once per client, in the view from before the resize; then the commit.
        assertEquals(List.of(
                "L log_clear 0000000000400000-0000000000403fff grow @0",
                "L log_clear 0000000000400000-0000000000403fff grow @0",
                "L log_clear 0000000000400000-0000000000403fff grow @0",
                "L begin",
                "L del 0000000000400000-0000000000403fff grow @0",
                "L add 0000000000400000-0000000000407fff grow @0",
                "L commit"), changes());
    }

    @Test
    void withoutALogClearListenerClearingTakesNoLock() throws Exception {
        as.unregisterListener(listener);
        as.registerListener(new MemoryListener() {   // syncs, but does not clear
            @Override
            public void logSync(MemoryRegionSection section) {
            }
        });
        vram.setLog(true, DirtyMemoryClient.VGA);
        CountDownLatch locked = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread writer = Thread.ofPlatform().start(() -> {
            m.begin();                                  // holds the topology lock until released
            try {
                locked.countDown();
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                m.commit();
            }
        });
        locked.await();
        try {
            // Would wait for the writer if clearing walked the listeners' views under the lock.
            CompletableFuture.runAsync(() -> {
                vram.clearDirtyBitmap(0, 16 * PAGE);
                vram.resetDirty(0, 16 * PAGE, DirtyMemoryClient.VGA);
            }).get(30, TimeUnit.SECONDS);
        } finally {
            release.countDown();
            writer.join();
        }
    }

    @Test
    void flushRomDeviceMarksWhatTheDeviceModelWroteForEveryLoggingClient() {
        MemoryRegion flash = m.romDevice("flash", 4 * PAGE, MemoryRegionOps.UNASSIGNED);
        as.root().addSubregion(0x300000, flash);
        for (DirtyMemoryClient c : DirtyMemoryClient.values()) {
            flash.resetDirty(0, 4 * PAGE, c);
        }
        // The device model programs bytes straight into the ROM's memory, then flushes them.
        flash.ramSegment().set(ValueLayout.JAVA_BYTE, PAGE + 5, (byte) 0x5a);
        flash.flushRomDevice(PAGE + 5, 1);
        for (DirtyMemoryClient c : DirtyMemoryClient.values()) {
            assertEquals(List.of(), dirtyPages(flash, c), "nobody logs " + c);
        }

        flash.setLog(true, DirtyMemoryClient.VGA);
        m.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        flash.flushRomDevice(PAGE + 5, 2 * PAGE);              // pages 1, 2 and 3
        flash.flushRomDevice(PAGE, 0);                          // nothing
        assertEquals(List.of(1L, 2L, 3L), dirtyPages(flash, DirtyMemoryClient.VGA));
        assertEquals(List.of(1L, 2L, 3L), dirtyPages(flash, DirtyMemoryClient.MIGRATION));
        assertEquals(List.of(), dirtyPages(flash, DirtyMemoryClient.CODE), "CODE does not log the flash");
        assertEquals(0x5a, as.ldub(0x300000 + PAGE + 5, ATTRS, null), "the guest reads what was written");
        m.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
    }

    @Test
    void flushRomDeviceRefusesOtherRegionsAndRangesOutsideTheRom() {
        MemoryRegion flash = m.romDevice("flash", 4 * PAGE, MemoryRegionOps.UNASSIGNED);
        IllegalArgumentException notRom = assertThrows(IllegalArgumentException.class,
                () -> ram.flushRomDevice(0, PAGE));
        assertEquals("region=ram kind=ram romd=true: flushRomDevice needs a rom-device region in romd mode",
                notRom.getMessage());
        flash.setRomd(false);
        IllegalArgumentException mmio = assertThrows(IllegalArgumentException.class,
                () -> flash.flushRomDevice(0, PAGE));
        assertEquals("region=flash kind=rom-device romd=false: flushRomDevice needs a rom-device region in romd mode",
                mmio.getMessage());
        flash.setRomd(true);
        IllegalArgumentException past = assertThrows(IllegalArgumentException.class,
                () -> flash.flushRomDevice(3 * PAGE, 2 * PAGE));
        assertEquals("region=flash offset=0x3000 len=0x2000 ramLength=0x4000: flushRomDevice outside the region's RAM",
                past.getMessage());
        assertDoesNotThrow(() -> flash.flushRomDevice(4 * PAGE, 0));
    }
}
