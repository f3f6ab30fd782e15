package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Freeing mapped RAM while other threads still hammer segments they kept (against the rules, which the access path
 * keeps): the shared arena's close makes every such access fail with {@link IllegalStateException} before the
 * memory is unmapped, so no thread ever touches unmapped memory and the JVM lives on. Forbidden outcomes: a crash, an
 * access that succeeds after the free, any other exception.
 */
class FreeUnderReadersTest {
    @Test
    void threadsStillUsingAFreedBlocksSegmentGetIllegalStateException() throws InterruptedException {
        for (HostMemoryBackend backend : new HostMemoryBackend[] {
            HostMemoryBackend.anonymous().build(), HostMemoryBackend.memfd().build()}) {
            MemorySystem sys = new MemorySystem();
            MemoryRegion ram = sys.ram("ram", 1 << 20, backend);
            MemorySegment kept = ram.ramSegment();
            int threads = 3;
            CountDownLatch running = new CountDownLatch(threads);
            List<AtomicReference<Throwable>> ends = new ArrayList<>();
            AtomicLong accesses = new AtomicLong();
            Thread[] workers = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                int id = t;
                ends.add(new AtomicReference<>());
                workers[t] = Thread.ofPlatform().start(() -> {
                    long n = 0;
                    try {
                        for (long i = 0; ; i = (i + 4096) & ((1 << 20) - 1)) {
                            if (id == 0) {
                                kept.asSlice(i, 4096).fill((byte) n);
                            } else {
                                kept.set(ValueLayout.JAVA_LONG, i + 8 * id, kept.get(ValueLayout.JAVA_LONG, i) + 1);
                            }
                            if (n++ == 0) {
                                running.countDown(); // the free starts once every thread is accessing
                            }
                        }
                    } catch (Throwable e) {
                        ends.get(id).set(e);
                    } finally {
                        accesses.addAndGet(n);
                    }
                });
            }
            assertTrue(running.await(120, java.util.concurrent.TimeUnit.SECONDS), "a thread failed its first access");
            ram.destroy();
            sys.rcu().barrier();
            for (Thread w : workers) {
                w.join();
            }
            for (AtomicReference<Throwable> end : ends) {
                assertInstanceOf(IllegalStateException.class, end.get(), backend.toString());
            }
            assertTrue(accesses.get() >= threads, "every thread accessed the memory before the free");
            assertFalse(ProcSelf.isMapped(kept.address()), "unmapped after every access stopped");
            System.out.printf("FreeUnderReadersTest: %s: %d accesses before the free stopped them%n", backend,
                    accesses.get());
        }
    }
}
