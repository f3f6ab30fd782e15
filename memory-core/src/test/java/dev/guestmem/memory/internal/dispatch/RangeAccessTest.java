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
            if ((expected & RangeAccess.READ) != 0 && DirectAccess.rangeWritesDirect(fr) && fr.dirtyLogMask() == 0) {
                expected |= RangeAccess.TLB_PLAIN; // every region here is in native memory
            }
            if ((expected & RangeAccess.READ) != 0 && DirectAccess.rangeWritesDirect(fr)
                    && fr.dirtyLogMask() == DirtyMemoryClient.CODE.mask()) {
                expected |= RangeAccess.TLB_CODE;
            }
            assertEquals(expected, a.flags, fr.toString());
            assertEquals(fr.offsetInRegion() + 8, fr.start() + 8 + a.delta, fr.toString());
            if (a.ram != null) {
                assertEquals(a.ram.address() + fr.offsetInRegion() + 8, fr.start() + 8 + a.hostAddend, fr.toString());
            }
        }
        assertEquals(RangeAccess.READ | RangeAccess.WRITE | RangeAccess.TLB_PLAIN, d.rangeAccess(8).flags);
        assertEquals(RangeAccess.READ, d.rangeAccess(PAGE).flags);
        assertEquals(0, d.rangeAccess(2 * PAGE).flags);
        assertEquals(RangeAccess.READ, d.rangeAccess(3 * PAGE).flags);
        assertEquals(RangeAccess.READ, d.rangeAccess(4 * PAGE).flags);
        assertSame(RangeAccess.NONE, d.rangeAccess(5 * PAGE), "a hole");
    }

    @Test
    void onlyRamThatNoClientLogsAndThatIsWritableHereIsPlainForATlb() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 2 * PAGE);
        MemoryRegion alias = system.alias("ro-alias", ram, 0, PAGE);
        system.transaction(() -> {
            root.addSubregion(0, ram);
            root.addSubregion(4 * PAGE, alias);
            alias.setReadonly(true);
        });
        AddressSpace as = system.addressSpace("as", root);
        assertEquals(RangeAccess.TLB_PLAIN, AddressSpaceDispatch.of(as).rangeAccess(8).flags & RangeAccess.TLB_PLAIN);
        RangeAccess readOnly = AddressSpaceDispatch.of(as).rangeAccess(4 * PAGE + 8);
        assertEquals(RangeAccess.READ, readOnly.flags & (RangeAccess.READ | RangeAccess.TLB_PLAIN),
                "RAM read-only through this mapping: a TLB may cache its loads, its stores are dropped");
        for (DirtyMemoryClient client : DirtyMemoryClient.values()) {
            ram.setLog(true, client);
            RangeAccess logged = AddressSpaceDispatch.of(as).rangeAccess(8);
            assertEquals(RangeAccess.READ | RangeAccess.WRITE
                            | (client == DirtyMemoryClient.CODE ? RangeAccess.TLB_CODE : 0), logged.flags,
                    client + " logs the range");
            assertEquals(RangeAccess.READ, AddressSpaceDispatch.of(as).rangeAccess(4 * PAGE + 8).flags
                    & (RangeAccess.READ | RangeAccess.TLB_PLAIN | RangeAccess.TLB_CODE), client + " logs the RAM behind"
                    + " the read-only alias: its loads are cached as before, with neither TLB bit");
            assertEquals(ram.ramSegment().address() + 8, 8 + logged.hostAddend, client.toString());
            ram.setLog(false, client);
        }
        assertEquals(RangeAccess.TLB_PLAIN, AddressSpaceDispatch.of(as).rangeAccess(8).flags & RangeAccess.TLB_PLAIN,
                "plain again once nobody logs");
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
            checkedLookup(d, random.nextLong(1300 * PAGE) & ~7L);
        }
    }

    @Test
    void theCacheGrowsWithASpreadWorkingSetAndNotWithOneThatFits() {
        // 100 ranges of 160 pages with a page between them: 16,100 pages to cover, a few short of 16,384 slots.
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        long rangePages = 160;
        system.transaction(() -> {
            for (int i = 0; i < 100; i++) {
                root.addSubregion(i * (rangePages + 1) * PAGE, system.ram("r" + i, rangePages * PAGE));
            }
        });
        AddressSpace as = system.addressSpace("as", root);
        long span = 100 * (rangePages + 1) * PAGE;

        AddressSpaceDispatch fits = AddressSpaceDispatch.of(as);
        SplittableRandom random = new SplittableRandom(11);
        // 1,000 addresses in the first 400 pages, which fall in distinct slots of the first cache: once those pages
        // are in, no walk. (Pages that share a slot would keep walking, and so grow the cache, as a spread set does.)
        long[] few = random.longs(1000, 0, 400 * PAGE).map(a -> a & ~7L).toArray();
        for (int pass = 0; pass < 50; pass++) {
            for (long addr : few) {
                checkedLookup(fits, addr);
            }
        }
        assertEquals(AddressSpaceDispatch.RANGE_CACHE_MIN, fits.rangeCacheSlots(), "a working set that fits");

        // Another address space over the same root has a dispatch, and a cache, of its own.
        AddressSpaceDispatch spread = AddressSpaceDispatch.of(system.addressSpace("spread", root));
        for (int k = 0; k < 400_000; k++) {
            checkedLookup(spread, random.nextLong(span) & ~7L);
        }
        assertEquals(16384, spread.rangeCacheSlots(), "the smallest power of two over 16,100 pages");
        int walksBefore = spread.rangeWalks();
        for (int k = 0; k < 100_000; k++) {
            checkedLookup(spread, random.nextLong(span) & ~7L);
        }
        assertEquals(walksBefore, spread.rangeWalks(), "every page of the RAM has its own slot: no walk once grown");

        // Beyond the cap: 4,096 aliases of one 256 KiB RAM region side by side, 1 GiB of distinct ranges of 64 pages
        // visited at random: the cache stops at its largest and still answers right. (One range of 1 GiB would
        // not grow it: any slot holding that range covers every address.)
        MemorySystem big = new MemorySystem();
        MemoryRegion bigRoot = big.container("root", U64.SIZE_2_64);
        MemoryRegion block = big.ram("block", 64 * PAGE);
        big.transaction(() -> {
            for (int i = 0; i < 4096; i++) {
                bigRoot.addSubregion(i * 64 * PAGE, big.alias("a" + i, block, 0, 64 * PAGE));
            }
        });
        AddressSpaceDispatch capped = AddressSpaceDispatch.of(big.addressSpace("big", bigRoot));
        for (int k = 0; k < 1_000_000; k++) {
            checkedLookup(capped, random.nextLong(4096 * 64 * PAGE) & ~7L);
        }
        assertEquals(AddressSpaceDispatch.RANGE_CACHE_MAX, capped.rangeCacheSlots());
    }

    /** {@link AddressSpaceDispatch#rangeAccess} of {@code addr}, checked against the tree. */
    private static void checkedLookup(AddressSpaceDispatch d, long addr) {
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
