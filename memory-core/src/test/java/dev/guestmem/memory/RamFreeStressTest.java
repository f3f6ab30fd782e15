package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * Freeing RAM under concurrent readers. A writer maps generation after generation of a RAM region at one window:
 * it makes region {@code g} (anonymous RAM, its own arena), fills every 8-byte word with {@code g}, swaps it in for
 * region {@code g - 1} in one transaction, publishes {@code g} in a volatile counter, and destroys region
 * {@code g - 1}, whose arena is then closed after a grace period. Readers of three kinds run meanwhile:
 * <ul>
 *   <li>unregistered threads loading words through the address space ({@code ldqLe}) and through a {@link SoftTlb},
 *   and copying the whole window
 *   with {@code read} from 8 bytes below it to 64 bytes past it: a device first, then the RAM, then a hole. On every
 *   other copy the device's read callback waits (up to {@value #WAIT_MILLIS} ms) until the regions the copy's view
 *   can map have been freed, so the copy reaches RAM whose arena is closed and must finish on the current view;</li>
 *   <li>a registered thread that, inside read-side sections, translates the window to its region and reads that
 *   region's segment directly, many times over.</li>
 * </ul>
 * A reader reads the counter ({@code c0}) before an access and again ({@code c1}) after. Forbidden outcomes:
 * <ul>
 *   <li>any exception (an access that lost the race with a close must have been redone, a section's memory must
 *   stay open);</li>
 *   <li>a word outside {@code [c0, c1 + 1]}: memory of a region unmapped before the access began, freed memory
 *   reused by another allocation, or zeros;</li>
 *   <li>inside one section, the region's words changing.</li>
 * </ul>
 * Required: many generations freed while readers ran. Runs {@value #DEFAULT_SECONDS} s by default; soak with
 * {@code -Dguestmem.free.stress.seconds=600}.
 */
class RamFreeStressTest {
    static final long DEFAULT_SECONDS = 2;
    private static final long SECONDS = Long.getLong("guestmem.free.stress.seconds", DEFAULT_SECONDS);
    private static final long WINDOW = 0x1_0000_0000L;
    private static final long SIZE = 0x4000;
    static final long WAIT_MILLIS = 100;

    @Test
    void readersNeverSeeFreedMemoryNorFail() throws InterruptedException {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("as", root);
        AtomicLong published = new AtomicLong();
        AtomicBoolean stop = new AtomicBoolean();
        MemoryRegion first = filled(sys, 1);
        root.addSubregion(WINDOW, first);
        // Generation -> its block, for the device to see when the copy's RAM is gone.
        ConcurrentHashMap<Long, AbstractRamBlock> blocks = new ConcurrentHashMap<>();
        blocks.put(1L, (AbstractRamBlock) first.ramBlock());
        AtomicLong copyStart = new AtomicLong(-1);
        AtomicLong copiesAfterFree = new AtomicLong();
        root.addSubregion(WINDOW - 8, sys.io("dev", 8, MemoryRegionOps.builder().read((a, size) -> {
            long c0 = copyStart.get();
            if (c0 >= 0) {
                // The copy's view maps generation c0 or c0 + 1: wait until both are freed.
                long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MILLIS);
                while (System.nanoTime() < until && !stop.get()) {
                    AbstractRamBlock b0 = blocks.get(c0);
                    AbstractRamBlock b1 = blocks.get(c0 + 1);
                    if (b0 != null && b0.isReleased() && b1 != null && b1.isReleased()) {
                        copiesAfterFree.incrementAndGet();
                        break;
                    }
                    LockSupport.parkNanos(20_000);
                }
            }
            return 0;
            // It waits for the writer's commits, which take the global lock: it must not hold that lock itself.
        }).clearGlobalLocking().build()));
        published.set(1);

        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicLong accesses = new AtomicLong();
        List<Thread> readers = new ArrayList<>();
        readers.add(reader("ldq", stop, failure, () -> {
            SplittableRandom rnd = new SplittableRandom(1);
            int[] r = new int[1];
            long n = 0;
            while (!stop.get() && failure.get() == null) {
                long a = WINDOW + (rnd.nextLong(SIZE / 8) << 3);
                long c0 = published.get();
                long v = as.ldqLe(a, MemTxAttrs.UNSPECIFIED, r);
                long c1 = published.get();
                check(v, c0, c1, "ldqLe at " + Long.toHexString(a));
                assertEquals(MemTxResult.OK, r[0]);
                n++;
            }
            accesses.addAndGet(n);
        }));
        readers.add(reader("tlb", stop, failure, () -> {
            SplittableRandom rnd = new SplittableRandom(2);
            SoftTlb tlb = new SoftTlb(as);
            long n = 0;
            while (!stop.get() && failure.get() == null) {
                long a = WINDOW + (rnd.nextLong(SIZE / 8) << 3);
                long c0 = published.get();
                long v = tlb.ldqLe(a);
                long c1 = published.get();
                check(v, c0, c1, "SoftTlb.ldqLe at " + Long.toHexString(a));
                assertEquals(MemTxResult.OK, tlb.takeResult());
                n++;
            }
            accesses.addAndGet(n);
        }));
        readers.add(reader("read", stop, failure, () -> {
            byte[] buf = new byte[8 + (int) SIZE + 64];
            MemorySegment b = MemorySegment.ofArray(buf);
            long n = 0;
            while (!stop.get() && failure.get() == null) {
                long c0 = published.get();
                copyStart.set((n & 1) == 0 ? c0 : -1);
                int res = as.read(WINDOW - 8, MemTxAttrs.UNSPECIFIED, buf, 0, buf.length);
                long c1 = published.get();
                // The last 64 bytes are past the region: a hole, which reads as zeros with DECODE_ERROR.
                assertEquals(MemTxResult.DECODE_ERROR, res);
                for (int i = 8; i < 8 + SIZE; i += 8) {
                    check(b.get(ValueLayout.JAVA_LONG_UNALIGNED, i), c0, c1, "read word " + i);
                }
                n++;
            }
            accesses.addAndGet(n);
        }));
        readers.add(reader("section", stop, failure, () -> {
            long n = 0;
            try (Rcu.Reader rcu = sys.rcu().register()) {
                while (!stop.get() && failure.get() == null) {
                    rcu.lock();
                    try {
                        long c0 = published.get();
                        Translation t = as.translate(WINDOW, 8, false, MemTxAttrs.UNSPECIFIED);
                        MemorySegment seg = t.region().ramSegment();
                        long v = seg.get(ValueLayout.JAVA_LONG, 0);
                        check(v, c0, published.get(), "section");
                        for (int round = 0; round < 32; round++) {
                            for (long off = 0; off < SIZE; off += 512) {
                                long w = seg.get(ValueLayout.JAVA_LONG, off);
                                if (w != v) {
                                    throw new AssertionError("region changed inside a section: " + w + " != " + v);
                                }
                            }
                        }
                    } finally {
                        rcu.unlock();
                    }
                    n++;
                }
            }
            accesses.addAndGet(n);
        }));

        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(SECONDS);
        MemoryRegion mapped = first;
        long g = 1;
        List<AbstractRamBlock> freed = new ArrayList<>();
        try {
            while (System.nanoTime() < end && failure.get() == null) {
                MemoryRegion next = filled(sys, ++g);
                blocks.put(g, (AbstractRamBlock) next.ramBlock());
                MemoryRegion old = mapped;
                sys.transaction(() -> {
                    root.delSubregion(old);
                    root.addSubregion(WINDOW, next);
                });
                published.set(g);
                old.destroy();
                freed.add((AbstractRamBlock) old.ramBlock());
                mapped = next;
                // Keep the frees (a handshake each) from falling far behind, so waiting copies see theirs soon.
                AbstractRamBlock behind = blocks.get(g - 4);
                while (behind != null && !behind.isReleased() && failure.get() == null) {
                    Thread.yield();
                }
            }
        } finally {
            stop.set(true);
            for (Thread t : readers) {
                t.join(30_000);
            }
        }
        if (failure.get() != null) {
            fail(failure.get());
        }
        sys.rcu().barrier();
        long released = freed.stream().filter(AbstractRamBlock::isReleased).count();
        assertEquals(freed.size(), released, "every destroyed block is freed once readers are gone");
        System.out.printf("RamFreeStressTest: %d generations freed, %d accesses, %d copies reached freed RAM%n",
                g - 1, accesses.get(), copiesAfterFree.get());
        assertTrue(g > 50, "generations=" + g);
        assertTrue(accesses.get() > 1000, "accesses=" + accesses.get());
        assertTrue(copiesAfterFree.get() >= 10, "copies that reached freed RAM=" + copiesAfterFree.get());
    }

    private static MemoryRegion filled(MemorySystem sys, long g) {
        MemoryRegion r = sys.ram("gen", SIZE);
        MemorySegment s = r.ramSegment();
        for (long off = 0; off < SIZE; off += 8) {
            s.set(ValueLayout.JAVA_LONG, off, g);
        }
        return r;
    }

    private static void check(long v, long c0, long c1, String what) {
        if (v < c0 || v > c1 + 1) {
            throw new AssertionError(what + ": read generation " + v + ", but generations " + c0 + " to " + (c1 + 1)
                    + " were the only ones mapped during the access");
        }
    }

    private static Thread reader(String name, AtomicBoolean stop, AtomicReference<Throwable> failure, Runnable body) {
        return Thread.ofPlatform().name("reader-" + name).start(() -> {
            try {
                body.run();
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                stop.set(true);
            }
        });
    }
}
