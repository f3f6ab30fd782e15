package dev.guestmem.bench.peers;

import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every row of {@link AccessPathBenchmark} reads the same words (the sum the pattern predicts for the working set),
 * the working set is 1 MiB spread over every region, and the stores land where the baseline's do.
 */
class AccessPathBenchmarkTest {
    private static final ValueLayout.OfLong LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest
    @ValueSource(ints = {1, 100})
    void everyRowReadsTheWorkingSetsWords(int regions) {
        AccessPathBenchmark.Spread s = new AccessPathBenchmark.Spread();
        s.regions = regions;
        s.pages = AccessPathBenchmark.WORKING_SET_PAGES;
        s.setup();
        try {
            long expected = 0;
            for (long off : s.spreadOffsets) {
                expected += PeersPattern.initialWord(off);
            }
            assertNotEquals(0, expected);
            AccessPathBenchmark bench = new AccessPathBenchmark();
            assertEquals(expected, bench.rawDense(s));
            assertEquals(expected, bench.rawSpread(s));
            assertEquals(expected, bench.segmentChoice(s));
            assertEquals(expected, bench.lookupAccess(s));
            assertEquals(expected, bench.hintSegment(s));
            assertEquals(expected, bench.hintSegmentAcquire(s));
            assertEquals(expected, bench.hintUnbounded(s));
            assertEquals(expected, bench.hintSliceAcquire(s));
            assertEquals(expected, bench.hintUnboundedAcquire(s));
            assertEquals(expected, bench.hintWalkAcquire(s));
            // The record row adds up the region offsets it would load from instead of the words.
            assertEquals(Arrays.stream(s.regionOffsets).sum(), bench.recordLoads(s));
            assertEquals(expected, bench.addressSpace(s));
            assertEquals(expected, bench.addressSpaceNoResult(s));
            // Every lookup finds a section of RAM (section 0 is the unassigned one).
            assertTrue(bench.lookup(s) >= PeersPattern.ACCESSES);

            // The last store to each word is the index of its last access, through the address space and raw alike.
            assertEquals(MemTxResult.OK, bench.addressSpaceStore(s));
            bench.rawDenseStore(s);
            for (int i = 0; i < PeersPattern.ACCESSES; i += 4099) {
                assertEquals(s.dense.get(LE, s.denseOffsets[i]), s.map.addressSpace().ldqLe(s.addrs[i],
                        dev.guestmem.memory.MemTxAttrs.UNSPECIFIED, null), "access " + i);
            }
        } finally {
            s.tearDown();
        }
    }

    @Test
    void theWorkingSetIsOneMebibyteSpreadOverTheRam() {
        long[] pages = AccessPathBenchmark.workingSetPages(AccessPathBenchmark.SEED, AccessPathBenchmark.WORKING_SET_PAGES);
        assertEquals(1 << 20, (long) pages.length * PeersPattern.PAGE_SIZE);
        assertEquals(pages.length, Arrays.stream(pages).distinct().count(), "distinct pages");
        PeersPattern pattern = new PeersPattern(100);
        long regionsHit = Arrays.stream(pages).mapToInt(pattern::regionOf).distinct().count();
        assertTrue(regionsHit > 90, "regions hit: " + regionsHit);
        assertTrue(Arrays.stream(pages).max().orElseThrow() > PeersPattern.RAM_SIZE / 2, "spread over the RAM");
    }
}
