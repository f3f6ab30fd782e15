package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.access.MmioDispatch;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The map that the access stress tests ({@link AccessStressTest}, {@link SoftTlbStressTest}, {@link HostTlbStressTest})
 * remap without pause, and the run that drives it: threads that access it and a writer that publishes versions, for
 * {@value #DEFAULT_SECONDS} seconds by default ({@code -Dguestmem.access.stress.seconds=600} soaks all three).
 *
 * <p>Map version j (one transaction each; k = j mod {@value #VERSIONS}):
 * <ul>
 *   <li>0x0000 and 0x1000: RAM {@code lo} and {@code hi}, every byte k + 1: the same two regions per k, or (with fresh
 *   RAM) two new regions for every version, the old ones destroyed once the new version is published, so that their
 *   memory is freed after a grace period;</li>
 *   <li>0x2000: for even k a device {@code dev-k} reading k + 1 in every byte, for odd k a hole;</li>
 *   <li>at {@link #SCRATCH}: scratch RAM, 8 bytes per thread; with the clock, a read-only alias of the same RAM for odd
 *   j, so that a CPU store is written for even j and discarded with DECODE_ERROR for odd j;</li>
 *   <li>with the clock, at {@link #CLOCK}: a one-page alias into a RAM of consecutive 64-bit numbers at offset
 *   {@code 8 * (j mod N)}, so the 8 bytes there read {@code j mod N} (N = {@value #CLOCK_VALUES}).</li>
 * </ul>
 *
 * <p>Threading: built on the test's thread; {@link #publish} on the writer's thread only.
 */
final class VersionedMap {
    static final int DEFAULT_SECONDS = 3;
    static final long SECONDS = Long.getLong("guestmem.access.stress.seconds", DEFAULT_SECONDS);
    static final int VERSIONS = 4;
    static final int CLOCK_VALUES = 1 << 16;
    static final long CLOCK = 0x3000;
    static final long SCRATCH = 0x10000;

    final MemorySystem system = new MemorySystem();
    final MemoryRegion root = system.container("root", U64.SIZE_2_64);
    /** The RAM at 0x0000 and 0x1000 per k, or (with fresh RAM) only version 0's. */
    final MemoryRegion[] lo = new MemoryRegion[VERSIONS];
    final MemoryRegion[] hi = new MemoryRegion[VERSIONS];
    final MemoryRegion[] dev = new MemoryRegion[VERSIONS];
    final MemoryRegion scratch = system.ram("scratch", 0x1000);
    final AddressSpace as;
    /** Bumped by a thread inside a round; the writer waits for it (or a millisecond) before it publishes. */
    final AtomicLong armed = new AtomicLong();
    /** The blocks of the regions destroyed by {@link #publish} (fresh RAM only). */
    final List<RamBlock> destroyed = new ArrayList<>();
    private final boolean fresh;
    private final MemoryRegion clock;
    private final MemoryRegion scratchRo;
    /** The RAM mapped now at 0x0000 and 0x1000. */
    private MemoryRegion curLo;
    private MemoryRegion curHi;
    private long j;

    /**
     * @param withClock map the clock and alternate the scratch RAM with its read-only alias
     * @param freshRam  new RAM for every version, destroyed once the next is published
     */
    VersionedMap(boolean withClock, boolean freshRam) {
        this.fresh = freshRam;
        for (int k = 0; k < VERSIONS; k++) {
            if (!freshRam || k == 0) {
                lo[k] = filled("lo-" + k, k);
                hi[k] = filled("hi-" + k, k);
            }
            long pattern = (k + 1) * 0x0101_0101_0101_0101L;
            dev[k] = system.io("dev-" + k, 0x1000, MemoryRegionOps.builder()
                    .read((addr, size) -> pattern & MmioDispatch.mask(size))
                    .build());
        }
        if (withClock) {
            MemoryRegion clockRam = system.ram("clock-ram", 8L * CLOCK_VALUES + 0x1000);
            for (int i = 0; i < CLOCK_VALUES; i++) {
                clockRam.ramSegment().setAtIndex(ValueLayout.JAVA_LONG, i, i);
            }
            clock = system.alias("clock", clockRam, 0, 0x1000);
            scratchRo = system.alias("scratch-ro", scratch, 0, 0x1000);
            scratchRo.setReadonly(true);
        } else {
            clock = null;
            scratchRo = null;
        }
        curLo = lo[0];
        curHi = hi[0];
        system.transaction(() -> {
            root.addSubregion(SCRATCH, scratch);
            root.addSubregion(0x0000, curLo);
            root.addSubregion(0x1000, curHi);
            root.addSubregion(0x2000, dev[0]);
            if (clock != null) {
                root.addSubregion(CLOCK, clock);
            }
        });
        as = system.addressSpace("as", root);
    }

    /** A 4 KiB RAM region whose every byte is {@code k + 1}. */
    private MemoryRegion filled(String name, int k) {
        MemoryRegion r = system.ram(name, 0x1000);
        r.ramSegment().fill((byte) (k + 1));
        return r;
    }

    /**
     * Waits until a thread arms (it is inside a round) or a millisecond passes: on a busy machine the threads would
     * otherwise rarely run at the same time.
     */
    void awaitARound(AtomicBoolean stop) {
        long seen = armed.get();
        long until = System.nanoTime() + 1_000_000;
        while (armed.get() == seen && System.nanoTime() < until && !stop.get()) {
            Thread.onSpinWait();
        }
    }

    /** Publishes version j + 1 in one transaction; with fresh RAM, then destroys the RAM version j mapped. */
    void publish() {
        int from = (int) (j % VERSIONS);
        long next = j + 1;
        int to = (int) (next % VERSIONS);
        MemoryRegion oldLo = curLo;
        MemoryRegion oldHi = curHi;
        curLo = fresh ? filled("lo-" + next, to) : lo[to];
        curHi = fresh ? filled("hi-" + next, to) : hi[to];
        system.transaction(() -> {
            root.delSubregion(oldLo);
            root.delSubregion(oldHi);
            if (from % 2 == 0) {
                root.delSubregion(dev[from]);
            }
            root.addSubregion(0x0000, curLo);
            root.addSubregion(0x1000, curHi);
            if (to % 2 == 0) {
                root.addSubregion(0x2000, dev[to]);
            }
            if (clock != null) {
                clock.setAliasOffset(8 * (next % CLOCK_VALUES));
                root.delSubregion(next % 2 == 0 ? scratchRo : scratch);
                root.addSubregion(SCRATCH, next % 2 == 0 ? scratch : scratchRo);
            }
        });
        j = next;
        if (fresh) {
            for (MemoryRegion r : new MemoryRegion[] {oldLo, oldHi}) {
                destroyed.add(r.ramBlock());
                r.destroy(); // freed after a grace period, which waits for every reader's check point
            }
        }
    }

    /** Versions published so far. */
    long published() {
        return j;
    }

    /**
     * Checks what each of the TLB tests' threads left: its last written store in its scratch slot, and at least one
     * round made. Returns the rounds of all of them.
     */
    long checkThreads(String who, long[] lastWritten, long[] rounds) {
        long total = 0;
        for (int id = 0; id < rounds.length; id++) {
            assertEquals(lastWritten[id], scratch.ramSegment().get(ValueLayout.JAVA_LONG, 8L * id),
                    who + " " + id + "'s last written store");
            assertTrue(rounds[id] > 0, who + " " + id + " made no rounds");
            total += rounds[id];
        }
        return total;
    }

    /** One thread's part of a run. */
    @FunctionalInterface
    interface Worker {
        void run(int id, AtomicBoolean stop) throws Exception;
    }

    /**
     * Runs {@code threads} workers named {@code name-<id>} and a writer named {@code writerName} that publishes
     * versions (each after waiting for a round when {@code awaitRounds}) for {@link #SECONDS} seconds or until one
     * fails; then joins them all and throws the first failure, the forbidden outcome.
     */
    void run(String name, String writerName, int threads, boolean awaitRounds, Worker worker)
            throws InterruptedException {
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> all = new ArrayList<>();
        for (int id = 0; id < threads; id++) {
            int me = id;
            all.add(Thread.ofPlatform().name(name + "-" + id).unstarted(() -> {
                try {
                    worker.run(me, stop);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                    stop.set(true);
                }
            }));
        }
        all.add(Thread.ofPlatform().name(writerName).unstarted(() -> {
            try {
                while (!stop.get()) {
                    if (awaitRounds) {
                        awaitARound(stop);
                    }
                    publish();
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                stop.set(true);
            }
        }));
        all.forEach(Thread::start);
        long deadline = System.nanoTime() + SECONDS * 1_000_000_000L;
        while (!stop.get() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        stop.set(true);
        for (Thread t : all) {
            t.join();
        }
        if (failure.get() != null) {
            throw new AssertionError("forbidden outcome", failure.get());
        }
    }
}
