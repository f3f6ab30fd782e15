package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * {@link VirtioMemDiscardManager}'s threading claim (every method under the topology lock): four threads plug and
 * unplug blocks of one region (each its own blocks, chosen at random) while a fifth registers and unregisters
 * listeners on random sections and, holding the topology lock, compares each listener's picture with a replay.
 *
 * <p>Forbidden outcomes:
 * <ul>
 *   <li>a listener told to populate bytes it holds as populated, or to discard bytes it holds as discarded;</li>
 *   <li>a registered listener's picture differing from {@code replay_populated} of its section, at any check;</li>
 *   <li>an unregistered listener left with populated bytes;</li>
 *   <li>at the end, the plugged blocks or the plugged size differing from what the owning threads did; any
 *   exception.</li>
 * </ul>
 * {@code -Dguestmem.discard.stress.iterations=N} sets the requests per thread (default 3,000).
 */
class RamDiscardStressTest {
    private static final int THREADS = 4;
    private static final int BLOCKS = 64;
    private static final long BLOCK = 0x1000;
    private static final long BASE = 0x8000_0000L;
    private static final int ITERATIONS = Integer.getInteger("guestmem.discard.stress.iterations", 3_000);

    @Test
    void concurrentPlugsUnplugsAndRegistrationsKeepEveryPictureExact() throws Exception {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("system", U64.SIZE_2_64);
        AddressSpace as = sys.addressSpace("memory", root);
        MemoryRegion mem = sys.ram("mem", BLOCKS * BLOCK);
        VirtioMemDiscardManager m = VirtioMemDiscardManager.realize(mem, BLOCK);
        root.addSubregion(BASE, mem);

        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch start = new CountDownLatch(1);
        boolean[][] owned = new boolean[THREADS][BLOCKS]; // per thread: its blocks that it has plugged
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            int id = t;
            SplittableRandom rnd = new SplittableRandom(77 + t);
            threads.add(new Thread(() -> run(failure, start, () -> {
                for (int i = 0; i < ITERATIONS; i++) {
                    int b = id + THREADS * rnd.nextInt(BLOCKS / THREADS);
                    if (owned[id][b]) {
                        m.unplug(b * BLOCK, BLOCK);
                    } else {
                        m.plug(b * BLOCK, BLOCK);
                    }
                    owned[id][b] = !owned[id][b];
                }
            }), "plug-" + t));
        }
        List<RecordingDiscardListener> registered = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(99);
        threads.add(new Thread(() -> run(failure, start, () -> {
            List<String> log = new ArrayList<>();
            for (int i = 0; i < ITERATIONS / 4; i++) {
                if (registered.size() < 4 || (registered.size() < 8 && rnd.nextBoolean())) {
                    long first = (BLOCK / 2) * rnd.nextInt(2 * BLOCKS);
                    long size = (BLOCK / 2) * (1 + rnd.nextInt((int) ((BLOCKS * BLOCK - first) / (BLOCK / 2))));
                    RecordingDiscardListener l = new RecordingDiscardListener("L" + i, log, rnd.nextBoolean());
                    registered.add(l.registerWith(m, new MemoryRegionSection(mem, as.flatView(), first, BASE + first,
                            BASE + first + size - 1, false, false, false)));
                } else {
                    RecordingDiscardListener l = registered.remove(rnd.nextInt(registered.size()));
                    m.unregisterListener(l);
                    assertEquals(new BitSet(), l.populated(), l + " after it left");
                }
                sys.transaction(() -> { // holds the topology lock: no plug or unplug in between
                    log.clear(); // the listeners write it under the same lock
                    for (RecordingDiscardListener l : registered) {
                        assertEquals(RecordingDiscardListener.replayedPicture(m, l.registered), l.populated(),
                                l.toString());
                    }
                });
            }
        }), "register"));
        threads.forEach(Thread::start);
        start.countDown();
        for (Thread t : threads) {
            t.join();
        }
        assertNull(failure.get(), () -> "failed: " + failure.get());

        BitSet expected = new BitSet();
        for (boolean[] mine : owned) {
            for (int b = 0; b < BLOCKS; b++) {
                if (mine[b]) {
                    expected.set((int) (b * BLOCK), (int) ((b + 1) * BLOCK));
                }
            }
        }
        MemoryRegionSection whole = new MemoryRegionSection(mem, as.flatView(), 0, BASE, BASE + BLOCKS * BLOCK - 1,
                false, false, false);
        assertEquals(expected, RecordingDiscardListener.replayedPicture(m, whole));
        assertEquals(expected.cardinality(), m.pluggedSize());
        for (RecordingDiscardListener l : registered) {
            assertEquals(RecordingDiscardListener.replayedPicture(m, l.registered), l.populated(), l.toString());
        }
    }

    private static void run(AtomicReference<Throwable> failure, CountDownLatch start, Runnable body) {
        try {
            start.await();
            body.run();
        } catch (Throwable e) {
            failure.compareAndSet(null, e);
        }
    }
}
