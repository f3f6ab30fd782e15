package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.MmioDispatch;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * vCPU threads, each with its own {@link HostTlb} inside its RCU section, load, fetch and store while a writer
 * publishes new maps continuously and frees the RAM each map drops: {@link SoftTlbStressTest}'s map, with fresh RAM
 * for every version.
 *
 * <p>Map version j (k = j mod 4): at 0x0000 and 0x1000 RAM regions made for this version, every byte k + 1 (the
 * writer destroys those of version j - 1 once j is published, so their memory is freed after a grace period); at
 * 0x2000 a device reading k + 1 for even k, a hole for odd k; at 0x3000 the clock, an alias whose 8 bytes read
 * {@code j mod N}; at 0x10000 scratch RAM for even j, a read-only alias of it for odd j (stores discarded with
 * DECODE_ERROR).
 *
 * <p>Each vCPU, in a loop: reads the clock through the address space ({@code c0}), passes a check point, reads it
 * through the address space again ({@code c1}) and through its TLB ({@code t}); then batches of loads from both RAM
 * pages, fetches, device loads, a store of a new sequence number into its scratch slot and a load of it, and the
 * clock through the TLB, until it sees through the address space that a commit landed, and four batches more, in
 * which the map of its check point is already replaced and its RAM queued for freeing.
 *
 * <p>Forbidden outcomes: {@code t} outside {@code [c0, c1]} (a map older than the one current at the check point);
 * within a round any access of another version than {@code t}: a RAM or fetched value whose k is not {@code t mod 4},
 * a device or scratch outcome of the other parity, the TLB's clock moving (a map that was not current at the vCPU's
 * last check point); a value that is no version's (bytes of freed or reused memory); a result other than OK except
 * DECODE_ERROR for the hole and the read-only scratch; a written store not read back; any exception, including the
 * {@code -ea} check of every hit against its block's live segment; a crash. Required: the writer published and freed
 * many versions while vCPUs ran, and rounds saw commits land.
 *
 * <p>Runs {@value AccessStressTest#DEFAULT_SECONDS} seconds by default; {@code -Dguestmem.access.stress.seconds=600}
 * soaks.
 */
class HostTlbStressTest {
    private static final long SECONDS = Long.getLong("guestmem.access.stress.seconds",
            AccessStressTest.DEFAULT_SECONDS);
    private static final int VERSIONS = 4;
    private static final int CLOCK_VALUES = 1 << 16;
    private static final long CLOCK = 0x3000;
    private static final long SCRATCH = 0x10000;
    private static final int VCPUS = 3;
    private static final int MAX_BATCHES = 2000;
    private static final int BATCHES_AFTER_A_COMMIT = 4;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @Test
    void everyAccessBetweenCheckPointsUsesTheMapOfTheFirst() throws Exception {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion[] dev = new MemoryRegion[VERSIONS];
        for (int k = 0; k < VERSIONS; k++) {
            long pattern = (k + 1) * 0x0101_0101_0101_0101L;
            dev[k] = system.io("dev-" + k, 0x1000, MemoryRegionOps.builder()
                    .read((addr, size) -> pattern & MmioDispatch.mask(size))
                    .build());
        }
        MemoryRegion clockRam = system.ram("clock-ram", 8L * CLOCK_VALUES + 0x1000);
        for (int i = 0; i < CLOCK_VALUES; i++) {
            clockRam.ramSegment().setAtIndex(ValueLayout.JAVA_LONG, i, i);
        }
        MemoryRegion clock = system.alias("clock", clockRam, 0, 0x1000);
        MemoryRegion scratch = system.ram("scratch", 0x1000);
        MemoryRegion scratchRo = system.alias("scratch-ro", scratch, 0, 0x1000);
        scratchRo.setReadonly(true);
        MemoryRegion[] ram = {filled(system, "lo-0", 0), filled(system, "hi-0", 0)};
        system.transaction(() -> {
            root.addSubregion(0x0000, ram[0]);
            root.addSubregion(0x1000, ram[1]);
            root.addSubregion(0x2000, dev[0]);
            root.addSubregion(CLOCK, clock);
            root.addSubregion(SCRATCH, scratch);
        });
        AddressSpace as = system.addressSpace("as", root);

        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicLong published = new AtomicLong();
        AtomicLong armed = new AtomicLong();
        ConcurrentLinkedQueue<RamBlock> destroyed = new ConcurrentLinkedQueue<>();
        long[] rounds = new long[VCPUS];
        long[] sawCommit = new long[VCPUS];
        long[] lastWritten = new long[VCPUS];

        List<Thread> threads = new ArrayList<>();
        for (int id = 0; id < VCPUS; id++) {
            int me = id;
            threads.add(Thread.ofPlatform().name("host-tlb-vcpu-" + id).unstarted(() -> {
                try (Rcu.Reader reader = system.rcu().register()) {
                    HostTlb tlb = new HostTlb(as, reader, U, 64, 64);
                    Vcpu vcpu = new Vcpu(as, tlb, SCRATCH + 8L * me, armed);
                    tlb.begin();
                    try {
                        while (!stop.get()) {
                            if (vcpu.round()) {
                                sawCommit[me]++;
                            }
                            rounds[me]++;
                        }
                    } finally {
                        tlb.end();
                    }
                    lastWritten[me] = vcpu.written;
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                    stop.set(true);
                }
            }));
        }
        Thread writer = Thread.ofPlatform().name("host-tlb-writer").unstarted(() -> {
            try {
                long j = 0;
                while (!stop.get()) {
                    long seen = armed.get();
                    long until = System.nanoTime() + 1_000_000;
                    while (armed.get() == seen && System.nanoTime() < until && !stop.get()) {
                        Thread.onSpinWait();
                    }
                    long next = j + 1;
                    int from = (int) (j % VERSIONS);
                    int to = (int) (next % VERSIONS);
                    MemoryRegion[] old = ram.clone();
                    ram[0] = filled(system, "lo-" + next, to);
                    ram[1] = filled(system, "hi-" + next, to);
                    system.transaction(() -> {
                        root.delSubregion(old[0]);
                        root.delSubregion(old[1]);
                        if (from % 2 == 0) {
                            root.delSubregion(dev[from]);
                        }
                        root.addSubregion(0x0000, ram[0]);
                        root.addSubregion(0x1000, ram[1]);
                        if (to % 2 == 0) {
                            root.addSubregion(0x2000, dev[to]);
                        }
                        clock.setAliasOffset(8 * (next % CLOCK_VALUES));
                        root.delSubregion(next % 2 == 0 ? scratchRo : scratch);
                        root.addSubregion(SCRATCH, next % 2 == 0 ? scratch : scratchRo);
                    });
                    j = next;
                    published.incrementAndGet();
                    for (MemoryRegion r : old) {
                        destroyed.add(r.ramBlock());
                        r.destroy(); // freed after a grace period, which waits for every vCPU's check point
                    }
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                stop.set(true);
            }
        });
        threads.forEach(Thread::start);
        writer.start();
        long deadline = System.nanoTime() + SECONDS * 1_000_000_000L;
        while (!stop.get() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        stop.set(true);
        writer.join();
        for (Thread t : threads) {
            t.join();
        }
        if (failure.get() != null) {
            throw new AssertionError("forbidden outcome", failure.get());
        }
        system.rcu().barrier();
        long freed = destroyed.stream().filter(b -> ((AbstractRamBlock) b).isReleased()).count();
        long total = 0;
        long commits = 0;
        for (int id = 0; id < VCPUS; id++) {
            assertEquals(lastWritten[id], scratch.ramSegment().get(ValueLayout.JAVA_LONG, 8L * id),
                    "vCPU " + id + "'s last written store");
            assertTrue(rounds[id] > 0, "vCPU " + id + " made no rounds");
            total += rounds[id];
            commits += sawCommit[id];
        }
        System.out.printf("HostTlbStressTest: %d s, %d maps published, %d blocks freed, %d rounds (%d vCPUs), %d saw "
                + "a commit land%n", SECONDS, published.get(), freed, total, VCPUS, commits);
        assertTrue(published.get() > 10, "published=" + published.get());
        assertEquals(destroyed.size(), freed, "every destroyed block freed after the barrier");
        assertTrue(commits > 0, "no round saw a commit land");
    }

    /** A 4 KiB RAM region whose every byte is {@code k + 1}. */
    private static MemoryRegion filled(MemorySystem system, String name, int k) {
        MemoryRegion r = system.ram(name, 0x1000);
        r.ramSegment().fill((byte) (k + 1));
        return r;
    }

    /**
     * Returns once the address space's published dispatch is its published view's (a commit stores the view, then the
     * dispatch): an access through the address space after this comes from a map no older than the view read here.
     */
    static void awaitDispatchOfView(AddressSpace as) {
        FlatView v;
        do {
            v = as.flatView();
        } while (as.dispatch() != v.dispatchFor(as.pageBits()));
    }

    /** One vCPU's state and checks; see the class comment. */
    private static final class Vcpu {
        private final AtomicLong armed;
        private final AddressSpace as;
        private final HostTlb tlb;
        private final long slot;
        private final int[] r = new int[1];
        private long seq;
        /** The last sequence number whose store was written (OK), 0 before any. */
        long written;

        Vcpu(AddressSpace as, HostTlb tlb, long slot, AtomicLong armed) {
            this.armed = armed;
            this.as = as;
            this.tlb = tlb;
            this.slot = slot;
        }

        /** One round from a check point; true when a commit landed during it. */
        boolean round() {
            long c0 = clockThroughAddressSpace();
            tlb.checkpoint();
            long c1 = clockThroughCaughtUpAddressSpace();
            long t = clockThroughTlb();
            if (ahead(c0, t) < 0 || ahead(t, c1) < 0) {
                throw new AssertionError("the TLB's map is not one current at the check point: c0=" + c0 + " t=" + t
                        + " c1=" + c1);
            }
            int k = (int) (t % VERSIONS);
            int after = -1;
            for (int batch = 0; batch < MAX_BATCHES && after < BATCHES_AFTER_A_COMMIT; batch++) {
                for (int rep = 0; rep < 8; rep++) {
                    expect(k, markOf(tlb.ldqLe(0x0800 + 8 * rep), "lo"), "lo", t);
                    expect(k, markOf(tlb.ldqBe(0x1ff8 - 8 * rep), "hi"), "hi", t);
                    expect(k, markOf(tlb.ldlCode(0x0900 + 4 * rep) & 0xffff_ffffL | 0x1_0000_0000L, "fetch"),
                            "fetch", t);
                    expect(k % 2, deviceParity(tlb.ldlLe(0x2800 + 4 * rep), tlb.takeResult()), "device", t);
                    expect(k % 2, storeAndLoad(), "scratch store", t);
                }
                if (clockThroughTlb() != t) {
                    throw new AssertionError("the TLB's clock moved between check points: t=" + t);
                }
                if (batch == 1) {
                    armed.incrementAndGet();
                }
                if (after >= 0) {
                    after++;
                } else if (clockThroughAddressSpace() != c1) {
                    after = 0;
                }
            }
            return after >= 0;
        }

        private static void expect(int want, int got, String what, long t) {
            if (want != got) {
                throw new AssertionError(what + " saw " + got + " but the map of the check point is version " + t);
            }
        }

        private int deviceParity(int v, int result) {
            if (v == 0) {
                if (result != MemTxResult.DECODE_ERROR) {
                    throw new AssertionError("hole read 0 with " + MemTxResult.toString(result));
                }
                return 1;
            }
            int k = markOf(v & 0xffff_ffffL | 0x1_0000_0000L, "device");
            if (k % 2 != 0 || result != MemTxResult.OK) {
                throw new AssertionError("device bytes of k=" + k + " result=" + MemTxResult.toString(result));
            }
            return 0;
        }

        private int storeAndLoad() {
            seq++;
            tlb.stqLe(slot, seq);
            int sr = tlb.takeResult();
            int parity;
            if (sr == MemTxResult.OK) {
                written = seq;
                parity = 0;
            } else if (sr == MemTxResult.DECODE_ERROR) {
                parity = 1;
            } else {
                throw new AssertionError("scratch store result=" + MemTxResult.toString(sr));
            }
            long back = tlb.ldqLe(slot);
            expectOk("scratch load");
            if (back != written) {
                throw new AssertionError("scratch slot reads " + back + " but the last written store was " + written);
            }
            return parity;
        }

        private long clockThroughAddressSpace() {
            long c = as.ldqLe(CLOCK, U, r);
            if (r[0] != MemTxResult.OK) {
                throw new AssertionError("clock through the address space: " + MemTxResult.toString(r[0]));
            }
            return c;
        }

        /**
         * The clock through the address space once its dispatch has caught up with its view. A commit publishes the
         * view, then its dispatch; the check point acquires the view, while the address space's access path reads the
         * dispatch, which may still be the one before for an instant. Reading after both agree makes c1 come from a
         * map no older than the one the check point took.
         */
        private long clockThroughCaughtUpAddressSpace() {
            awaitDispatchOfView(as);
            return clockThroughAddressSpace();
        }

        private long clockThroughTlb() {
            long c = tlb.ldqLe(CLOCK);
            expectOk("clock through the TLB");
            if (c < 0 || c >= CLOCK_VALUES) {
                throw new AssertionError("clock=" + c);
            }
            return c;
        }

        private void expectOk(String what) {
            int res = tlb.takeResult();
            if (res != MemTxResult.OK) {
                throw new AssertionError(what + ": " + MemTxResult.toString(res));
            }
        }

        /** The k of a value whose every byte is k + 1 (a 32-bit value arrives with bit 32 set). */
        private int markOf(long v, String what) {
            expectOk(what);
            int width = (v >>> 32) == 1 ? 4 : 8;
            int mark = (int) (v & 0xff);
            if (mark < 1 || mark > VERSIONS) {
                throw new AssertionError(what + ": " + Long.toHexString(v) + " is no version's");
            }
            for (int i = 1; i < width; i++) {
                if ((int) ((v >>> (8 * i)) & 0xff) != mark) {
                    throw new AssertionError(what + ": " + Long.toHexString(v) + " mixes versions");
                }
            }
            return mark - 1;
        }

        /** How far {@code later} is ahead of {@code earlier} on the clock, negative if behind. */
        private static long ahead(long earlier, long later) {
            long d = Math.floorMod(later - earlier, CLOCK_VALUES);
            return d >= CLOCK_VALUES / 2 ? -1 : d;
        }
    }
}
