package dev.guestmem.memory;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The machine's global lock (QEMU's BQL) as the access path uses it: MMIO to regions that keep global locking runs
 * under it and is serialized across vCPU threads, ops that clear it are dispatched without it (concurrently), RAM
 * never takes it, coalesced MMIO is flushed under it, and the documented order with the topology lock lets a device
 * remap itself from its own callback while other threads reach MMIO from inside transactions.
 *
 * <p>Deadlock guards: every multi-threaded case runs its threads in an executor and waits at most
 * {@link #DEADLOCK_SECONDS} for them, so a deadlock fails the test instead of hanging the build; no assertion
 * depends on how long anything took.
 */
class GlobalLockTest {
    private static final long DEADLOCK_SECONDS = 120;
    private static final long DEVICE = 0x1000_0000L;
    private static final int ACCESSES = 20_000;

    /**
     * A device whose counter is not atomic: a write reads it, lets other threads run, and stores it plus one; it
     * also counts how many threads are inside its callbacks at once.
     */
    static final class RacyCounter {
        long count;
        final AtomicInteger inside = new AtomicInteger();
        final AtomicInteger maxInside = new AtomicInteger();
        final AtomicLong overlaps = new AtomicLong();

        void write(long addr, long data, int size) {
            enter();
            try {
                final long c = count;
                for (int i = 0; i < 20; i++) {
                    Thread.onSpinWait();
                }
                count = c + 1;
            } finally {
                inside.decrementAndGet();
            }
        }

        long read(long addr, int size) {
            return count;
        }

        void enter() {
            final int now = inside.incrementAndGet();
            maxInside.accumulateAndGet(now, Math::max);
            if (now > 1) {
                overlaps.incrementAndGet();
            }
        }
    }

    private static AddressSpace machine(MemorySystem m, MemoryRegion device) {
        MemoryRegion root = m.container("system", U64.SIZE_2_64);
        m.transaction(() -> {
            root.addSubregion(0, m.ram("ram", 0x10000));
            root.addSubregion(DEVICE, device);
        });
        return m.addressSpace("memory", root);
    }

    private static void runAll(List<java.util.concurrent.Callable<Void>> tasks) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(tasks.size());
        try {
            List<Future<Void>> futures = new ArrayList<>();
            for (var t : tasks) {
                futures.add(pool.submit(t));
            }
            for (Future<Void> f : futures) {
                f.get(DEADLOCK_SECONDS, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void twoVcpusOnALockedDeviceLoseNothingAndNeverOverlap() throws Exception {
        MemorySystem m = new MemorySystem();
        RacyCounter dev = new RacyCounter();
        AddressSpace as = machine(m, m.io("counter", 8, MemoryRegionOps.builder()
                .read(dev::read).write(dev::write).valid(1, 8, false).impl(1, 8, false).build()));
        CyclicBarrier start = new CyclicBarrier(2);
        java.util.concurrent.Callable<Void> vcpu = () -> {
            start.await();
            for (int i = 0; i < ACCESSES; i++) {
                assertEquals(MemTxResult.OK, as.stqLe(DEVICE, 1, MemTxAttrs.UNSPECIFIED));
            }
            return null;
        };
        runAll(List.of(vcpu, vcpu));
        // Forbidden: a lost increment, two threads inside the device at once.
        assertEquals(2L * ACCESSES, dev.count);
        assertEquals(1, dev.maxInside.get());
        assertFalse(m.globalLock().isHeld());
    }

    @Test
    void clearedGlobalLockingLetsASelfSynchronizedDeviceRunConcurrently() throws Exception {
        MemorySystem m = new MemorySystem();
        AtomicLong count = new AtomicLong();
        RacyCounter overlap = new RacyCounter();
        // Both vCPUs must be inside the device together once: its first write from each thread waits for the
        // other's. Under the global lock the second could never enter, and the guard below would fail the test.
        CountDownLatch bothInside = new CountDownLatch(2);
        AtomicInteger lockHeldInCallback = new AtomicInteger();
        ThreadLocal<Boolean> first = ThreadLocal.withInitial(() -> true);
        MemoryRegionOps ops = MemoryRegionOps.builder()
                .read((a, s) -> count.get())
                .write((a, d, s) -> {
                    overlap.enter();
                    try {
                        if (m.globalLock().isHeld()) {
                            lockHeldInCallback.incrementAndGet();
                        }
                        if (first.get()) {
                            first.set(false);
                            bothInside.countDown();
                            try {
                                assertTrue(bothInside.await(DEADLOCK_SECONDS, TimeUnit.SECONDS),
                                        "the other vCPU never entered the device");
                            } catch (InterruptedException e) {
                                throw new IllegalStateException(e);
                            }
                        }
                        count.incrementAndGet();
                    } finally {
                        overlap.inside.decrementAndGet();
                    }
                })
                .valid(1, 8, false).impl(1, 8, false)
                .clearGlobalLocking()
                .build();
        assertFalse(ops.globalLocking());
        AddressSpace as = machine(m, m.io("self-synchronized", 8, ops));
        java.util.concurrent.Callable<Void> vcpu = () -> {
            for (int i = 0; i < ACCESSES; i++) {
                as.stqLe(DEVICE, 1, MemTxAttrs.UNSPECIFIED);
            }
            return null;
        };
        runAll(List.of(vcpu, vcpu));
        assertEquals(2L * ACCESSES, count.get());
        assertEquals(0, lockHeldInCallback.get(), "a cleared region was dispatched under the lock");
        assertEquals(2, overlap.maxInside.get());
        assertTrue(overlap.overlaps.get() >= 1, "overlapping accesses: " + overlap.overlaps.get());
        System.out.println("GlobalLockTest: accesses that found the other vCPU inside the device: "
                + overlap.overlaps.get() + " of " + 2 * ACCESSES);
    }

    @Test
    void callbacksSeeTheLockHeldOnlyWhenTheyKeepGlobalLocking() {
        MemorySystem m = new MemorySystem();
        List<Boolean> seen = new ArrayList<>();
        MemoryRegion locked = m.io("locked", 4, MemoryRegionOps.builder()
                .read((a, s) -> {
                    seen.add(m.globalLock().isHeld());
                    return 0;
                }).build());
        MemoryRegion free = m.io("free", 4, MemoryRegionOps.builder()
                .read((a, s) -> {
                    seen.add(m.globalLock().isHeld());
                    return 0;
                }).clearGlobalLocking().build());
        MemoryRegion root = m.container("system", U64.SIZE_2_64);
        m.transaction(() -> {
            root.addSubregion(0x1000, locked);
            root.addSubregion(0x2000, free);
        });
        AddressSpace as = m.addressSpace("memory", root);
        as.ldlLe(0x1000, MemTxAttrs.UNSPECIFIED, null);
        as.ldlLe(0x2000, MemTxAttrs.UNSPECIFIED, null);
        assertFalse(m.globalLock().isHeld(), "released after the access");
        // A caller that holds it keeps it, once: the access path does not take it again.
        m.globalLock().lock();
        try {
            as.ldlLe(0x1000, MemTxAttrs.UNSPECIFIED, null);
            as.ldlLe(0x2000, MemTxAttrs.UNSPECIFIED, null);
            assertTrue(m.globalLock().isHeld());
        } finally {
            m.globalLock().unlock();
        }
        assertFalse(m.globalLock().isHeld());
        assertEquals(List.of(true, false, true, true), seen);
    }

    @Test
    void ramAndClearedRegionsNeverWaitForTheLock() throws Exception {
        MemorySystem m = new MemorySystem();
        AtomicLong reads = new AtomicLong();
        AddressSpace as = machine(m, m.io("free", 8, MemoryRegionOps.builder()
                .read((a, s) -> reads.incrementAndGet()).clearGlobalLocking().build()));
        CountDownLatch held = new CountDownLatch(1);
        CountDownLatch done = new CountDownLatch(1);
        ExecutorService owner = Executors.newSingleThreadExecutor();
        try {
            owner.submit(() -> {
                m.globalLock().lock();
                try {
                    held.countDown();
                    done.await();
                } finally {
                    m.globalLock().unlock();
                }
                return null;
            });
            assertTrue(held.await(DEADLOCK_SECONDS, TimeUnit.SECONDS));
            // Another thread holds the lock for the whole of this: RAM and the cleared device still answer.
            runAll(List.of(() -> {
                for (int i = 0; i < 1000; i++) {
                    as.stqLe(8L * (i % 64), i, MemTxAttrs.UNSPECIFIED);
                    assertEquals(i, as.ldqLe(8L * (i % 64), MemTxAttrs.UNSPECIFIED, null));
                    as.ldlLe(DEVICE, MemTxAttrs.UNSPECIFIED, null);
                }
                return null;
            }));
            assertEquals(1000, reads.get());
        } finally {
            done.countDown();
            owner.shutdown();
            assertTrue(owner.awaitTermination(DEADLOCK_SECONDS, TimeUnit.SECONDS));
        }
    }

    @Test
    void aDeviceRemapsItsBarFromAnMmioWriteWhileOthersReachMmioInsideTransactions() throws Exception {
        MemorySystem m = new MemorySystem();
        MemoryRegion root = m.container("system", U64.SIZE_2_64);
        MemoryRegion[] bar = new MemoryRegion[1];
        AtomicLong moves = new AtomicLong();
        // Writing an address to the control register moves the BAR there: a transaction inside a callback.
        MemoryRegion control = m.io("control", 8, MemoryRegionOps.builder()
                .read((a, s) -> bar[0].addr())
                .write((a, d, s) -> {
                    bar[0].setAddress(d);
                    moves.incrementAndGet();
                })
                .valid(1, 8, false).impl(1, 8, false).build());
        bar[0] = m.io("bar", 0x1000, MemoryRegionOps.builder().read((a, s) -> 0x5a).build());
        MemoryRegion other = m.ram("other", 0x1000);
        m.transaction(() -> {
            root.addSubregion(0x1000, control);
            root.addSubregion(0x10_0000, bar[0]);
            root.addSubregion(0x20_0000, other);
        });
        AddressSpace as = m.addressSpace("memory", root);
        int rounds = 2000;
        runAll(List.of(
                () -> { // a vCPU: the device moves its BAR between two slots
                    for (int i = 0; i < rounds; i++) {
                        long to = (i & 1) == 0 ? 0x30_0000 : 0x10_0000;
                        assertEquals(MemTxResult.OK, as.stqLe(0x1000, to, MemTxAttrs.UNSPECIFIED));
                        assertEquals(0x5a, as.ldub(to, MemTxAttrs.UNSPECIFIED, null));
                    }
                    return null;
                },
                () -> { // the main loop: transactions that read the device's register on the way
                    for (int i = 0; i < rounds; i++) {
                        final boolean on = (i & 1) == 0;
                        m.transaction(() -> {
                            long at = as.ldqLe(0x1000, MemTxAttrs.UNSPECIFIED, null);
                            assertTrue(at == 0x10_0000 || at == 0x30_0000, "bar at " + U64.hex(at));
                            other.setEnabled(on);
                        });
                    }
                    return null;
                }));
        assertEquals(rounds, moves.get());
        assertFalse(m.globalLock().isHeld());
    }

    @Test
    void coalescedMmioIsFlushedUnderTheLockBeforeTheAccess() {
        MemorySystem m = new MemorySystem();
        List<String> events = new ArrayList<>();
        MemoryRegion[] regions = new MemoryRegion[2];
        AddressSpace[] as = new AddressSpace[1];
        m.globalLock().setCoalescedMmioFlush(() -> {
            events.add("flush held=" + m.globalLock().isHeld());
            // A flush delivers buffered writes, which may reach flush-coalesced regions: no flush inside a flush.
            as[0].stb(0x2000, 1, MemTxAttrs.UNSPECIFIED);
        });
        regions[0] = m.io("locked", 4, MemoryRegionOps.builder()
                .write((a, d, s) -> events.add("locked held=" + m.globalLock().isHeld())).build());
        regions[1] = m.io("free", 4, MemoryRegionOps.builder()
                .write((a, d, s) -> events.add("free held=" + m.globalLock().isHeld()))
                .clearGlobalLocking().build());
        MemoryRegion root = m.container("system", U64.SIZE_2_64);
        m.transaction(() -> {
            root.addSubregion(0x1000, regions[0]);
            root.addSubregion(0x2000, regions[1]);
        });
        as[0] = m.addressSpace("memory", root);
        as[0].stb(0x1000, 1, MemTxAttrs.UNSPECIFIED);
        assertEquals(List.of("locked held=true"), events, "no flush for a region that does not ask");
        events.clear();
        regions[0].setFlushCoalesced();
        regions[1].setFlushCoalesced();
        as[0].stb(0x1000, 1, MemTxAttrs.UNSPECIFIED);
        assertEquals(List.of("flush held=true", "free held=true", "locked held=true"), events);
        events.clear();
        as[0].stb(0x2000, 1, MemTxAttrs.UNSPECIFIED);
        // The cleared region: the flush under the lock, taken for it alone; the access without it.
        assertEquals(List.of("flush held=true", "free held=true", "free held=false"), events);
        assertFalse(m.globalLock().isHeld());
    }

    @Test
    void aLockWhoseOwnerEndedIsRefusedByName() throws Exception {
        MemorySystem m = new MemorySystem();
        Thread t = Thread.ofPlatform().name("dies-holding-the-bql").start(() -> m.globalLock().lock());
        t.join();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> m.globalLock().lock());
        assertTrue(e.getMessage().startsWith("globalLock owner=dies-holding-the-bql "), e.getMessage());
        assertThrows(IllegalMonitorStateException.class, () -> m.globalLock().unlock());
    }
}
