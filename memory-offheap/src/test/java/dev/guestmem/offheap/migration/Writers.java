package dev.guestmem.offheap.migration;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Threads that store 8 bytes at a time at random places of every region through the address space, as vCPUs do,
 * each store recorded (ram_addr page, clock before, clock after) up to {@code recorded} stores per thread.
 */
final class Writers {
    private final Machine m;
    private final AtomicLong clock;
    private final Thread[] threads;
    private final int recorded;
    /** When not null, the stores go to the first this many pages of the first region, a millisecond apart. */
    private final Integer hotPages;
    private final long[][] pages;
    private final long[][] starts;
    private final long[][] ends;
    private final int[] counts;
    private final AtomicLong writes = new AtomicLong();
    private volatile boolean stop;
    /** Whether stores are recorded (up to {@code recorded} per thread); see {@link #recordFromNowOn()}. */
    private volatile boolean recording = true;
    private volatile Throwable failure;

    Writers(Machine m, AtomicLong clock, int threads, int recorded, Integer hotPages) {
        this.m = m;
        this.clock = clock;
        this.threads = new Thread[threads];
        this.recorded = recorded;
        this.hotPages = hotPages;
        this.pages = new long[threads][recorded];
        this.starts = new long[threads][recorded];
        this.ends = new long[threads][recorded];
        this.counts = new int[threads];
        for (int t = 0; t < threads; t++) {
            int id = t;
            this.threads[t] = new Thread(() -> run(id), "vcpu-" + t);
            this.threads[t].setDaemon(true);
        }
    }

    void start() {
        for (Thread t : threads) {
            t.start();
        }
    }

    private void run(int id) {
        SplittableRandom rnd = new SplittableRandom(id);
        try {
            while (!stop) {
                int region;
                long off;
                if (hotPages != null) {
                    region = 0;
                    off = ((long) rnd.nextInt(hotPages) << PreCopyTest.PAGE_BITS) + 8L * rnd.nextInt(512);
                } else {
                    region = rnd.nextInt(m.regions.size());
                    off = rnd.nextLong(m.block(region).usedLength() >>> 3) << 3;
                }
                long s = clock.incrementAndGet();
                int r = m.as.stqLe(m.address(region, off), rnd.nextLong(), MemTxAttrs.UNSPECIFIED);
                long e = clock.incrementAndGet();
                if (r != MemTxResult.OK) {
                    throw new AssertionError("store result " + r);
                }
                int n = counts[id];
                if (n < recorded && recording) {
                    pages[id][n] = (m.block(region).offset() + off) >>> PreCopyTest.PAGE_BITS;
                    starts[id][n] = s;
                    ends[id][n] = e;
                    counts[id] = n + 1;
                }
                writes.incrementAndGet();
                if (hotPages != null) {
                    LockSupport.parkNanos(1_000_000);
                }
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    /**
     * Records no store until {@link #recordFromNowOn()}: the record has room for a fraction of a second of stores,
     * which should not go before the migration starts.
     */
    Writers recordLater() {
        recording = false;
        return this;
    }

    /** Records stores from now on. */
    void recordFromNowOn() {
        recording = true;
    }

    long writes() {
        return writes.get();
    }

    /**
     * Waits for two more stores per thread, in all (or until one failed, which fails the test): a thread's first may
     * have begun before the call, but at least one store per thread then began after it and ended before the return.
     */
    void awaitMoreWrites() {
        long target = writes.get() + 2L * threads.length;
        while (writes.get() < target) {
            if (failure != null) {
                throw new AssertionError("a writer failed", failure);
            }
            Thread.onSpinWait();
        }
    }

    /** Stops the threads and returns once none will store again: the pause hook. */
    void stop() {
        stop = true;
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
        if (failure != null) {
            throw new AssertionError("a writer failed", failure);
        }
    }

    /**
     * Checks every recorded store: with q the last sync that ended before the store began and r the first that
     * began after it ended, one of syncs q+1..r took its page, so the round that sends that sync's pages (sync k's
     * go in round k, the last round taking the last two syncs') carried it. Returns how many stores lay wholly
     * between two syncs, whose round is then exactly known.
     */
    int checkCovered(List<Long> syncStarts, List<Long> syncEnds, List<BitSet> sent) {
        int lastRound = sent.size() - 1;
        int exact = 0;
        for (int t = 0; t < threads.length; t++) {
            for (int i = 0; i < counts[t]; i++) {
                long s = starts[t][i];
                long e = ends[t][i];
                int q = -1;
                while (q + 1 < syncEnds.size() && syncEnds.get(q + 1) < s) {
                    q++;
                }
                int r = q + 1;
                while (syncStarts.get(r) < e) {
                    r++;
                }
                boolean covered = false;
                for (int k = q + 1; k <= r && !covered; k++) {
                    covered = sent.get(Math.min(k, lastRound)).get((int) pages[t][i]);
                }
                assertTrue(covered, "store " + i + " of writer " + t + " to page 0x"
                        + Long.toHexString(pages[t][i]) + " between syncs " + q + " and " + r + " was never sent");
                if (r == q + 1 && q >= 0) {
                    exact++;
                }
            }
        }
        return exact;
    }
}
