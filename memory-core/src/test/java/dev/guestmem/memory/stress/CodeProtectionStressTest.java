package dev.guestmem.memory.stress;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.Rcu;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Writers store into pages of code while a translator thread protects them, and the one promise of
 * {@link CodeProtection} is checked for every store: a store that begins after a protect of its page returned, with
 * no unprotect of the page since, is reported.
 *
 * <p>Threads: a <em>TLB writer</em> stores into pages 0..31 through its {@link SoftTlb}, or in the second run its
 * {@link HostTlb} (inside its RCU section, with a check point every 256 stores), each of the default size and again
 * of 8 entries, so that most stores refill an entry while protects visit the TLB, an <em>address-space
 * writer</em> into pages 32..63 through {@link AddressSpace#stqLe}; each store writes a new sequence number at a
 * random 8-byte slot. The <em>protector</em> loops over random pages: it increments {@code started[p]}, protects page
 * p (by ram_addr, or through its own TLB's {@code protectCode}), then increments {@code completed[p]}. The listener
 * runs on the storing thread; it records the report, and unprotects the page half of the time, so that pages go from
 * protected to unprotected and back while the TLB writer's entries for them are cached, fast or {@code NOTDIRTY}. Only
 * the page's own writer ever unprotects it, in its listener, and right after that it reads {@code started[p]} as
 * {@code u[p]}.
 *
 * <p>Why that decides what must be reported: a protect whose {@code started} increment the writer did not see in
 * {@code u[p]} cleared the page's bit after the writer's unprotect set it (the writer's set, its read of
 * {@code started}, the protector's increment and its clear are in that order in the synchronization order). So when a
 * writer reads {@code completed[p] = c} before a store and {@code c > u[p]}, a protect that cleared the bit after the
 * last unprotect had returned before the store began, and nothing set the bit since.
 *
 * <p>Forbidden outcomes: such a store without a report (the one this class exists for); a report of other bytes
 * than the store's own, or of a store that was not made; a report when every protect of the page that ever began had
 * returned before its last unprotect ({@code started[p]}, read in the listener, equal to {@code completed[p]} read
 * just before that unprotect), which would be a report for a page without code; a stored value not read back; any
 * exception. Required: every thread made progress, some stores had to be reported, some TLB stores to pages that
 * had code took the fast path, so that protects had cached fast entries to mark, and not every TLB store was slow.
 *
 * <p>Runs {@value #DEFAULT_SECONDS} seconds by default; {@code -Dguestmem.code.stress.seconds=600} soaks.
 */
public class CodeProtectionStressTest {
    static final long DEFAULT_SECONDS = 2;
    private static final long SECONDS = Long.getLong("guestmem.code.stress.seconds", DEFAULT_SECONDS);
    private static final long PAGE = 4096;
    private static final int PAGES = 64;
    private static final int TLB_PAGES = 32;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    /** For memory-offheap's subclass, which runs this test with the fence installed there. */
    protected CodeProtectionStressTest() {
    }

    /** What the writer on this thread is storing right now, for its listener; one per writer. */
    private static final class Writer {
        final String name;
        final int firstPage;
        /** {@code started[p]} read right after this writer's last unprotect of p. */
        final long[] u = new long[PAGES];
        /** {@code completed[p]} read right before this writer's last unprotect of p. */
        final long[] quiet = new long[PAGES];
        long storeAddr = -1;
        boolean reported;
        long stores;
        long mustReport;
        long reports;
        long unprotects;

        Writer(String name, int firstPage) {
            this.name = name;
            this.firstPage = firstPage;
        }
    }

    @ParameterizedTest
    @CsvSource({"SoftTlb, 0", "HostTlb, 0", "SoftTlb, 8", "HostTlb, 8"})
    void everyStoreAfterAProtectIsReported(String tlbKind, int entries) throws Exception {
        MemorySystem m = new MemorySystem();
        MemoryRegion root = m.container("root", U64.SIZE_2_64);
        MemoryRegion ram = m.ram("ram", PAGES * PAGE);
        ram.setLog(true, DirtyMemoryClient.CODE);
        root.addSubregion(0, ram);
        AddressSpace as = m.addressSpace("memory", root);
        CodeProtection code = CodeProtection.of(m);
        long base = ram.ramBlock().offset();

        AtomicLongArray started = new AtomicLongArray(PAGES);
        AtomicLongArray completed = new AtomicLongArray(PAGES);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicBoolean stop = new AtomicBoolean();
        ThreadLocal<Writer> current = new ThreadLocal<>();
        ThreadLocal<SplittableRandom> coin = ThreadLocal.withInitial(SplittableRandom::new);
        code.addListener((ramAddr, length) -> {
            Writer w = current.get();
            long addr = ramAddr - base;
            int p = (int) (addr / PAGE);
            if (w == null || addr != w.storeAddr || length != 8 || w.reported) {
                throw new AssertionError("report ramAddr=" + U64.hex(ramAddr) + " length=" + length
                        + " of no store of this thread: " + (w == null ? "none" : U64.hex(w.storeAddr)));
            }
            if (started.get(p) == w.quiet[p]) {
                throw new AssertionError(w.name + " page=" + p + ": reported, but every protect that ever began "
                        + "had returned before its last unprotect");
            }
            w.reported = true;
            w.reports++;
            if (coin.get().nextBoolean()) {
                w.quiet[p] = completed.get(p);
                code.unprotect(base + p * PAGE, PAGE);
                // Read after the set: a protect not counted here clears the bit after this unprotect.
                w.u[p] = started.get(p);
                w.unprotects++;
            }
        });

        Writer tlbWriter = new Writer("tlb", 0);
        Writer asWriter = new Writer("as", TLB_PAGES);
        long[] fastToCodePages = new long[1];
        long[] tlbMisses = new long[1];
        long[] protects = new long[1];

        Runnable protector = () -> {
            SoftTlb tlb = new SoftTlb(as);
            SplittableRandom r = new SplittableRandom(1);
            while (!stop.get()) {
                int p = r.nextInt(PAGES);
                started.incrementAndGet(p);
                if (r.nextBoolean()) {
                    code.protect(base + p * PAGE, PAGE);
                } else {
                    tlb.protectCode(p * PAGE + r.nextInt((int) PAGE));
                }
                completed.incrementAndGet(p);
                protects[0]++;
                if ((protects[0] & 63) == 0) {
                    Thread.yield();
                }
            }
        };
        List<Thread> threads = new ArrayList<>();
        threads.add(new Thread(guard(failure, stop, protector), "protector"));
        threads.add(new Thread(guard(failure, stop, tlbKind.equals("SoftTlb") ? () -> {
            SoftTlb tlb = entries == 0 ? new SoftTlb(as) : new SoftTlb(as, entries, U);
            write(tlbWriter, current, started, completed, stop, (addr, v) -> {
                long before = tlb.missCount();
                tlb.stqLe(addr, v);
                if (tlb.missCount() == before && completed.get((int) (addr / PAGE)) != 0) {
                    fastToCodePages[0]++;
                }
                return tlb.ldqLe(addr);
            });
            tlbMisses[0] = tlb.missCount();
        } : () -> {
            try (Rcu.Reader reader = m.rcu().register()) {
                HostTlb tlb = entries == 0 ? new HostTlb(as, reader) : new HostTlb(as, reader, U, entries, entries);
                tlb.begin();
                write(tlbWriter, current, started, completed, stop, (addr, v) -> {
                    long before = tlb.missCount();
                    tlb.stqLe(addr, v);
                    if (tlb.missCount() == before && completed.get((int) (addr / PAGE)) != 0) {
                        fastToCodePages[0]++;
                    }
                    long back = tlb.ldqLe(addr);
                    if ((tlbWriter.stores & 255) == 0) {
                        tlb.checkpoint();
                    }
                    return back;
                });
                tlbMisses[0] = tlb.missCount();
                tlb.end();
            }
        }), "tlb-writer"));
        threads.add(new Thread(guard(failure, stop, () -> write(asWriter, current, started, completed, stop,
                (addr, v) -> {
                    as.stqLe(addr, v, U);
                    return as.ldqLe(addr, U, null);
                })), "as-writer"));
        for (Thread t : threads) {
            t.start();
        }
        long deadline = System.nanoTime() + SECONDS * 1_000_000_000L;
        while (System.nanoTime() < deadline && failure.get() == null) {
            Thread.sleep(20);
        }
        stop.set(true);
        for (Thread t : threads) {
            t.join(30_000);
        }
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        String counts = "protects=" + protects[0] + " tlb=[stores=" + tlbWriter.stores + " mustReport="
                + tlbWriter.mustReport + " reports=" + tlbWriter.reports + " misses=" + tlbMisses[0]
                + " fastToCodePages=" + fastToCodePages[0] + "] as=[stores=" + asWriter.stores
                + " mustReport=" + asWriter.mustReport + " reports=" + asWriter.reports + "]";
        assertTrue(protects[0] > 100, counts);
        for (Writer w : List.of(tlbWriter, asWriter)) {
            assertTrue(w.stores > 1000 && w.mustReport > 100 && w.unprotects > 10, counts);
        }
        assertTrue(fastToCodePages[0] > 100, "some TLB stores to pages that had code went fast: " + counts);
        assertTrue(tlbMisses[0] < tlbWriter.stores, "not every TLB store was slow: " + counts);
    }

    /** A store of {@code v} at {@code addr}, returning what a load then reads there. */
    @FunctionalInterface
    private interface Store {
        long storeAndLoad(long addr, long v);
    }

    private static void write(Writer w, ThreadLocal<Writer> current, AtomicLongArray started,
                              AtomicLongArray completed, AtomicBoolean stop, Store store) {
        current.set(w);
        SplittableRandom r = new SplittableRandom(w.firstPage);
        while (!stop.get()) {
            int p = w.firstPage + r.nextInt(TLB_PAGES);
            long addr = p * PAGE + 8L * r.nextInt((int) (PAGE / 8));
            // Acquire: every protect counted here returned before this store begins.
            long c = completed.get(p);
            boolean must = c > w.u[p];
            w.storeAddr = addr;
            w.reported = false;
            long v = ++w.stores;
            long back = store.storeAndLoad(addr, v);
            if (back != v) {
                throw new AssertionError(w.name + " addr=" + U64.hex(addr) + " stored=" + v + " read=" + back);
            }
            if (must) {
                w.mustReport++;
                if (!w.reported) {
                    throw new AssertionError(w.name + " addr=" + U64.hex(addr) + " page=" + p + " completed=" + c
                            + " u=" + w.u[p] + " started=" + started.get(p)
                            + ": a store that began after a protect returned was not reported");
                }
            }
        }
    }

    private static Runnable guard(AtomicReference<Throwable> failure, AtomicBoolean stop, Runnable body) {
        return () -> {
            try {
                body.run();
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                stop.set(true);
            }
        };
    }
}
