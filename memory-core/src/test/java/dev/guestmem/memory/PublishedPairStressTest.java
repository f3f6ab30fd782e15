package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The view and the dispatch an address space hands out come from one commit: a thread that reads
 * {@link AddressSpace#flatView()} and then the dispatch the access path uses ({@code AddressSpace.dispatch()}) never
 * gets a dispatch older than that view, and one that reads the dispatch first never gets a view older than the
 * dispatch's. The soft TLBs key on the view and the access path on the dispatch, so a pair from two commits would let
 * an access through the address space read a map older than the one a TLB access just before it on the same thread
 * used.
 *
 * <p>jcstress-shaped, with the outcomes counted and one forbidden. The writer republishes, as fast as it can and in
 * commit order, {@value #VIEWS} real views that as many commits made (each with its dispatch), starting again from
 * the first once it has published the last; a counter it makes odd before going back to the first view and even once
 * that view is out (a seqlock) tells the reader which pairs fall inside one forward sweep, where a later publish is
 * always a later view. The reader reads a pair both ways round, over and over, and classifies each pair of one sweep
 * by the views' places in commit order: {@code same} (one commit), {@code later} (a publish landed between the two
 * reads and the second read saw it: allowed) or {@value #FORBIDDEN} (the second read is older than the first).
 * Required: some pairs were {@code later}, the race this is about; a run goes on for up to five times its length until
 * one is. Each run lasts {@value #DEFAULT_MILLIS} ms by default; {@code -Dguestmem.publish.stress.millis=600000} soaks.
 *
 * <p>Publishing the view and then its dispatch as two references (as this project once did) gives the forbidden
 * outcome within the first sweeps: a reader between the two stores sees the new view with the old dispatch.
 */
class PublishedPairStressTest {
    static final long DEFAULT_MILLIS = 700;
    private static final long MILLIS = Long.getLong("guestmem.publish.stress.millis", DEFAULT_MILLIS);
    static final int VIEWS = 1024;
    static final String FORBIDDEN = "older";

    /** The outcome of a pair whose first read came from commit {@code first} and second from commit {@code second}. */
    static String outcome(int first, int second) {
        return second == first ? "same" : second > first ? "later" : FORBIDDEN;
    }

    @Test
    void aReaderNeverPairsAViewWithAnOlderDispatchOrTheReverse() throws Exception {
        MemorySystem m = new MemorySystem();
        MemoryRegion root = m.container("root", U64.SIZE_2_64);
        root.addSubregion(0, m.ram("ram", 0x10000));
        MemoryRegion toggled = m.ram("toggled", 0x1000);
        root.addSubregion(0x20000, toggled);
        AddressSpace as = m.addressSpace("memory", root);

        // Real commits, each rendering a new view with its dispatch, numbered in commit order.
        List<FlatView> views = new ArrayList<>();
        Map<FlatView, Integer> order = new IdentityHashMap<>();
        for (int i = 0; i < VIEWS; i++) {
            toggled.setEnabled(i % 2 == 0);
            FlatView v = as.flatView();
            order.put(v, i);
            views.add(v);
        }
        assertEquals(VIEWS, order.size(), "every commit published a view of its own");

        AtomicBoolean stop = new AtomicBoolean();
        AtomicBoolean seen = new AtomicBoolean(); // a "later" pair came: the writer may stop at the deadline
        AtomicReference<Throwable> failure = new AtomicReference<>();
        // The sweep counter, odd while the writer goes back to the first view; written by the writer only.
        long[] sweep = new long[1];
        Object sweepLock = new Object();
        TreeMap<String, Long> counts = new TreeMap<>();
        Thread reader = new Thread(() -> {
            try {
                long same = 0;
                long later = 0;
                long forbidden = 0;
                while (!stop.get()) {
                    long s1 = Sweep.get(sweep);
                    if ((s1 & 1) != 0) {
                        Thread.onSpinWait();
                        continue;
                    }
                    // The pair, back to back each way round; classified only after the sweep is known unchanged.
                    FlatView v = as.flatView();
                    AddressSpaceDispatch d = as.dispatch();
                    AddressSpaceDispatch d2 = as.dispatch();
                    FlatView v2 = as.flatView();
                    if (Sweep.get(sweep) != s1) {
                        continue; // the writer went back to the first view meanwhile: commit order says nothing
                    }
                    for (String o : new String[] {outcome(order.get(v), order.get(d.view())),
                            outcome(order.get(d2.view()), order.get(v2))}) {
                        switch (o) {
                            case "same" -> same++;
                            case "later" -> {
                                later++;
                                seen.set(true);
                            }
                            default -> forbidden++;
                        }
                    }
                }
                synchronized (sweepLock) {
                    counts.put("same", same);
                    counts.put("later", later);
                    counts.put(FORBIDDEN, forbidden);
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            }
        }, "published-pair-reader");
        reader.setDaemon(true);
        reader.start();

        long begin = System.nanoTime();
        long deadline = begin + TimeUnit.MILLISECONDS.toNanos(MILLIS);
        long lastChance = begin + TimeUnit.MILLISECONDS.toNanos(5 * MILLIS);
        long sweeps = 0;
        m.begin(); // the writer's locks, as a commit holds them while it publishes
        try {
            while (System.nanoTime() < deadline || ((sweeps < 2 || !seen.get()) && System.nanoTime() < lastChance)) {
                Sweep.set(sweep, 2 * sweeps + 1); // odd: going back to the first view
                as.publish(views.getFirst());
                Sweep.set(sweep, 2 * sweeps + 2); // even: from here on, each publish is a later commit's view
                for (int i = 1; i < VIEWS; i++) {
                    as.publish(views.get(i));
                }
                sweeps++;
            }
        } finally {
            as.publish(views.getLast()); // the view the last commit made, current again
            m.commit();
            stop.set(true);
        }
        reader.join(TimeUnit.SECONDS.toMillis(30));
        if (failure.get() != null) {
            throw new AssertionError("the reader failed", failure.get());
        }
        assertTrue(!reader.isAlive(), "the reader did not stop");
        synchronized (sweepLock) {
            System.out.println("PublishedPairStressTest: " + sweeps + " sweeps of " + VIEWS + " views, pairs " + counts);
            assertEquals(0L, counts.get(FORBIDDEN), "a reader paired one commit's view or dispatch with an older "
                    + "commit's; pairs " + counts);
            assertTrue(counts.get("later") > 0, "no publish ever landed between a reader's two reads; pairs " + counts);
        }
        assertEquals(views.getLast(), as.flatView());
        assertEquals(as.flatView(), as.dispatch().view());
    }

    @Test
    void theCheckerNamesAMixedPair() {
        assertEquals(FORBIDDEN, outcome(5, 4), "a dispatch (or view) older than the view (or dispatch) read first");
        assertEquals("later", outcome(4, 5));
        assertEquals("same", outcome(4, 4));
    }

    /** The sweep counter's accesses: volatile, so the reader's checks order around its reads of the pair. */
    private static final class Sweep {
        private static final VarHandle CELL = MethodHandles.arrayElementVarHandle(long[].class);

        private Sweep() {
        }

        static long get(long[] sweep) {
            return (long) CELL.getVolatile(sweep, 0);
        }

        static void set(long[] sweep, long value) {
            CELL.setVolatile(sweep, 0, value);
        }
    }
}
