package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import org.junit.jupiter.api.Test;

/**
 * The atomic access API under contention, jcstress-style: each test states the outcome it forbids and checks every
 * run for it. Threads each use their own {@link SoftTlb} (one per vCPU) or the address space directly; sizes and byte
 * orders vary so that both the atomic instructions and the compare-and-exchange loops (big-endian additions,
 * minimums) are exercised. Nothing here depends on timing: a run on a loaded machine only interleaves less.
 */
class AtomicAccessStressTest {
    private static final long RAM = 0x8000_0000L;
    private static final int THREADS = 4;
    private static final int PER_THREAD = Integer.getInteger("guestmem.atomic.stress.iterations", 20_000);

    private static AddressSpace machine() {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        MemoryRegion ram = sys.ram("ram", 0x10_000);
        root.addSubregion(RAM, ram);
        return sys.addressSpace("as", root);
    }

    /** Runs {@code body(thread)} on {@link #THREADS} threads started together; rethrows the first failure. */
    private static void race(ThreadBody body) throws Exception {
        CyclicBarrier start = new CyclicBarrier(THREADS);
        Throwable[] failure = new Throwable[1];
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            final int id = t;
            Thread th = new Thread(() -> {
                try {
                    start.await();
                    body.run(id);
                } catch (Throwable e) {
                    synchronized (failure) {
                        if (failure[0] == null) {
                            failure[0] = e;
                        }
                    }
                }
            }, "atomic-stress-" + t);
            threads.add(th);
            th.start();
        }
        for (Thread th : threads) {
            th.join();
        }
        if (failure[0] != null) {
            throw new AssertionError(failure[0]);
        }
    }

    @FunctionalInterface
    private interface ThreadBody {
        void run(int thread) throws Exception;
    }

    /**
     * Fetch-and-add of 1 from every thread, half through TLBs, half through the address space. Forbidden: an old
     * value returned twice or never (a lost update), and a final value other than the number of additions.
     */
    @Test
    void fetchAddLosesNoUpdate() throws Exception {
        for (int size : new int[] {8, 4}) {
            for (boolean big : new boolean[] {false, true}) {
                AddressSpace as = machine();
                long addr = RAM + 0x40;
                long[][] olds = new long[THREADS][PER_THREAD];
                race(t -> {
                    SoftTlb tlb = new SoftTlb(as);
                    for (int i = 0; i < PER_THREAD; i++) {
                        olds[t][i] = (t & 1) == 0 ? tlb.atomicFetchOp(AtomicOp.FETCH_ADD, addr, 1, size, big)
                                : as.atomicFetchOp(AtomicOp.FETCH_ADD, addr, 1, size, big, null);
                    }
                    assertEquals(MemTxResult.OK, tlb.takeResult());
                });
                long[] all = Arrays.stream(olds).flatMapToLong(Arrays::stream).sorted().toArray();
                for (int i = 0; i < all.length; i++) {
                    assertEquals(i, all[i], "size=" + size + " big=" + big + ": old value " + i
                            + " returned twice or never (a lost update)");
                }
                int[] r = {-1};
                long last = size == 8 ? (big ? as.ldqBe(addr, MemTxAttrs.UNSPECIFIED, r)
                        : as.ldqLe(addr, MemTxAttrs.UNSPECIFIED, r))
                        : (big ? as.ldlBe(addr, MemTxAttrs.UNSPECIFIED, r) : as.ldlLe(addr, MemTxAttrs.UNSPECIFIED, r));
                assertEquals(THREADS * PER_THREAD, last);
            }
        }
    }

    /**
     * Increments by compare-and-exchange loops (as an LR/SC pair is executed) beside fetch-and-adds and unsigned
     * maximums of values below the counter. Forbidden: a final count other than the successful exchanges plus the
     * additions.
     */
    @Test
    void compareAndExchangeLoopsAndOtherOperationsLoseNothing() throws Exception {
        AddressSpace as = machine();
        long addr = RAM + 0x1000;
        long[] successes = new long[THREADS];
        race(t -> {
            SoftTlb tlb = new SoftTlb(as);
            for (int i = 0; i < PER_THREAD; i++) {
                if (t == 0) {
                    tlb.atomicFetchOp(AtomicOp.FETCH_ADD, addr, 1, 8, false);
                } else if (t == 1) {
                    // Never above the counter, so it never changes it; it must not lose anyone's increment either.
                    tlb.atomicFetchOp(AtomicOp.FETCH_UMAX, addr, 0, 8, false);
                } else {
                    while (true) {
                        long v = tlb.ldqLe(addr);
                        if (tlb.atomicCmpxchg(addr, v, v + 1, 8, false) == v) {
                            successes[t]++;
                            break;
                        }
                    }
                }
            }
            assertEquals(MemTxResult.OK, tlb.takeResult());
        });
        long expected = PER_THREAD + successes[2] + successes[3];
        assertEquals((long) PER_THREAD * (THREADS - 1), expected);
        assertEquals(expected, as.ldqLe(addr, MemTxAttrs.UNSPECIFIED, null));
    }

    /**
     * A plain store of one thread against fetch-and-adds of another, through the TLBs' fast paths. Each round the
     * writer stores {@code round << 32} once while the adder adds 1 to the low half. Forbidden: a round whose final
     * high half is not the writer's (an addition that read before the store and wrote after it, which a lock around
     * a load and a store allows), and a low half other than the additions that returned the writer's high half.
     */
    @Test
    void plainStoresAreAtomicAgainstAtomics() throws Exception {
        AddressSpace as = machine();
        long addr = RAM + 0x2000;
        int rounds = Math.max(200, PER_THREAD / 20);
        int adds = 200;
        CyclicBarrier round = new CyclicBarrier(2);
        long[][] olds = new long[rounds][adds];
        Thread writer = new Thread(() -> {
            SoftTlb tlb = new SoftTlb(as);
            try {
                for (int i = 0; i < rounds; i++) {
                    round.await();
                    for (int spin = 0; spin < (i % 50); spin++) {
                        Thread.onSpinWait(); // a store somewhere among the additions
                    }
                    tlb.stqLe(addr, (long) (i + 1) << 32);
                    round.await();
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }, "plain-writer");
        writer.setDaemon(true);
        writer.start();
        try {
            addAgainst(as, addr, round, olds);
        } finally {
            round.reset(); // a failed round must not leave the writer waiting
        }
        writer.join();
    }

    private static void addAgainst(AddressSpace as, long addr, CyclicBarrier round, long[][] olds)
            throws Exception {
        int rounds = olds.length;
        int adds = olds[0].length;
        SoftTlb tlb = new SoftTlb(as);
        tlb.ldqLe(addr); // fill the entry: both threads hit
        for (int i = 0; i < rounds; i++) {
            tlb.stqLe(addr, 0);
            round.await();
            for (int k = 0; k < adds; k++) {
                olds[i][k] = tlb.atomicFetchOp(AtomicOp.FETCH_ADD, addr, 1, 8, false);
            }
            round.await();
            long end = tlb.ldqLe(addr);
            long mine = (long) (i + 1) << 32;
            assertEquals(mine, end & 0xffff_ffff_0000_0000L, "round " + i + ": the plain store was lost");
            long after = Arrays.stream(olds[i]).filter(o -> (o & 0xffff_ffff_0000_0000L) == mine).count();
            assertEquals(after, end & 0xffff_ffffL, "round " + i);
            long n = 0;
            for (long o : olds[i]) {
                if ((o & 0xffff_ffff_0000_0000L) == mine) {
                    assertEquals(mine | n++, o, "round " + i + ": additions after the store count from 0");
                }
            }
        }
    }
}
