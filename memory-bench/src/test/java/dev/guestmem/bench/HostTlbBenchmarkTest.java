package dev.guestmem.bench;

import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.function.ToIntFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * {@link HostTlbBenchmark} compares like with like: every load row reads the same words as the raw baseline at the
 * same offsets, and every store row leaves the guest's RAM holding what the raw baseline's stores leave in its own
 * segment, each store row starting from zeroed RAM, so that no row can measure a shortcut.
 */
class HostTlbBenchmarkTest {
    private static final long SIZE = 1 << 20;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;

    private final HostTlbBenchmark bench = new HostTlbBenchmark();
    private HostTlbBenchmark.WorkingSet set;
    private HostTlbBenchmark.Guest guest;

    @BeforeEach
    void setUp() {
        set = new HostTlbBenchmark.WorkingSet();
        set.workingSet = SIZE;
        set.setup();
        guest = new HostTlbBenchmark.Guest();
        guest.tlbEntries = 1024;
        guest.setup(set);
    }

    @AfterEach
    void tearDown() {
        guest.tearDown();
    }

    @Test
    void everyLoadRowReadsTheRawBaselinesWords() {
        long raw = bench.rawLoad(set);
        assertNotEquals(0, raw);
        assertLoads(raw, "limitLoad", bench::limitLoad);
        assertLoads(raw, "limitCalledLoad", bench::limitCalledLoad);
        assertLoads(raw, "limitMissLoad", bench::limitMissLoad);
        assertLoads(raw, "limitMissLoadCall", bench::limitMissLoadCall);
        assertLoads(raw, "windowLoad", bench::windowLoad);
        assertLoads(raw, "hostTlbLoad", bench::hostTlbLoad);
        assertLoads(raw, "hostTlbResizingLoad", bench::hostTlbResizingLoad);
        assertLoads(raw, "hostTlbMissLoad", bench::hostTlbMissLoad);
        assertLoads(raw, "hostTlbMissLoadCode", bench::hostTlbMissLoadCode);
        assertLoads(raw, "hostTlbMissLoadCall", bench::hostTlbMissLoadCall);
        assertLoads(raw, "hostTlbMissLoadCodeCall", bench::hostTlbMissLoadCodeCall);
        assertLoads(raw, "addressSpaceLoadCall", bench::addressSpaceLoadCall);
        assertLoads(raw, "softTlbLoad", bench::softTlbLoad);
        assertLoads(raw, "addressSpaceLoad", bench::addressSpaceLoad);
    }

    @Test
    void everyStoreRowLeavesWhatTheRawBaselineLeaves() {
        set.raw.fill((byte) 0); // as each row's RAM starts
        bench.rawStore(set);
        assertStores("limitStore", ok(bench::limitStore));
        assertStores("limitCalledStore", ok(bench::limitCalledStore));
        assertStores("limitMissStore", ok(bench::limitMissStore));
        assertStores("limitMissStoreCall", ok(bench::limitMissStoreCall));
        assertStores("limitMissStoreWide", ok(bench::limitMissStoreWide));
        assertStores("hostTlbStore", g -> bench.hostTlbStore(set, g));
        assertStores("hostTlbResizingStore", g -> bench.hostTlbResizingStore(set, g));
        assertStores("hostTlbMissStore", g -> bench.hostTlbMissStore(set, g));
        assertStores("hostTlbMissStoreCall", g -> bench.hostTlbMissStoreCall(set, g));
        assertStores("addressSpaceStoreCall", g -> bench.addressSpaceStoreCall(set, g));
        assertStores("softTlbStore", g -> bench.softTlbStore(set, g));
        assertStores("addressSpaceStore", g -> bench.addressSpaceStore(set, g));

        MemorySegment window = HostTlbBenchmark.WINDOW.asSlice(0, SIZE);
        window.fill((byte) 0);
        bench.windowStore(set, guest);
        assertEquals(-1, window.mismatch(set.raw), "windowStore");
    }

