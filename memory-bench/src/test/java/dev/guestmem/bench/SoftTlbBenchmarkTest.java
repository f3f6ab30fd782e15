package dev.guestmem.bench;

import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * The benchmark compares like with like: its map has the regions it claims, and the raw baseline, the TLB and the
 * address space read the same values at the same offsets and store the same bytes.
 */
class SoftTlbBenchmarkTest {

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 100, 1000})
    void threePathsReadAndWriteTheSameMemory(int regions) {
        SoftTlbBenchmark.WorkingSet set = new SoftTlbBenchmark.WorkingSet();
        set.workingSet = 1 << 20;
        set.setup();
        SoftTlbBenchmark.Guest guest = new SoftTlbBenchmark.Guest();
        guest.regions = regions;
        guest.tlbEntries = 1024;
        guest.setup(set);
        assertEquals(regions, guest.addressSpace.flatView().rangeCount());

        SoftTlbBenchmark bench = new SoftTlbBenchmark();
        long raw = bench.rawLoad(set);
        assertNotEquals(0, raw);
        assertEquals(raw, bench.rawPageLoad(set));
        assertEquals(raw, bench.tlbLoad(guest));
        assertEquals(raw, bench.addressSpaceLoad(guest));
        assertEquals(256, guest.tlb.missCount(), "the 1 MiB set fills each of its 256 pages once");

        bench.rawStore(set);
        assertEquals(MemTxResult.OK, bench.tlbStore(guest));
        long stored = bench.rawLoad(set);
        bench.rawPageStore(set);
        assertEquals(stored, bench.rawLoad(set));
        assertEquals(stored, bench.tlbLoad(guest));
        assertEquals(MemTxResult.OK, bench.addressSpaceStore(guest));
        assertEquals(stored, bench.addressSpaceLoad(guest));
        assertEquals(256, guest.tlb.missCount(), "stores hit pages the loads cached");
    }
}
