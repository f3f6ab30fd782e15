package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.guestmem.memory.AsymmetricFence;
import org.junit.jupiter.api.Test;

/**
 * Which {@link AsymmetricFence} the dirty bitmaps use with memory-offheap present and native access enabled:
 * {@code membarrier}, unless {@code -Dguestmem.fence=fallback} (the pom's {@code fallback-fence} test run, which runs
 * this test and the dirty-memory stress tests again with it).
 */
class AsymmetricFenceTest {
    @Test
    void membarrierIsInstalledUnlessTheFallbackIsAskedFor() {
        if ("fallback".equals(System.getProperty("guestmem.fence"))) {
            assertSame(AsymmetricFence.fallback(), AsymmetricFence.installed());
        } else {
            assertEquals("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)", AsymmetricFence.installed().name());
        }
    }

    @Test
    void heavyReturnsFromAnyThreadAgainAndAgain() throws InterruptedException {
        AsymmetricFence fence = AsymmetricFence.installed();
        Thread[] threads = new Thread[3];
        int[] done = new int[threads.length];
        for (int t = 0; t < threads.length; t++) {
            int i = t;
            threads[t] = new Thread(() -> {
                for (int n = 0; n < 1000; n++) {
                    fence.heavy();
                    done[i]++;
                }
            });
            threads[t].start();
        }
        for (Thread t : threads) {
            t.join();
        }
        for (int d : done) {
            assertEquals(1000, d);
        }
    }
}
