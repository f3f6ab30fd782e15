package dev.guestmem.memory.stress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.AsymmetricFence;
import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.DirtySnapshot;
import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.Rcu;
import dev.guestmem.memory.SoftTlb;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * Guest atomics through every path at once, racing map changes and takes of their pages' dirty bits: two vCPUs with a
 * {@link HostTlb} each (inside their RCU sections, a check point every {@value #OPS_PER_CHECKPOINT} atomics), one with
 * a {@link SoftTlb} and one through the {@link AddressSpace} add 1 ({@link AtomicOp#FETCH_ADD}) to the same words: per
 * page of the first {@value #SHARED} of a RAM region that VGA logs, an 8-byte little-endian word (one atomic
 * instruction on x86) and a 4-byte big-endian one (a compare-and-exchange loop). Every other atomic of a vCPU goes to
 * one of {@value #OWN} pages of its own instead, which nobody else writes, so that another path's marks cannot hide
 * a mark this vCPU's path lost. Meanwhile a writer commits a new map every few
 * hundred microseconds (a device next to the RAM comes and goes: every TLB refills), and a taker takes the VGA bits of
 * the region again and again, counting each take when it has returned (a volatile count). Each vCPU reads the count of
 * takes ended, {@code d}, before each atomic.
 *
 * <p><b>Forbidden outcomes.</b>
 * <ul>
 *   <li>A word whose final value is not the number of additions made to it (a lost or doubled update), or a vCPU
 *   seeing a word's old value go down or repeat (an addition that read a stale value).</li>
 *   <li>After the vCPUs stop, a page stored to whose bit is clear and that no take after take {@code d} returned, for
 *   the largest {@code d} read before an atomic to it: takes up to {@code d} had ended before that atomic began, so
 *   only a later take can have cleared the bit its store set (or, for a store hit to a marked page, found set, which
 *   a take still running when the store's check read the dirty epoch may have taken): the store is in no snapshot
 *   and not marked now, a page a migration would lose.</li>
 *   <li>Any result but OK, and any exception, including the {@code -ea} check of every {@link HostTlb} hit.</li>
 * </ul>
 * Required: maps committed and takes returning pages while the vCPUs ran; with a process-wide fence installed (memory-
 * offheap's run), atomics of the fast TLB that hit (went fast on a logged page).
 *
 * <p>Runs {@value #DEFAULT_SECONDS} second by default; {@code -Dguestmem.dirty.stress.seconds=N} for longer.
 * memory-offheap runs it again on a memfd with {@code membarrier} and with the fallback fence.
 */
public class AtomicDirtyStressTest {
    static final long DEFAULT_SECONDS = 1;
    private static final long SECONDS = Long.getLong("guestmem.dirty.stress.seconds", DEFAULT_SECONDS);
    /** Pages whose words every vCPU adds to. */
    static final int SHARED = 16;
    /** Pages of each vCPU's own, after the shared ones: their bits say whether that vCPU's stores were marked. */
    static final int OWN = 4;
    static final int PAGES = SHARED + OWN * 4; // the four vCPUs of VCPUS
    static final int OPS_PER_CHECKPOINT = 64;
    private static final long PAGE = 4096;
    private static final long RAM_BASE = 0x1000_0000L;
    /** The two words of every page: an 8-byte little-endian one here, a 4-byte big-endian one at {@link #WORD32}. */
    private static final long WORD64 = 0x40;
    private static final long WORD32 = 0x80;
    private static final ValueLayout.OfInt INT_BE = ValueLayout.JAVA_INT.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** How a vCPU makes its atomics. */
    private enum Path {
        HOST_TLB, SOFT_TLB, ADDRESS_SPACE
    }

    private static final Path[] VCPUS = {Path.HOST_TLB, Path.HOST_TLB, Path.SOFT_TLB, Path.ADDRESS_SPACE};

    /** Where guest RAM comes from; memory-offheap overrides it with a memfd. */
    protected MemorySystem.RamAllocator ramBackend() {
        return MemorySystem.ANONYMOUS_RAM;
    }

    @Test
    void fetchAddsThroughEveryPathLoseNoUpdateAndNoDirtyPage() throws Exception {
        final MemorySystem system = new MemorySystem();
        final MemoryRegion ram = system.ram("ram", PAGES * PAGE, ramBackend());
        final MemoryRegion device = system.io("toggle", PAGE, MemoryRegionOps.builder()
                .read((addr, size) -> 0)
                .write((addr, data, size) -> { })
                .build());
        final MemoryRegion root = system.container("system", 1L << 32);
        root.addSubregion(RAM_BASE, ram);
        final AddressSpace as = system.addressSpace("memory", root);
        ram.setLog(true, DirtyMemoryClient.VGA);
        ram.snapshotAndClearDirty(0, PAGES * PAGE, DirtyMemoryClient.VGA); // a new block starts dirty

        final Run run = new Run(system, as, ram, device, root);
        final List<Thread> threads = new ArrayList<>();
        for (int v = 0; v < VCPUS.length; v++) {
            final int vcpu = v;
            threads.add(new Thread(() -> run.guard(() -> run.vcpu(vcpu)), "atomic-vcpu-" + v));
        }
        threads.add(new Thread(() -> run.guard(run::remap), "remapper"));
        threads.add(new Thread(() -> run.guard(run::take), "taker"));
        threads.forEach(Thread::start);
        Thread.sleep(SECONDS * 1000);
        run.stop = true;
        for (Thread t : threads) {
            t.join();
        }
        if (run.failure.get() != null) {
            throw new AssertionError("thread failed", run.failure.get());
        }

        final MemorySegment memory = ram.ramSegment();
        long additions = 0;
        for (int p = 0; p < PAGES; p++) {
            long n64 = 0;
            long n32 = 0;
            long d = -1;
            for (int v = 0; v < VCPUS.length; v++) {
                n64 += run.counts[v][2 * p];
                n32 += run.counts[v][2 * p + 1];
                d = Math.max(d, run.lastD[v][p]);
            }
            additions += n64 + n32;
            assertEquals(n64, memory.get(LONG_LE, p * PAGE + WORD64), "page=" + p + ": 8-byte additions lost");
            assertEquals(n32 & 0xffff_ffffL, memory.get(INT_BE, p * PAGE + WORD32) & 0xffff_ffffL,
                    "page=" + p + ": 4-byte additions lost");
            if (d >= 0 && !ram.getDirty(p * PAGE, PAGE, DirtyMemoryClient.VGA)) {
                assertTrue(run.lastTake[p] > d, "fence=" + AsymmetricFence.installed().name() + " page=" + p
                        + ": stored to after take " + d + " ended, bit clear, last taken by take " + run.lastTake[p]
                        + " (of " + run.takes + ")");
            }
        }
        System.out.printf("AtomicDirtyStressTest: fence=%s %d s, %d additions, %d maps, %d takes (%d pages), fast TLB"
                + " misses %d of %d%n", AsymmetricFence.installed().name(), SECONDS, additions, run.commits,
                run.takes, run.pagesTaken, run.hostMisses, run.hostOps);
        assertTrue(run.commits > 0, "no map was committed while the vCPUs ran");
        assertTrue(run.pagesTaken > 0, "no take returned a page");
        for (int v = 0; v < VCPUS.length; v++) {
            assertTrue(run.ops[v] > 0, "vCPU " + v + " made no atomic");
        }
        if (AsymmetricFence.installed() != AsymmetricFence.fallback()) {
            assertTrue(run.hostMisses < run.hostOps, "misses=" + run.hostMisses + " ops=" + run.hostOps
                    + ": no atomic of the fast TLB went fast on a logged page");
        }
        system.transaction(() -> root.delSubregion(ram));
        ram.destroy();
        system.rcu().barrier();
    }

    /** One run's shared state. */
    private static final class Run {
        final MemorySystem system;
        final AddressSpace as;
        final MemoryRegion ram;
        final MemoryRegion device;
        final MemoryRegion root;
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        volatile boolean stop;
        /** Takes that have returned; the taker writes, the vCPUs read (volatile). */
        volatile long done;
        /** Per vCPU, additions per word ({@code [2p]} the 8-byte word of page p, {@code [2p + 1]} the 4-byte one). */
        final long[][] counts = new long[VCPUS.length][2 * PAGES];
        /** Per vCPU, per page, the takes ended before its last atomic there; -1 before any. */
        final long[][] lastD = new long[VCPUS.length][PAGES];
        final long[] ops = new long[VCPUS.length];
        /** Per page, the last take that returned it; -1 before any. Taker only, read after the join. */
        final long[] lastTake = new long[PAGES];
        long takes;
        long pagesTaken;
        long commits;
        long hostOps;
        long hostMisses;

        Run(MemorySystem system, AddressSpace as, MemoryRegion ram, MemoryRegion device, MemoryRegion root) {
            this.system = system;
            this.as = as;
            this.ram = ram;
            this.device = device;
            this.root = root;
            for (long[] d : lastD) {
                Arrays.fill(d, -1);
            }
            Arrays.fill(lastTake, -1);
        }

        void guard(Runnable body) {
            try {
                body.run();
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                stop = true;
            }
        }

        /** A vCPU's atomic: the old value. */
        interface Atomic {
            long fetchAdd(long addr, int size, boolean bigEndian);
        }

        void vcpu(int v) {
            final int[] r = new int[1];
            switch (VCPUS[v]) {
                case HOST_TLB -> {
                    try (Rcu.Reader reader = system.rcu().register()) {
                        final HostTlb tlb = new HostTlb(as, reader);
                        tlb.begin();
                        try {
                            add(v, (addr, size, big) -> tlb.atomicFetchOp(AtomicOp.FETCH_ADD, addr, 1, size, big),
                                    () -> {
                                        assertEquals(MemTxResult.OK, tlb.takeResult());
                                        tlb.checkpoint();
                                    });
                        } finally {
                            tlb.end();
                        }
                        synchronized (this) {
                            hostOps += ops[v];
                            hostMisses += tlb.missCount();
                        }
                    }
                }
                case SOFT_TLB -> {
                    final SoftTlb tlb = new SoftTlb(as);
                    add(v, (addr, size, big) -> tlb.atomicFetchOp(AtomicOp.FETCH_ADD, addr, 1, size, big),
                            () -> assertEquals(MemTxResult.OK, tlb.takeResult()));
                }
                case ADDRESS_SPACE -> add(v, (addr, size, big) -> {
                    final long old = as.atomicFetchOp(AtomicOp.FETCH_ADD, addr, 1, size, big, r);
                    assertEquals(MemTxResult.OK, r[0]);
                    return old;
                }, () -> { });
                default -> throw new AssertionError(VCPUS[v]);
            }
        }

        private void add(int v, Atomic atomic, Runnable checkpoint) {
            final SplittableRandom random = new SplittableRandom(v + 1);
            final long[] count = counts[v];
            final long[] d = lastD[v];
            final long[] lastOld = new long[2 * PAGES];
            Arrays.fill(lastOld, -1);
            long n = 0;
            while (!stop) {
                final boolean own = (n & 1) != 0;
                final int p = own ? SHARED + OWN * v + random.nextInt(OWN) : random.nextInt(SHARED);
                final int w = own ? 0 : random.nextInt(2);
                final long addr = RAM_BASE + p * PAGE + (w == 0 ? WORD64 : WORD32);
                // Volatile, before the atomic: takes up to this one had ended (see the class comment).
                d[p] = done;
                final long old = atomic.fetchAdd(addr, w == 0 ? 8 : 4, w == 1);
                if (old <= lastOld[2 * p + w]) {
                    throw new AssertionError("vCPU " + v + " page=" + p + " word=" + w + ": old value " + old
                            + " after " + lastOld[2 * p + w]);
                }
                lastOld[2 * p + w] = old;
                count[2 * p + w]++;
                if (++n % OPS_PER_CHECKPOINT == 0) {
                    checkpoint.run();
                }
                if ((n & 4095) == 0) {
                    Thread.yield(); // the remapper and the taker on a machine with fewer cores than threads
                }
            }
            checkpoint.run();
            ops[v] = n;
        }

        void remap() {
            boolean present = false;
            while (!stop) {
                final boolean add = !present;
                system.transaction(() -> {
                    if (add) {
                        root.addSubregion(RAM_BASE + PAGES * PAGE, device);
                    } else {
                        root.delSubregion(device);
                    }
                });
                present = add;
                commits++;
                LockSupport.parkNanos(200_000); // pacing only: every map is checked the same
            }
        }

        void take() {
            final DirtySnapshot snapshot = new DirtySnapshot();
            final long ramPage = ram.ramBlock().offset() / PAGE; // nextDirtyPage counts pages of the ram_addr space
            while (!stop) {
                final long k = done + 1;
                ram.snapshotAndClearDirty(0, PAGES * PAGE, DirtyMemoryClient.VGA, snapshot);
                for (long p = snapshot.nextDirtyPage(0); p >= 0; p = snapshot.nextDirtyPage(p + 1)) {
                    lastTake[(int) (p - ramPage)] = k;
                    pagesTaken++;
                }
                takes = k;
                done = k; // volatile: counted once the take, its swaps and its fence, returned
                LockSupport.parkNanos(50_000);
            }
        }
    }
}
