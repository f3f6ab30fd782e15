package dev.guestmem.memory.internal.dispatch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.access.DirectAccess;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The access path's per-range records ({@link RangeAccess}) and their most-recently-used hint: each kind of range
 * gets the direct cases the rules of {@link DirectAccess} give it; a flag changed after a hit was cached takes
 * effect with the next view; alternating ranges and accesses running past a range's end still reach what the
 * general path would.
 */
class RangeAccessTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final long PAGE = 0x1000;

    @Test
    void eachKindOfRangeGetsTheDirectCasesOfTheRules() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", PAGE);
        MemoryRegion rom = system.rom("rom", PAGE);
        MemoryRegion io = system.io("io", PAGE, MemoryRegionOps.builder().read((a, s) -> 0).build());
        MemoryRegion romd = system.romDevice("romd", PAGE, MemoryRegionOps.builder().read((a, s) -> 0).build());
        MemoryRegion readonlyRam = system.ram("ro", PAGE);
        system.transaction(() -> {
            root.addSubregion(0, ram);
            root.addSubregion(PAGE, rom);
            root.addSubregion(2 * PAGE, io);
            root.addSubregion(3 * PAGE, romd);
            root.addSubregion(4 * PAGE, readonlyRam);
            readonlyRam.setReadonly(true);
        });
        AddressSpace as = system.addressSpace("as", root);
        AddressSpaceDispatch d = AddressSpaceDispatch.of(as);
        for (FlatRange fr : as.flatView().ranges()) {
            RangeAccess a = d.rangeAccess(fr.start());
            assertSame(fr, a.range, fr.toString());
            int expected = (DirectAccess.readsDirect(fr) ? RangeAccess.READ : 0)
                    | (DirectAccess.regionWritesDirect(fr) ? RangeAccess.WRITE : 0);
            assertEquals(expected, a.flags, fr.toString());
            assertEquals(fr.offsetInRegion() + 8, fr.start() + 8 + a.delta, fr.toString());
        }
        assertEquals(RangeAccess.READ | RangeAccess.WRITE, d.rangeAccess(8).flags);
        assertEquals(RangeAccess.READ, d.rangeAccess(PAGE).flags);
        assertEquals(0, d.rangeAccess(2 * PAGE).flags);
        assertEquals(RangeAccess.READ, d.rangeAccess(3 * PAGE).flags);
        assertEquals(RangeAccess.READ, d.rangeAccess(4 * PAGE).flags);
        assertSame(RangeAccess.NONE, d.rangeAccess(5 * PAGE), "a hole");
    }

    @Test
    void aFlagChangedAfterAHitTakesEffectWithTheNextView() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", PAGE);
        system.transaction(() -> root.addSubregion(0, ram));
        AddressSpace as = system.addressSpace("as", root);
        assertEquals(MemTxResult.OK, as.stqLe(8, 0x1111, U)); // the hint now holds ram's record
        ram.setReadonly(true);
        assertEquals(MemTxResult.DECODE_ERROR, as.stqLe(8, 0x2222, U), "a store to ROM-like RAM is dropped");
        assertEquals(0x1111, as.ldqLe(8, U, null));
        ram.setReadonly(false);
        assertEquals(MemTxResult.OK, as.stqLe(8, 0x3333, U));
        assertEquals(0x3333, as.ldqLe(8, U, null));

        system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION); // logging starts: the next store marks
        system.dirtyBitmap(DirtyMemoryClient.MIGRATION).snapshotAndClear(0, PAGE);
        assertEquals(MemTxResult.OK, as.stqLe(PAGE - 8, 0x4444, U));
        assertEquals(true, ram.getDirty(0, PAGE, DirtyMemoryClient.MIGRATION));
    }

    @Test
    void alternatingRangesAndAccessesPastARangesEndReadWhatTheGeneralPathReads() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion a = system.ram("a", PAGE);
        MemoryRegion b = system.ram("b", PAGE);
        system.transaction(() -> {
            root.addSubregion(0, a);
            root.addSubregion(PAGE, b);
        });
        AddressSpace as = system.addressSpace("as", root);
        a.ramSegment().set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 0, 0xaaL);
        b.ramSegment().set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 0, 0xbbL);
        for (int i = 0; i < 100; i++) {
            assertEquals(0xaaL, as.ldqLe(0, U, null));
            assertEquals(0xbbL, as.ldqLe(PAGE, U, null));
        }
        // An access whose last bytes lie in the next range is one MMIO access to the first range's region, which
        // RAM answers as unassigned memory (QEMU's rule for ld/st).
        int[] result = new int[1];
        assertEquals(0, as.ldqLe(PAGE - 4, U, result));
        assertEquals(MemTxResult.DECODE_ERROR, result[0]);
        assertEquals(MemTxResult.DECODE_ERROR, as.stqLe(PAGE - 4, -1L, U));
        assertEquals(0xbbL, as.ldqLe(PAGE, U, null), "nothing landed");
        // A hole reads 0 with DECODE_ERROR, whatever the hint holds.
        assertEquals(0, as.ldqLe(2 * PAGE, U, result));
        assertEquals(MemTxResult.DECODE_ERROR, result[0]);
    }

    @Test
    void theCacheBehindTheHintGivesWhatTheTreeGivesForEveryAddress() {
        // 300 RAM ranges of 3 pages, a page apart, plus sub-page ranges and holes: more ranges than fit the cache's
        // slots without colliding, visited at random, twice, so that hits, colliding slots and holes all occur.
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        system.transaction(() -> {
            for (int i = 0; i < 300; i++) {
                root.addSubregion(i * 4 * PAGE, system.ram("r" + i, 3 * PAGE));
            }
            root.addSubregion(3 * PAGE + 0x800, system.ram("half", 0x400));
        });
        AddressSpace as = system.addressSpace("as", root);
        AddressSpaceDispatch d = AddressSpaceDispatch.of(as);
        SplittableRandom random = new SplittableRandom(5);
        for (int k = 0; k < 200_000; k++) {
            long addr = random.nextLong(1300 * PAGE) & ~7L;
            RangeAccess a = d.rangeAccess(addr);
            FlatRange expected = d.flatRange(d.sectionIndex(addr));
            if (expected == null) {
                assertSame(RangeAccess.NONE, a, "addr=0x" + Long.toHexString(addr));
            } else {
                assertSame(expected, a.range, "addr=0x" + Long.toHexString(addr));
                assertEquals(true, a.covers(addr));
            }
        }
    }
}
