package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.ValueLayout;
import java.util.TreeMap;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The three ordering claims the design rests on, each as a jcstress-shaped test: two actors run one trial at a time
 * from a common start (a barrier), each trial ends in an outcome (a short string, as jcstress's result tuples), the
 * outcomes are counted, and one of them is <em>forbidden</em>: it must never be seen. Each test also runs its checker
 * on the outcome a deliberately broken variant produces, so a checker that could never fail would be caught.
 *
 * <ol>
 *   <li><b>A soft-TLB store racing {@link CodeProtection#protect}.</b> The protector protects a page and then sets a
 *   volatile flag; the vCPU reads the flag and then stores to the page through its {@link SoftTlb} (whose entry for
 *   the page was cached before the trial, so the store would take the fast path if nothing marked it). Forbidden:
 *   {@code protected-before-store, unreported}, a store that began after the protect returned and was not reported to
 *   the {@link CodeProtection} listeners. Broken variant: the store bypasses the TLB (a raw segment store).</li>
 *   <li><b>A view's publish against a reader's acquire load.</b> The writer fills the unmapped one of two RAM
 *   regions with the trial's number through the region's segment (plain stores), then maps it at 0 in place of the
 *   other in one transaction, whose commit publishes the new view with a release store. The reader loads 8 bytes at
 *   0 through the address space (acquire load of the view). Allowed: the previous trial's number (old view) or this
 *   trial's (new view). Forbidden: anything else, in particular the number the region held two trials ago, which a
 *   reader would see if it saw the new view but not the stores made before its publication. Broken variant: the
 *   region is mapped before it is filled.</li>
 *   <li><b>A dirty mark against {@link MemoryRegion#snapshotAndClearDirty}.</b> The vCPU stores to a page of RAM
 *   that logs MIGRATION through the address space (plain store, plain dirty mark) and then sets a volatile flag; the
 *   collector reads the flag and then takes and clears the page's dirty bits. Forbidden: {@code stored-before-take,
 *   clean}, a store that completed before the take began whose bit the take did not return. Broken variant: the
 *   store bypasses the access path (no mark).</li>
 * </ol>
 *
 * <p>Required: some trials went the order that puts the claim to the test (the protect, the publish or the store
 * first); a run goes on for up to five times its length until one has. The outcome counts are printed, as jcstress
 * prints its table. Each test runs {@value #DEFAULT_MILLIS} ms by default (at least {@value #MIN_TRIALS} trials);
 * {@code -Dguestmem.ordering.stress.millis=600000} soaks.
 */
class OrderingClaimsStressTest {
    static final long DEFAULT_MILLIS = 700;
    private static final long MILLIS = Long.getLong("guestmem.ordering.stress.millis", DEFAULT_MILLIS);
    static final int MIN_TRIALS = 200;
    private static final long PAGE = 4096;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    /** One trial's two actors; each returns its part of the outcome, and {@code outcome} joins them. */
    private interface Trial {
        /** Between trials, on the test thread, with both actors parked: reset state for trial {@code n}. */
        void prepare(long n);

        String actor1(long n);

        String actor2(long n);

        /** The trial's outcome from both actors' parts, after both returned. */
        String outcome(long n, String part1, String part2);
    }

    /**
     * Runs {@code trial} for {@link #MILLIS} ms and at least {@link #MIN_TRIALS} trials, and on (up to five times as
     * long) until an outcome starting with {@code interesting} was seen, the order of the race that puts the claim to
     * the test; returns the outcome counts, and fails when that order never came. The actors meet at a barrier before
     * and after each trial; any exception fails the run.
     */
    private static TreeMap<String, Long> run(String name, String interesting, Trial trial) throws Exception {
        CyclicBarrier start = new CyclicBarrier(3);
        CyclicBarrier end = new CyclicBarrier(3);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        String[] parts = new String[2];
        long[] trialNo = new long[1];
        Thread[] actors = new Thread[2];
        for (int a = 0; a < 2; a++) {
            final int id = a;
            actors[a] = new Thread(() -> {
                try {
                    while (true) {
                        start.await(30, TimeUnit.SECONDS);
                        if (stop.get()) {
                            return;
                        }
                        long n = trialNo[0]; // written before the barrier by the test thread
                        parts[id] = id == 0 ? trial.actor1(n) : trial.actor2(n);
                        end.await(30, TimeUnit.SECONDS);
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                    start.reset();
                    end.reset();
                }
            }, "ordering-actor-" + a);
            actors[a].setDaemon(true);
            actors[a].start();
        }
        TreeMap<String, Long> counts = new TreeMap<>();
        long begin = System.nanoTime();
        long deadline = begin + TimeUnit.MILLISECONDS.toNanos(MILLIS);
        long lastChance = begin + TimeUnit.MILLISECONDS.toNanos(5 * MILLIS);
        boolean seen = false;
        try {
            for (long n = 1; n <= MIN_TRIALS || System.nanoTime() < deadline
                    || (!seen && System.nanoTime() < lastChance); n++) {
                trial.prepare(n);
                trialNo[0] = n;
                start.await(30, TimeUnit.SECONDS);
                end.await(30, TimeUnit.SECONDS);
                String outcome = trial.outcome(n, parts[0], parts[1]);
                seen |= outcome.startsWith(interesting);
                counts.merge(outcome, 1L, Long::sum);
            }
            stop.set(true);
            start.await(30, TimeUnit.SECONDS);
        } catch (BrokenBarrierException | TimeoutException e) {
            Throwable t = failure.get();
            throw new AssertionError("an actor failed: " + t, t == null ? e : t);
        }
        for (Thread t : actors) {
            t.join(TimeUnit.SECONDS.toMillis(30));
        }
        if (failure.get() != null) {
            throw new AssertionError("an actor failed", failure.get());
        }
        System.out.println("OrderingClaimsStressTest " + name + ": " + counts);
        assertTrue(seen, name + ": no trial went the way that tests the claim ('" + interesting + "'); " + counts);
        return counts;
    }

    private static void assertNever(String forbidden, TreeMap<String, Long> counts) {
        assertEquals(null, counts.get(forbidden), "forbidden outcome '" + forbidden + "' seen; outcomes " + counts);
        assertTrue(counts.values().stream().mapToLong(Long::longValue).sum() >= MIN_TRIALS, "outcomes " + counts);
    }

    // ---------------------------------------------------------------- 1: TLB store vs protect

    private static final String UNREPORTED = "protected-before-store, unreported";

    /** The outcome of claim 1 from the vCPU's reading of the flag and whether its store was reported. */
    private static String codeOutcome(boolean sawProtected, boolean reported) {
        return (sawProtected ? "protected-before-store" : "store-first") + ", " + (reported ? "reported" : "unreported");
    }

    /** One page of RAM at 0 that {@code client} logs, in an address space of a new system. */
    private record Rig(MemorySystem m, MemoryRegion ram, AddressSpace as) {
        static Rig logging(DirtyMemoryClient client) {
            MemorySystem m = new MemorySystem();
            MemoryRegion root = m.container("root", U64.SIZE_2_64);
            MemoryRegion ram = m.ram("ram", PAGE);
            ram.setLog(true, client);
            root.addSubregion(0, ram);
            return new Rig(m, ram, m.addressSpace("memory", root));
        }
    }

    @Test
    void tlbStoreAfterProtectIsAlwaysReported() throws Exception {
        Rig rig = Rig.logging(DirtyMemoryClient.CODE);
        MemoryRegion ram = rig.ram();
        AddressSpace as = rig.as();
        CodeProtection code = CodeProtection.of(rig.m());
        long ramAddr = ram.ramBlock().offset();
        AtomicBoolean reported = new AtomicBoolean();
        // Only the racing store (at 8) counts; the warming store (at 0) may be reported or not.
        code.addListener((addr, length) -> reported.compareAndSet(false, addr == ramAddr + 8));

        TreeMap<String, Long> counts = run("tlb-store-vs-protect", "protected-before-store", new Trial() {
            volatile boolean isProtected;
            SoftTlb tlb; // the vCPU's: made and used by actor 1 only

            @Override
            public void prepare(long n) {
                code.unprotect(ramAddr, PAGE);
                reported.set(false);
                isProtected = false;
            }

            @Override
            public String actor1(long n) {
                if (tlb == null) {
                    tlb = new SoftTlb(as);
                }
                tlb.stqLe(0, n); // caches the page's write entry, on the fast path unless protect came first
                boolean saw = isProtected;
                tlb.stqLe(8, n);
                return Boolean.toString(saw);
            }

            @Override
            public String actor2(long n) {
                code.protect(ramAddr, PAGE);
                isProtected = true;
                return "";
            }

            @Override
            public String outcome(long n, String part1, String part2) {
                return codeOutcome(Boolean.parseBoolean(part1), reported.get());
            }
        });
        assertNever(UNREPORTED, counts);

        // Broken variant, run in one thread: protect returns, then a store that no one sees (a raw segment store).
        code.unprotect(ramAddr, PAGE);
        reported.set(false);
        code.protect(ramAddr, PAGE);
        ram.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 42);
        assertEquals(UNREPORTED, codeOutcome(true, reported.get()), "the checker names the broken store");
    }

    // ---------------------------------------------------------------- 2: publish vs acquire

    /** The outcome of claim 2: which trial's number the reader saw, relative to trial {@code n}. */
    private static String publishOutcome(long n, long seen) {
        if (seen == n) {
            return "new view";
        }
        return seen == n - 1 ? "old view" : "stale contents";
    }

    @Test
    void aPublishedViewShowsWhatWasWrittenBeforeIt() throws Exception {
        MemorySystem m = new MemorySystem();
        MemoryRegion root = m.container("root", U64.SIZE_2_64);
        MemoryRegion[] rams = {m.ram("a", PAGE), m.ram("b", PAGE)};
        root.addSubregion(0, rams[0]); // trial 0's region, holding 0
        AddressSpace as = m.addressSpace("memory", root);

        TreeMap<String, Long> counts = run("publish-vs-acquire", "new view", new Trial() {
            @Override
            public void prepare(long n) {
            }

            @Override
            public String actor1(long n) {
                // Trial n maps region n % 2, which held n - 2 (or 0) and is filled with n before the publish.
                MemoryRegion next = rams[(int) (n % 2)];
                MemoryRegion current = rams[(int) ((n - 1) % 2)];
                next.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0, n);
                m.transaction(() -> {
                    root.delSubregion(current);
                    root.addSubregion(0, next);
                });
                return "";
            }

            @Override
            public String actor2(long n) {
                return Long.toString(as.ldqLe(0, U, null));
            }

            @Override
            public String outcome(long n, String part1, String part2) {
                return publishOutcome(n, Long.parseLong(part2));
            }
        });
        assertNever("stale contents", counts);

        // Broken variant, in one thread: the region is published before it is filled, and read in between.
        long n = Long.MAX_VALUE;
        MemoryRegion spare = m.ram("spare", PAGE);
        m.transaction(() -> {
            root.delSubregion(root.subregions().getFirst());
            root.addSubregion(0, spare);
        });
        long seen = as.ldqLe(0, U, null);
        spare.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0, n);
        assertEquals("stale contents", publishOutcome(n, seen), "the checker names the broken publish");
    }

    // ---------------------------------------------------------------- 3: dirty mark vs snapshotAndClear

    private static final String LOST = "stored-before-take, clean";

    /** The outcome of claim 3 from the collector's reading of the flag and whether its take held the page. */
    private static String dirtyOutcome(boolean sawStored, boolean dirty) {
        return (sawStored ? "stored-before-take" : "take-first") + ", " + (dirty ? "dirty" : "clean");
    }

    @Test
    void aMarkBeforeATakeIsInTheTake() throws Exception {
        Rig rig = Rig.logging(DirtyMemoryClient.MIGRATION);
        MemoryRegion ram = rig.ram();
        AddressSpace as = rig.as();
        DirtySnapshot taken = new DirtySnapshot();

        TreeMap<String, Long> counts = run("mark-vs-take", "stored-before-take", new Trial() {
            volatile boolean stored;
            boolean dirty;

            @Override
            public void prepare(long n) {
                ram.snapshotAndClearDirty(0, PAGE, DirtyMemoryClient.MIGRATION, taken); // start clean
                stored = false;
            }

            @Override
            public String actor1(long n) {
                as.stqLe(16, n, U);
                stored = true;
                return "";
            }

            @Override
            public String actor2(long n) {
                boolean saw = stored;
                DirtySnapshot s = ram.snapshotAndClearDirty(0, PAGE, DirtyMemoryClient.MIGRATION, taken);
                dirty = s.getDirty(s.start(), PAGE);
                return Boolean.toString(saw);
            }

            @Override
            public String outcome(long n, String part1, String part2) {
                return dirtyOutcome(Boolean.parseBoolean(part2), dirty);
            }
        });
        assertNever(LOST, counts);

        // Broken variant, in one thread: a store that marks nothing completes before the take.
        ram.snapshotAndClearDirty(0, PAGE, DirtyMemoryClient.MIGRATION, taken);
        ram.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 16, 7);
        DirtySnapshot s = ram.snapshotAndClearDirty(0, PAGE, DirtyMemoryClient.MIGRATION, taken);
        assertEquals(LOST, dirtyOutcome(true, s.getDirty(s.start(), PAGE)), "the checker names the lost mark");
    }
}