    @Test
    void theAcquireRowsReadAndWriteWhatTheRawRowsDo() {
        assertEquals(bench.rawLoad(set), bench.rawAcquireLoad(set));
        set.raw.fill((byte) 0);
        bench.rawStore(set);
        MemorySegment expected = Arena.ofAuto().allocate(SIZE).copyFrom(set.raw);
        set.raw.fill((byte) 0);
        bench.rawAcquireStore(set);
        assertEquals(-1, set.raw.mismatch(expected));
        assertNotEquals(-1, set.raw.mismatch(Arena.ofAuto().allocate(SIZE)), "the stores wrote something");
    }

    @Test
    void theCodeLoggedRowsStoreThroughTheirOwnRam() {
        bench.rawStore(set);
        HostTlb tlb = guest.codeOneEntry;
        assertEquals(MemTxResult.OK, bench.hostTlbMissStoreCode(set, guest));
        // The CODE-logged RAM is written by these rows alone: read the words stored back through the same TLB.
        for (long off : set.offsets) {
            assertEquals(set.raw.get(U64, off), tlb.ldqLe(SoftTlbBenchmark.RAM_BASE + off), "offset=" + off);
        }
        for (long off : set.offsets) {
            tlb.stqLe(SoftTlbBenchmark.RAM_BASE + off, -1);
        }
        assertEquals(MemTxResult.OK, bench.addressSpaceStoreCode(set, guest));
        for (long off : set.offsets) {
            assertEquals(set.raw.get(U64, off), guest.codeAddressSpace.ldqLe(SoftTlbBenchmark.RAM_BASE + off,
                    MemTxAttrs.UNSPECIFIED, null), "addressSpaceStoreCode offset=" + off);
        }
        // The rows with the access out of line (the same loops in a JVM told not to inline): each stores again.
        for (ToIntFunction<HostTlbBenchmark.Guest> row : List.<ToIntFunction<HostTlbBenchmark.Guest>>of(
                g -> bench.hostTlbMissStoreCodeCall(set, g), g -> bench.addressSpaceStoreCodeCall(set, g))) {
            for (long off : set.offsets) {
                tlb.stqLe(SoftTlbBenchmark.RAM_BASE + off, -1);
            }
            assertEquals(MemTxResult.OK, row.applyAsInt(guest));
            for (long off : set.offsets) {
                assertEquals(set.raw.get(U64, off), tlb.ldqLe(SoftTlbBenchmark.RAM_BASE + off), "offset=" + off);
            }
        }
    }

    private void assertLoads(long raw, String row, LoadRow load) {
        assertEquals(raw, load.run(set, guest), row);
    }

    /** Zeroes the guest's RAM through the address space, runs {@code row}, and compares the RAM with the raw one. */
    private void assertStores(String row, ToIntFunction<HostTlbBenchmark.Guest> store) {
        MemorySegment ram = Arena.ofAuto().allocate(SIZE);
        assertEquals(MemTxResult.OK, guest.addressSpace.write(SoftTlbBenchmark.RAM_BASE, MemTxAttrs.UNSPECIFIED, ram, 0,
                SIZE), row + ": zeroing");
        assertEquals(MemTxResult.OK, store.applyAsInt(guest), row);
        assertEquals(MemTxResult.OK, guest.addressSpace.read(SoftTlbBenchmark.RAM_BASE, MemTxAttrs.UNSPECIFIED, ram, 0,
                SIZE), row + ": reading back");
        assertEquals(-1, ram.mismatch(set.raw), row);
    }

    /** A store row of the hand-written TLBs, which have no result: OK once it ran. */
    private ToIntFunction<HostTlbBenchmark.Guest> ok(StoreRow row) {
        return g -> {
            row.run(set, g);
            return MemTxResult.OK;
        };
    }

    @FunctionalInterface
    private interface StoreRow {
        void run(HostTlbBenchmark.WorkingSet set, HostTlbBenchmark.Guest guest);
    }

    @FunctionalInterface
    private interface LoadRow {
        long run(HostTlbBenchmark.WorkingSet set, HostTlbBenchmark.Guest guest);
    }
}
