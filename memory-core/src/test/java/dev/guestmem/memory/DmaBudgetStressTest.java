package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Several threads map and unmap bounce buffers of random lengths against one address space's budget, while a monitor
 * thread samples the counter. A thread that gets nothing registers a map client and waits for it before retrying.
 *
 * <p>Forbidden outcomes:
 * <ul>
 *   <li>the counter ({@link AddressSpace#bounceBufferSize()}) below 0 or above the limit, at any sample;</li>
 *   <li>the bytes of the mappings the threads hold at once above the limit;</li>
 *   <li>a mapping longer than asked for, or empty;</li>
 *   <li>a map client never told although budget was freed after it registered (a lost wake-up: its thread would
 *   wait forever; here it times out);</li>
 *   <li>the counter not back to 0 once every mapping is unmapped, or any exception.</li>
 * </ul>
 * {@code -Dguestmem.dma.stress.iterations=N} sets the maps per thread (default 4,000) and the rounds of the
 * registration race (ten times as many).
 */
class DmaBudgetStressTest {
    private static final int THREADS = 4;
    private static final long MAX = 4096;
    private static final int ITERATIONS = Integer.getInteger("guestmem.dma.stress.iterations", 4_000);

    @Test
    void accountingStaysExactUnderConcurrentMapsAndUnmaps() throws Exception {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0x1000, system.io("dev", 0x10000, MemoryRegionOps.builder()
                .read((addr, size) -> addr)
                .write((addr, data, size) -> { })
                .valid(1, 8, true)
                .impl(1, 8, true)
                .build()));
        AddressSpace as = system.addressSpace("as", root);
        as.setMaxBounceBufferSize(MAX);

        AtomicLong held = new AtomicLong();
        AtomicLong mapped = new AtomicLong();
        AtomicLong waits = new AtomicLong();
        AtomicReference<String> failure = new AtomicReference<>();
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            SplittableRandom rnd = new SplittableRandom(1234 + t);
            workers.add(new Thread(() -> {
                try {
                    start.await();
                    for (int i = 0; i < ITERATIONS && failure.get() == null; i++) {
                        long len = 1 + rnd.nextInt(3000);
                        boolean isWrite = rnd.nextBoolean();
                        DmaMapping m = as.map(0x1000 + rnd.nextInt(0x8000), len, isWrite, MemTxAttrs.UNSPECIFIED);
                        if (m == null) {
                            waits.incrementAndGet();
                            CountDownLatch told = new CountDownLatch(1);
                            as.registerMapClient(told::countDown);
                            if (!told.await(20, TimeUnit.SECONDS)) {
                                failure.compareAndSet(null, "lost wake-up: a map client was never told");
                            }
                            continue;
                        }
                        mapped.incrementAndGet();
                        long n = m.length();
                        if (n < 1 || n > len) {
                            failure.compareAndSet(null, "length=" + n + " asked=" + len);
                        }
                        long now = held.addAndGet(n);
                        if (now > MAX) {
                            failure.compareAndSet(null, "held=" + now + " max=" + MAX);
                        }
                        if (isWrite) {
                            m.segment().fill((byte) i);
                        }
                        // Counted out before the unmap releases it, so held never exceeds the counter.
                        held.addAndGet(-n);
                        as.unmap(m, isWrite, rnd.nextLong(n + 1));
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e.toString());
                }
            }, "dma-stress-" + t));
        }
        AtomicLong samples = new AtomicLong();
        Thread monitor = new Thread(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                long v = as.bounceBufferSize();
                if (v < 0 || v > MAX) {
                    failure.compareAndSet(null, "bounceBufferSize=" + v + " max=" + MAX);
                }
                samples.incrementAndGet();
                Thread.onSpinWait();
            }
        }, "dma-stress-monitor");
        monitor.setDaemon(true);
        monitor.start();
        // The whole budget is held when the workers start, so the wait path runs however the scheduler interleaves
        // them (on a loaded machine they may otherwise run one after another and never contend).
        DmaMapping all = as.map(0x1000, MAX, false, MemTxAttrs.UNSPECIFIED);
        assertEquals(MAX, all.length());
        workers.forEach(Thread::start);
        start.countDown();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (waits.get() == 0 && failure.get() == null && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        as.unmap(all, false, 0);
        for (Thread w : workers) {
            w.join(TimeUnit.MINUTES.toMillis(5));
            assertTrue(!w.isAlive(), w.getName() + " did not finish");
        }
        monitor.interrupt();
        monitor.join();
        assertEquals(null, failure.get());
        assertEquals(0, as.bounceBufferSize(), "every byte came back");
        assertEquals(0, held.get());
        assertTrue(mapped.get() > 0 && samples.get() > 0, "mapped=" + mapped + " samples=" + samples);
        // Every worker's first map found the budget held: it must have been refused and waited, not mapped.
        assertTrue(waits.get() > 0, "waits=" + waits);
    }

    /**
     * The race QEMU orders with a full barrier on each side: one thread unmaps the only bounce buffer while another
     * registers a map client. Whichever comes first, the client must be told exactly once in that round, since no
     * later unmap will tell it. Forbidden: a round that ends with the client untold (a lost wake-up) or told twice.
     */
    @Test
    void aClientRegisteredWhileTheLastBufferIsUnmappedIsAlwaysTold() throws Exception {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.io("dev", 0x1000, MemoryRegionOps.builder().write((a, d, s) -> { }).build()));
        AddressSpace as = system.addressSpace("as", root);
        int rounds = ITERATIONS * 10;
        CyclicBarrier barrier = new CyclicBarrier(2);
        AtomicReference<DmaMapping> current = new AtomicReference<>();
        AtomicInteger told = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Runnable client = told::incrementAndGet;
        Thread unmapper = new Thread(() -> {
            try {
                for (int i = 0; i < rounds; i++) {
                    barrier.await(); // round starts: the budget is all mapped
                    as.unmap(current.get(), true, 0);
                    barrier.await(); // round ends
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        }, "dma-race-unmapper");
        unmapper.start();
        for (int i = 0; i < rounds; i++) {
            DmaMapping all = as.map(0, MAX, true, MemTxAttrs.UNSPECIFIED);
            assertEquals(MAX, all.length());
            current.set(all);
            told.set(0);
            barrier.await(10, TimeUnit.SECONDS);
            as.registerMapClient(client);
            barrier.await(10, TimeUnit.SECONDS);
            assertEquals(1, told.get(), "round " + i + ": told " + told.get() + " times");
        }
        unmapper.join();
        assertEquals(null, failure.get());
        assertEquals(0, as.bounceBufferSize());
    }
}
