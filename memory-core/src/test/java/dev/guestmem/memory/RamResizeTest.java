package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.dirty.DirtyHook;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** QEMU's memory_region_ram_resize: used length, region size, listeners, callback, dirty hook and errors. */
class RamResizeTest {
    private final MemorySystem sys = new MemorySystem();
    private final List<String> log = new ArrayList<>();
    private final MemoryRegion root = sys.container("system", U64.SIZE_2_64);
    private MemoryRegion rs;

    private MemoryRegion mapResizeable(long size, long max) {
        rs = sys.resizeableRam("fw", size, max, (block, newSize) -> {
            log.add("resized " + block.idstr() + " " + U64.hex(newSize) + " used=" + U64.hex(block.usedLength())
                    + " regionSize=" + U64.hex(rs.size()));
        });
        root.addSubregion(0x10000, rs);
        AddressSpace as = sys.addressSpace("memory", root);
        as.registerListener(new RecordingListener("L", 0, log));
        log.clear();
        return rs;
    }

    @Test
    void growingChangesTheUsedLengthThenListenersThenTheCallback() {
        mapResizeable(0x1800, 0x8000);
        RamBlock b = rs.ramBlock();
        assertEquals(0x2000, b.usedLength(), "rounded up to the host page size");
        assertEquals(0x8000, b.maxLength());
        assertEquals(0x1800, rs.size());

        rs.ramResize(0x5000);
        assertEquals(0x5000, b.usedLength());
        assertEquals(0x5000, rs.size());
        assertEquals(List.of(
                "L begin",
                "L del 0000000000010000-00000000000117ff fw @0",
                "L add 0000000000010000-0000000000014fff fw @0",
                "L commit",
                "resized fw 0x5000 used=0x5000 regionSize=0x5000"), log);
    }

    @Test
    void aSizeInsideTheUsedPageOnlyResizesTheRegion() {
        mapResizeable(0x1800, 0x8000);
        rs.ramResize(0x1c00);
        assertEquals(0x2000, rs.ramBlock().usedLength());
        assertEquals(0x1c00, rs.size());
        assertEquals("resized fw 0x1c00 used=0x2000 regionSize=0x1c00", log.get(log.size() - 1));
        log.clear();
        rs.ramResize(0x1c00);
        assertEquals(List.of(), log, "no change, no callback");
    }

    @Test
    void shrinkingWorksToo() {
        mapResizeable(0x8000, 0x8000);
        rs.ramResize(0x1000);
        assertEquals(0x1000, rs.ramBlock().usedLength());
        assertEquals(0x1000, rs.size());
        assertSame(rs.ramBlock(), sys.ramList().blockByRamAddr(rs.ramBlock().offset() + 0x7fff),
                "the block keeps its whole ram_addr range");
    }

    @Test
    void growingPastTheMaxLengthIsRefusedWithTheValues() {
        mapResizeable(0x1000, 0x3000);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> rs.ramResize(0x3001));
        assertTrue(e.getMessage().contains("newSize=0x4000") && e.getMessage().contains("maxLength=0x3000")
                && e.getMessage().contains("block=fw"), e.getMessage());
        assertEquals(0x1000, rs.ramBlock().usedLength());
        assertEquals(0x1000, rs.size());
        assertEquals(List.of(), log);
        assertThrows(IllegalArgumentException.class, () -> rs.ramResize(0));
    }

    @Test
    void onlyResizeableBlocksChangeTheirUsedLength() {
        MemoryRegion ram = sys.ram("ram", 0x2000);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ram.ramResize(0x1000));
        assertTrue(e.getMessage().contains("not resizeable") && e.getMessage().contains("usedLength=0x2000"),
                e.getMessage());
        ram.ramResize(0x2000); // the same size is no change
        MemoryRegion io = sys.io("io", 0x1000, MemoryRegionOps.builder().build());
        assertThrows(IllegalArgumentException.class, () -> io.ramResize(0x1000));
    }

    @Test
    void theFactoryChecksItsSizes() {
        assertThrows(IllegalArgumentException.class, () -> sys.resizeableRam("a", 0x2000, 0x1000, null));
        assertThrows(IllegalArgumentException.class, () -> sys.resizeableRam("b", 0, 0x1000, null));
        MemoryRegion c = sys.resizeableRam("c", 0x10, 0x1001, null);
        assertEquals(0x2000, c.ramBlock().maxLength(), "max length rounded up to the host page size");
        c.ramResize(0x2000); // no callback: nothing to call
        assertEquals(0x2000, c.size());
    }

    @Test
    void theDirtyHookHearsTheOldAndNewUsedLengths() {
        mapResizeable(0x1000, 0x8000);
        List<String> hook = new ArrayList<>();
        sys.ramList().setDirtyHook(new DirtyHook() {
            @Override
            public void blockAdded(RamBlock block, long lastRamPage) {
                hook.add("add " + block.idstr() + " " + U64.hex(block.offset()) + " pages=" + lastRamPage);
            }

            @Override
            public void usedLengthChanged(RamBlock block, long oldUsedLength, long newUsedLength) {
                hook.add("used " + block.idstr() + " " + U64.hex(oldUsedLength) + "->" + U64.hex(newUsedLength));
            }
        });
        rs.ramResize(0x3000);
        rs.ramResize(0x2800); // same used page count after rounding: no used-length change
        sys.ram("more", 0x1000);
        long moreOffset = sys.ramList().blockByName("more").offset();
        assertEquals(List.of("used fw 0x1000->0x3000",
                "add more " + U64.hex(moreOffset) + " pages=" + ((moreOffset + 0x1000) >>> 12)), hook);
    }

    @Test
    void insideATransactionTheCallbackRunsBeforeTheCommit() {
        mapResizeable(0x1000, 0x8000);
        sys.transaction(() -> {
            rs.ramResize(0x2000);
            log.add("still in the transaction");
        });
        assertEquals(List.of(
                "resized fw 0x2000 used=0x2000 regionSize=0x2000",
                "still in the transaction",
                "L begin",
                "L del 0000000000010000-0000000000010fff fw @0",
                "L add 0000000000010000-0000000000011fff fw @0",
                "L commit"), log);
    }
}
