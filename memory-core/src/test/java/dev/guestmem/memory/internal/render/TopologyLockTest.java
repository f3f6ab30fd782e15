package dev.guestmem.memory.internal.render;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A thread that opens a transaction and dies holding the topology lock is reported by name to every later writer,
 * to one already waiting when it dies as well as to one that comes after, instead of blocking them forever. Real
 * threads that really end; no timing in the assertions (a waiter that never wakes fails by the suite's timeout).
 */
class TopologyLockTest {
    /** begin() takes the global lock before the topology lock, so the global lock is the one that names the owner. */
    private static final String EXPECTED = "globalLock owner=dies-in-a-transaction ownerId=%d state=TERMINATED: the "
            + "thread ended holding the global lock (inside a transaction, or between lock() and unlock()); nothing "
            + "that needs it can run any more";

    @Test
    void writersAfterAHolderDiedAreToldItsName() throws Exception {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = sys.container("root", 0x10000);
        CountDownLatch holding = new CountDownLatch(1);
        CountDownLatch die = new CountDownLatch(1);
        Thread holder = new Thread(() -> {
            sys.begin();
            holding.countDown();
            try {
                die.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            // ends without commit(), the lock still held
        }, "dies-in-a-transaction");
        holder.start();
        holding.await();

        // A writer already waiting when the holder dies.
        AtomicReference<Throwable> waiterSaw = new AtomicReference<>();
        Thread waiter = new Thread(() -> {
            try {
                root.addSubregion(0, sys.container("c", 0x100));
            } catch (Throwable t) {
                waiterSaw.set(t);
            }
        }, "waiting-writer");
        waiter.start();
        while (waiter.getState() != Thread.State.TIMED_WAITING && waiter.getState() != Thread.State.WAITING) {
            Thread.onSpinWait(); // until it waits for the lock (a state, not a time)
        }
        die.countDown();
        holder.join();
        waiter.join();

        String expected = String.format(EXPECTED, holder.threadId());
        assertNotNull(waiterSaw.get(), "the waiting writer was released");
        assertEquals(IllegalStateException.class, waiterSaw.get().getClass());
        assertEquals(expected, waiterSaw.get().getMessage());

        // And every writer after it, on this thread.
        IllegalStateException e = assertThrows(IllegalStateException.class, sys::begin);
        assertEquals(expected, e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> root.setEnabled(false));
        assertEquals(expected, e.getMessage());
        assertTrue(root.subregions().isEmpty(), "the waiting writer's change was not made");
    }

    @Test
    void aLiveHolderIsWaitedForAndAnInterruptIsKept() throws Exception {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = sys.container("root", 0x10000);
        CountDownLatch holding = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread holder = new Thread(() -> {
            sys.begin();
            holding.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                sys.commit();
            }
        }, "holder");
        holder.start();
        holding.await();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        boolean[] interruptKept = new boolean[1];
        Thread waiter = new Thread(() -> {
            try {
                root.addSubregion(0, sys.container("c", 0x100));
                interruptKept[0] = Thread.currentThread().isInterrupted();
            } catch (Throwable t) {
                failure.set(t);
            }
        }, "waiter");
        waiter.start();
        while (waiter.getState() != Thread.State.TIMED_WAITING && waiter.getState() != Thread.State.WAITING) {
            Thread.onSpinWait();
        }
        waiter.interrupt();
        release.countDown();
        waiter.join();
        holder.join();
        assertEquals(null, failure.get());
        assertEquals("c", root.subregions().getFirst().name(), "the waiter's change was made after the holder's");
        assertTrue(interruptKept[0], "the interrupt that came during the wait is set again");
    }
}
