package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * {@link Rcu}: what a grace period waits for and what it does not, callbacks and barriers, misuse, and a stress test
 * of the one promise readers rely on.
 *
 * <p>Tests that show a grace period <em>waiting</em> check that it has not ended while a reader is still inside a
 * section (after giving it 200 ms to end wrongly), then that it ends once the reader leaves. They cannot pass when
 * {@link Rcu#synchronize()} ignores readers; they never depend on the machine being fast.
 */
class RcuTest {
    private static final long STRESS_SECONDS = Long.getLong("guestmem.rcu.stress.seconds", 2);

    /** A thread that registers, locks, and holds the section until told to leave. */
    private static final class HoldingReader implements AutoCloseable {
        final CountDownLatch inside = new CountDownLatch(1);
        /** Opens to unlock all but the outermost section. */
        final CountDownLatch leaveInner = new CountDownLatch(1);
        final CountDownLatch leave = new CountDownLatch(1);
        final Thread thread;

        HoldingReader(Rcu rcu, int depth) throws InterruptedException {
            thread = Thread.ofPlatform().start(() -> {
                try (Rcu.Reader r = rcu.register()) {
                    for (int i = 0; i < depth; i++) {
                        r.lock();
                    }
                    inside.countDown();
                    awaitQuietly(leaveInner);
                    for (int i = 0; i < depth - 1; i++) {
                        r.unlock();
                    }
                    assertTrue(r.locked(), "still inside the outermost section");
                    awaitQuietly(leave);
                    r.unlock();
                }
            });
            assertTrue(inside.await(10, TimeUnit.SECONDS));
        }

        void leave() throws InterruptedException {
            leaveInner.countDown();
            leave.countDown();
            thread.join(10_000);
            assertFalse(thread.isAlive());
        }

        @Override
        public void close() {
            try {
                leave();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }

    private static void awaitQuietly(CountDownLatch l) {
        try {
            l.await();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    /** Runs {@code rcu.synchronize()} on a thread of its own; the latch opens when it returns. */
    private static CountDownLatch synchronizeAsync(Rcu rcu) {
        CountDownLatch done = new CountDownLatch(1);
        Thread.ofPlatform().daemon().start(() -> {
            rcu.synchronize();
            done.countDown();
        });
        return done;
    }

    @Test
    void aGracePeriodWithNoReaderInsideEndsAtOnce() {
        Rcu rcu = new Rcu("t");
        try (Rcu.Reader idle = rcu.register()) {
            idle.lock();
            idle.unlock();
            Thread.ofPlatform().start(rcu::synchronize).join();
            assertEquals(1, rcu.gracePeriods());
        } catch (InterruptedException e) {
            fail(e);
        }
    }

    @Test
    void aGracePeriodWaitsForASectionThatBeganBeforeIt() throws InterruptedException {
        Rcu rcu = new Rcu("t");
        try (HoldingReader reader = new HoldingReader(rcu, 1)) {
            CountDownLatch done = synchronizeAsync(rcu);
            assertFalse(done.await(200, TimeUnit.MILLISECONDS), "the grace period ended with a reader inside");
            reader.leave();
            assertTrue(done.await(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void nestedSectionsEndAtTheOutermostUnlock() throws InterruptedException {
        Rcu rcu = new Rcu("t");
        HoldingReader reader = new HoldingReader(rcu, 3);
        CountDownLatch done = synchronizeAsync(rcu);
        // The reader unlocks two of its three levels; the grace period must still wait.
        reader.leaveInner.countDown();
        assertFalse(done.await(200, TimeUnit.MILLISECONDS), "ended while the outermost section was open");
        reader.leave();
        assertTrue(done.await(10, TimeUnit.SECONDS));
    }

    @Test
    @SuppressWarnings("try") // young is never named: it is there only to hold a section open while old leaves
    void aGracePeriodDoesNotWaitForSectionsThatBeganAfterIt() throws InterruptedException {
        Rcu rcu = new Rcu("t");
        HoldingReader old = new HoldingReader(rcu, 1);
        CountDownLatch done = synchronizeAsync(rcu);
        assertFalse(done.await(200, TimeUnit.MILLISECONDS));
        // This section begins after the epoch moved on: it sees what was published before, and is not waited for.
        try (HoldingReader young = new HoldingReader(rcu, 1)) {
            old.leave();
            assertTrue(done.await(10, TimeUnit.SECONDS), "waited for a section that began after the grace period");
        }
    }

    @Test
    void aThreadThatDiedInsideASectionDoesNotStallGracePeriods() throws InterruptedException {
        Rcu rcu = new Rcu("t");
        Thread dying = Thread.ofPlatform().uncaughtExceptionHandler((t, e) -> { }).start(() -> {
            Rcu.Reader r = rcu.register();
            r.lock();
            throw new IllegalStateException("planted: the thread ends without unlocking");
        });
        dying.join(10_000);
        assertFalse(dying.isAlive());
        assertEquals(1, rcu.readerCount());
        CountDownLatch done = synchronizeAsync(rcu);
        assertTrue(done.await(10, TimeUnit.SECONDS), "a dead reader stalled the grace period");
        assertEquals(0, rcu.readerCount(), "the dead reader is dropped");
    }

    @Test
    void callbacksRunAfterAGracePeriodInOrder() throws InterruptedException {
        Rcu rcu = new Rcu("t");
        List<Integer> ran = java.util.Collections.synchronizedList(new ArrayList<>());
        HoldingReader reader = new HoldingReader(rcu, 1);
        for (int i = 0; i < 5; i++) {
            int n = i;
            rcu.call(() -> ran.add(n));
        }
        Thread.sleep(200);
        assertEquals(List.of(), ran, "a callback ran while a reader that began before it was inside");
        reader.leave();
        rcu.barrier();
        assertEquals(List.of(0, 1, 2, 3, 4), ran);
    }

    @Test
    void aFailingCallbackDoesNotStopTheOthers() {
        Rcu rcu = new Rcu("t");
        AtomicLong ran = new AtomicLong();
        rcu.call(() -> {
            throw new IllegalStateException("planted");
        });
        rcu.call(ran::incrementAndGet);
        rcu.barrier();
        assertEquals(1, ran.get());
    }

    @Test
    void waitingInsideOnesOwnSectionIsRefused() {
        Rcu rcu = new Rcu("t");
        try (Rcu.Reader r = rcu.register()) {
            r.lock();
            IllegalStateException e = assertThrows(IllegalStateException.class, rcu::synchronize);
            assertTrue(e.getMessage().contains("depth=1"), e.getMessage());
            assertThrows(IllegalStateException.class, rcu::barrier);
            assertThrows(IllegalStateException.class, r::close);
            r.unlock();
        }
    }

    @Test
    void misuseOfAReaderThrows() {
        Rcu rcu = new Rcu("t");
        Rcu.Reader r = rcu.register();
        IllegalStateException e = assertThrows(IllegalStateException.class, r::unlock);
        assertTrue(e.getMessage().contains("unlock without lock"), e.getMessage());
        r.close();
        r.close(); // idempotent
        assertEquals(0, rcu.readerCount());
        assertThrows(IllegalStateException.class, r::lock);
        assertFalse(r.locked());
    }

    @Test
    void aBarrierFromACallbackIsRefused() {
        Rcu rcu = new Rcu("t");
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        rcu.call(() -> {
            try {
                rcu.barrier();
            } catch (Throwable t) {
                thrown.set(t);
            }
        });
        rcu.barrier();
        assertTrue(thrown.get() instanceof IllegalStateException, String.valueOf(thrown.get()));
    }

    /**
     * The promise: an object a reader loaded inside a section is not reclaimed until the section ends. Readers load
     * the current object and check, many times over the section, that it is not poisoned; the writer replaces it,
     * and poisons the old one after {@code synchronize()} (half the time) or in a {@code call()} callback. Forbidden:
     * a reader seeing a poisoned object, or any exception. Required: readers saw many replacements.
     */
    @Test
    void noReaderEverSeesAnObjectReclaimedUnderIt() throws InterruptedException {
        final class Box {
            volatile long value;
            volatile boolean poisoned;

            Box(long value) {
                this.value = value;
            }
        }
        Rcu rcu = new Rcu("stress");
        AtomicReference<Box> current = new AtomicReference<>(new Box(0));
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicLong distinctSeen = new AtomicLong();
        List<Thread> readers = new ArrayList<>();
        for (int t = 0; t < 3; t++) {
            readers.add(Thread.ofPlatform().start(() -> {
                long last = -1;
                try (Rcu.Reader r = rcu.register()) {
                    while (!stop.get() && failure.get() == null) {
                        r.lock();
                        try {
                            Box b = current.get();
                            for (int i = 0; i < 64; i++) {
                                if (b.poisoned) {
                                    throw new AssertionError("reclaimed inside a section: value=" + b.value);
                                }
                                Thread.onSpinWait();
                            }
                            if (b.value != last) {
                                last = b.value;
                                distinctSeen.incrementAndGet();
                            }
                        } finally {
                            r.unlock();
                        }
                    }
                } catch (Throwable t2) {
                    failure.compareAndSet(null, t2);
                }
            }));
        }
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(STRESS_SECONDS);
        long replaced = 0;
        while (System.nanoTime() < end && failure.get() == null) {
            Box old = current.getAndSet(new Box(++replaced));
            if ((replaced & 1) == 0) {
                rcu.synchronize();
                old.poisoned = true;
            } else {
                rcu.call(() -> old.poisoned = true);
            }
        }
        rcu.barrier();
        stop.set(true);
        for (Thread t : readers) {
            t.join(10_000);
        }
        if (failure.get() != null) {
            fail(failure.get());
        }
        assertTrue(replaced > 100, "replacements=" + replaced);
        assertTrue(distinctSeen.get() > 100, "objects seen by readers=" + distinctSeen.get());
    }
}
