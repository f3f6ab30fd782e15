package dev.guestmem.bench.peers;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pattern is what its javadoc says: regions of whole pages covering 64 MiB with a hole after each, addresses
 * inside them, spread over every region, and SplitMix64 exactly (the Rust harness implements the same generator).
 */
class PeersPatternTest {

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 100, 1000, 16384})
    void regionsAreWholePagesCoveringTheRamWithAHoleAfterEach(int regions) {
        PeersPattern p = new PeersPattern(regions);
        long total = 0;
        for (int r = 0; r < regions; r++) {
            long size = p.regionSize(r);
            assertTrue(size > 0 && size % PeersPattern.PAGE_SIZE == 0, "r=" + r + " size=" + size);
            assertEquals(p.regionOffset(r), total, "r=" + r);
            assertEquals(PeersPattern.RAM_BASE + total + (long) r * PeersPattern.PAGE_SIZE, p.regionBase(r));
            if (r > 0) {
                assertEquals(p.regionBase(r - 1) + p.regionSize(r - 1) + PeersPattern.PAGE_SIZE, p.regionBase(r),
                        "one unmapped page between r-1 and r=" + r);
                assertTrue(p.regionSize(r) <= p.regionSize(r - 1), "larger regions come first");
            }
            assertEquals(r, p.regionOf(total));
            assertEquals(r, p.regionOf(total + size - 1));
            assertEquals(p.regionBase(r), p.guestAddress(total));
            total += size;
        }
        assertEquals(PeersPattern.RAM_SIZE, total);
    }

    @ParameterizedTest
    @ValueSource(ints = {100, 1000})
    void accessesAndCopiesSpreadOverEveryRegion(int regions) {
        PeersPattern p = new PeersPattern(regions);
        int[] words = countPerRegion(p, PeersPattern.wordOffsets(PeersPattern.SEED), 8);
        int[] pages = countPerRegion(p, PeersPattern.pageOffsets(PeersPattern.SEED), PeersPattern.PAGE_SIZE);
        for (int r = 0; r < regions; r++) {
            double share = (double) p.regionSize(r) / PeersPattern.RAM_SIZE;
            // Binomial counts: expected 10,486 / 1,049 words and 655 / 66 pages; half of that is many deviations away.
            assertTrue(words[r] > share * PeersPattern.ACCESSES / 2, "r=" + r + " words=" + words[r]);
            assertTrue(pages[r] > share * PeersPattern.COPIES / 2, "r=" + r + " pages=" + pages[r]);
        }
    }

    /** Counts the offsets per region, checking each access lies inside its region in guest-physical terms. */
    private static int[] countPerRegion(PeersPattern p, long[] offsets, int size) {
        int[] count = new int[p.regions()];
        for (long off : offsets) {
            assertEquals(0, off % size, "aligned: offset=" + off);
            int r = p.regionOf(off);
            long addr = p.guestAddress(off);
            assertTrue(addr >= p.regionBase(r) && addr + size <= p.regionBase(r) + p.regionSize(r),
                    "offset=" + off + " addr=0x" + Long.toHexString(addr) + " r=" + r);
            count[r]++;
        }
        return count;
    }

    @Test
    void theGeneratorIsSplitMix64AsTheJdkImplementsIt() {
        for (long seed : new long[] {0, 42, -1, 0x1234_5678_9abc_def0L}) {
            PeersPattern.SplitMix64 ours = new PeersPattern.SplitMix64(seed);
            // A new SplittableRandom(seed) walks the same gamma with the same finalizer (its mix64).
            SplittableRandom jdk = new SplittableRandom(seed);
            for (int i = 0; i < 1000; i++) {
                assertEquals(jdk.nextLong(), ours.next(), "seed=" + seed + " i=" + i);
            }
        }
        long[] a = PeersPattern.wordOffsets(7);
        long[] b = PeersPattern.wordOffsets(7);
        assertEquals(a.length, PeersPattern.ACCESSES);
        assertTrue(java.util.Arrays.equals(a, b), "the same seed gives the same addresses");
    }

    @Test
    void aRegionCountOutsideThePagesIsRefusedWithItsValue() {
        assertEquals("regions=0: expected 1 to 16384",
                assertThrows(IllegalArgumentException.class, () -> new PeersPattern(0)).getMessage());
        assertEquals("regions=16385: expected 1 to 16384",
                assertThrows(IllegalArgumentException.class, () -> new PeersPattern(16385)).getMessage());
    }
}
