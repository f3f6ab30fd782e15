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
 * Dirty logging from regions to bitmaps, as QEMU does it for a client such as VGA: {@code setLog} is counted and
 * shows in the flat ranges' dirty masks (listeners hear {@code logStart}/{@code logStop}); writes through the access
 * path mark exactly the pages they touch in the bitmap of every client that logs the range, and nothing while nobody
 * logs; a new block starts dirty for every client (QEMU's {@code ram_block_add}).
 */
class DirtyLoggingTest {
    private static final long PAGE = 4096;
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    private MemorySystem m;
    private MemoryRegion vram;
    private MemoryRegion ram;
    private AddressSpace as;
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
        as.registerListener(new RecordingListener("L", 0, log));
        // new blocks are dirty for every client; start from clean bitmaps
        for (DirtyMemoryClient c : DirtyMemoryClient.values()) {
            vram.resetDirty(0, 16 * PAGE, c);
            ram.resetDirty(0, 16 * PAGE, c);
        }
        log.clear();
    }

    private List<Long> dirtyPages(MemoryRegion r, DirtyMemoryClient c) {
        List<Long> pages = new ArrayList<>();
        for (long p = 0; p < 16; p++) {
            if (r.getDirty(p * PAGE, PAGE, c)) {
                pages.add(p);
            }
        }
        return pages;
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
}
