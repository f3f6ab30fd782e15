package dev.guestmem.memory.stress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtySnapshot;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Dirty tracking is linearizable under concurrent writers, a concurrent snapshotter, and concurrent growth, for every
 * {@link DirtyBitmap} implementation.
 *
 * <p><b>Snapshots.</b> {@value #WRITERS} writer threads mark pages of a {@value #PAGES}-page bitmap (blocks of
 * {@value #BLOCK} pages): mostly a few bytes of one page, as a store does, sometimes a run of up to
 * {@value #MAX_RUN} pages across words and blocks. A snapshotter loops snapshot-and-clear over the whole bitmap
 * (every other one into one reused {@link DirtySnapshot}) and, after snapshot k is complete, sets a shared epoch to
 * k + 1 (volatile). Each writer records for every mark its page range and the epochs {@code e0} read before and
 * {@code e1} read after the mark. Snapshot k ran while the epoch was k, so snapshots before e0 were complete before
 * the mark began, and snapshot {@code e1 + 1} began after it ended. A final snapshot after the writers are joined
 * takes what is left. Forbidden outcomes:
 * <ul>
 *   <li>a lost bit: a page of a mark that no snapshot in {@code [e0, e1 + 1]} contains;</li>
 *   <li>a spurious bit: a snapshot s containing page p with no mark of p that could have set the bit since the
 *   previous snapshot s' that took p, i.e. no mark of p with {@code e0 <= s} and {@code e1 >= s'} (this covers a page
 *   never marked, and a bit reported twice for one mark);</li>
 *   <li>any exception.</li>
 * </ul>
 * Required: more than ten non-empty snapshots and some marks that overlapped a snapshot ({@code e1 > e0}), so the
 * run did exercise concurrency (rounds go on for up to five times the run's length until one has).
 *
 * <p><b>Growth.</b> Writers mark random ranges below the page count they read, while a grower extends the bitmap
 * from one block to {@value #GROWN_PAGES} pages in small steps and a snapshotter takes the pages present. The union of
 * all snapshots plus a final one must equal the union of all marks exactly: no mark into a block is lost because the
 * block table was replaced under the writer, and no bit appears that nobody marked.
 *
 * <p>Each test runs {@value #DEFAULT_SECONDS} seconds per implementation by default, in rounds that each start a new
 * bitmap; soak with {@code -Dguestmem.dirty.stress.seconds=600}.
 */
public class DirtyBitmapStressTest {
    static final long DEFAULT_SECONDS = 2;
    private static final long SECONDS = Long.getLong("guestmem.dirty.stress.seconds", DEFAULT_SECONDS);
    static final int PAGES = 4096;
    static final long BLOCK = 1024;
    static final int WRITERS = 3;
    static final int MAX_RUN = 130;
    static final int MARKS_PER_ROUND = 40_000;
    static final long GROWN_PAGES = 1 << 16;
    private static final long PAGE = 4096;

    /** A snapshot with at least one dirty page, and its number k. */
    private record Taken(int index, DirtySnapshot snapshot) {
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void everyMarkIsInExactlyTheSnapshotsThatMustHoldIt(DirtyBitmapImpl impl) throws Exception {
        long deadline = System.nanoTime() + SECONDS * 1_000_000_000L;
        // On a loaded machine the threads may rarely run at once: go on (up to five times as long) until they did.
        long hardDeadline = System.nanoTime() + 5 * SECONDS * 1_000_000_000L;
        long seed = 1;
        int nonEmptySnapshots = 0;
        long overlapping = 0;
        do {
            int[] result = round(impl, seed++);
            nonEmptySnapshots += result[0];
            overlapping += result[1];
        } while (System.nanoTime() < deadline
                || ((nonEmptySnapshots <= 10 || overlapping == 0) && System.nanoTime() < hardDeadline));
        assertTrue(nonEmptySnapshots > 10, "nonEmptySnapshots=" + nonEmptySnapshots);
        assertTrue(overlapping > 0, "no mark overlapped a snapshot");
    }

    /** One round on a new bitmap; returns {non-empty snapshots, marks that overlapped a snapshot}. */
    private static int[] round(DirtyBitmapImpl impl, long seed) throws Exception {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        AtomicLong epoch = new AtomicLong();
        AtomicBoolean writersDone = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Taken> taken = new ArrayList<>();
        // Per writer: for mark m, {firstPage, endPage, e0, e1} at 4m.
        int[][] marks = new int[WRITERS][4 * MARKS_PER_ROUND];

        Thread snapshotter = new Thread(() -> {
            try {
                DirtySnapshot reused = new DirtySnapshot();
                int k = 0;
                while (!writersDone.get()) {
                    DirtySnapshot snap = (k & 1) == 0 ? bitmap.snapshotAndClear(0, PAGES * PAGE)
                            : copyOf(bitmap.snapshotAndClear(0, PAGES * PAGE, reused));
                    if (snap.dirtyPageCount() != 0) {
                        taken.add(new Taken(k, snap));
                    }
                    epoch.set(++k); // volatile: snapshot k is complete before any thread reads k + 1
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            }
        }, "snapshotter");
        Thread[] writers = new Thread[WRITERS];
        for (int w = 0; w < WRITERS; w++) {
            int[] rec = marks[w];
            SplittableRandom random = new SplittableRandom(seed * 31 + w);
            writers[w] = new Thread(() -> {
                try {
                    for (int m = 0; m < MARKS_PER_ROUND; m++) {
                        long addr;
                        long length;
                        if (random.nextInt(5) != 0) {
                            addr = random.nextLong(PAGES * PAGE - 8);
                            length = 1 + random.nextInt(8);
                        } else {
                            int first = random.nextInt(PAGES);
                            int pages = 1 + random.nextInt(Math.min(MAX_RUN, PAGES - first));
                            addr = first * PAGE + random.nextLong(PAGE);
                            length = (first + pages - 1) * PAGE + 1 + random.nextLong(PAGE) - addr;
                            length = Math.max(length, 1);
                        }
                        int e0 = (int) epoch.get();
                        bitmap.setDirtyRange(addr, length);
                        int e1 = (int) epoch.get();
                        rec[4 * m] = (int) (addr / PAGE);
                        rec[4 * m + 1] = (int) ((addr + length + PAGE - 1) / PAGE);
                        rec[4 * m + 2] = e0;
                        rec[4 * m + 3] = e1;
                        if ((m & 255) == 0) {
                            Thread.yield(); // let the snapshotter in on a machine with fewer cores than threads
                        }
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }, "writer-" + w);
        }
        snapshotter.start();
        for (Thread t : writers) {
            t.start();
        }
        for (Thread t : writers) {
            t.join();
        }
        writersDone.set(true);
        snapshotter.join();
        if (failure.get() != null) {
            throw new AssertionError("thread failed", failure.get());
        }
        int last = (int) epoch.get();
        DirtySnapshot drain = bitmap.snapshotAndClear(0, PAGES * PAGE);
        if (drain.dirtyPageCount() != 0) {
            taken.add(new Taken(last, drain));
        }

        // Snapshots that took each page, in increasing order (compressed rows: page p at [takenStart[p], [p+1])).
        int[] takenStart = new int[PAGES + 1];
        for (Taken t : taken) {
            for (long p = t.snapshot().nextDirtyPage(0); p >= 0; p = t.snapshot().nextDirtyPage(p + 1)) {
                takenStart[(int) p + 1]++;
            }
        }
        Arrays.parallelPrefix(takenStart, Integer::sum);
        int[] takenAt = new int[takenStart[PAGES]];
        int[] fill = Arrays.copyOf(takenStart, PAGES);
        for (Taken t : taken) {
            for (long p = t.snapshot().nextDirtyPage(0); p >= 0; p = t.snapshot().nextDirtyPage(p + 1)) {
                takenAt[fill[(int) p]++] = t.index();
            }
        }
        // Marks of each page as e0 << 32 | e1, sorted by e0.
        int[] markStart = new int[PAGES + 1];
        for (int[] rec : marks) {
            for (int m = 0; m < MARKS_PER_ROUND; m++) {
                for (int p = rec[4 * m]; p < rec[4 * m + 1]; p++) {
                    markStart[p + 1]++;
                }
            }
        }
        Arrays.parallelPrefix(markStart, Integer::sum);
        long[] markOf = new long[markStart[PAGES]];
        fill = Arrays.copyOf(markStart, PAGES);
        long overlapping = 0;
        for (int[] rec : marks) {
            for (int m = 0; m < MARKS_PER_ROUND; m++) {
                int e0 = rec[4 * m + 2];
                int e1 = rec[4 * m + 3];
                overlapping += e1 > e0 ? 1 : 0;
                for (int p = rec[4 * m]; p < rec[4 * m + 1]; p++) {
                    markOf[fill[p]++] = (long) e0 << 32 | e1;
                }
            }
        }

        for (int p = 0; p < PAGES; p++) {
            int from = takenStart[p];
            int to = takenStart[p + 1];
            // No lost bit: some snapshot in [e0, e1 + 1] took page p.
            for (int i = markStart[p]; i < markStart[p + 1]; i++) {
                int e0 = (int) (markOf[i] >>> 32);
                int e1 = (int) markOf[i];
                int at = Arrays.binarySearch(takenAt, from, to, e0);
                int next = at >= 0 ? at : -at - 1;
                if (next == to || takenAt[next] > e1 + 1) {
                    fail("lost bit: page=" + p + " markedBetweenEpochs=[" + e0 + "," + e1 + "] takenAt="
                            + Arrays.toString(Arrays.copyOfRange(takenAt, from, to)));
                }
            }
            // No spurious bit: each take of page p has a mark since the previous take.
            Arrays.sort(markOf, markStart[p], markStart[p + 1]);
            int i = markStart[p];
            int maxE1 = Integer.MIN_VALUE;
            int previous = -1;
            for (int t = from; t < to; t++) {
                int s = takenAt[t];
                while (i < markStart[p + 1] && (int) (markOf[i] >>> 32) <= s) {
                    maxE1 = Math.max(maxE1, (int) markOf[i]);
                    i++;
                }
                if (maxE1 < previous) {
                    fail("spurious bit: page=" + p + " snapshot=" + s + " previousSnapshot=" + previous
                            + " latestMarkEndEpoch=" + maxE1);
                }
                previous = s;
            }
        }
        return new int[] {taken.size(), (int) Math.min(overlapping, Integer.MAX_VALUE)};
    }

    /** A snapshot of its own with the words of {@code reused}, which the next refill overwrites. */
    private static DirtySnapshot copyOf(DirtySnapshot reused) {
        long[] words = reused.toWords();
        DirtySnapshot copy = new DirtySnapshot();
        copy.refill(reused.start(), Long.numberOfTrailingZeros(reused.pageSize()), words.length);
        for (int i = 0; i < words.length; i++) {
            if (words[i] != 0) {
                copy.put(i, words[i]);
            }
        }
        return copy;
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void growingWhileWritersMarkLosesNoBit(DirtyBitmapImpl impl) throws Exception {
        long deadline = System.nanoTime() + SECONDS * 1_000_000_000L;
        long seed = 1;
        long extendsDuringMarks = 0;
        do {
            extendsDuringMarks += growthRound(impl, seed++);
        } while (System.nanoTime() < deadline);
        assertTrue(extendsDuringMarks > 0, "no growth overlapped the writers");
    }

    /** One round; returns how many extends happened while writers were marking. */
    private static long growthRound(DirtyBitmapImpl impl, long seed) throws Exception {
        DirtyBitmap bitmap = impl.create(PAGE, 64, 64);
        AtomicBoolean grown = new AtomicBoolean();
        AtomicBoolean writersDone = new AtomicBoolean();
        AtomicLong extendsDuringMarks = new AtomicLong();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        BitSet[] marked = new BitSet[WRITERS];
        BitSet seen = new BitSet();

        Thread grower = new Thread(() -> {
            try {
                SplittableRandom random = new SplittableRandom(seed);
                long pages = 64;
                while (pages < GROWN_PAGES) {
                    pages = Math.min(GROWN_PAGES, pages + 1 + random.nextInt(700));
                    bitmap.extend(pages);
                    if (!writersDone.get()) {
                        extendsDuringMarks.incrementAndGet();
                    }
                    Thread.yield();
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            } finally {
                grown.set(true);
            }
        }, "grower");
        Thread snapshotter = new Thread(() -> {
            try {
                while (!writersDone.get()) {
                    DirtySnapshot snap = bitmap.snapshotAndClear(0, bitmap.pageCount() * PAGE);
                    for (long p = snap.nextDirtyPage(0); p >= 0; p = snap.nextDirtyPage(p + 1)) {
                        seen.set((int) p);
                    }
                    Thread.yield();
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            }
        }, "snapshotter");
        Thread[] writers = new Thread[WRITERS];
        for (int w = 0; w < WRITERS; w++) {
            BitSet mine = marked[w] = new BitSet();
            SplittableRandom random = new SplittableRandom(seed * 31 + w);
            writers[w] = new Thread(() -> {
                try {
                    // Until the bitmap is fully grown, and a while after.
                    for (int after = 0; after < 20_000; after += grown.get() ? 1 : 0) {
                        long pageCount = bitmap.pageCount();
                        long first = random.nextLong(pageCount);
                        long pages = 1 + random.nextLong(Math.min(MAX_RUN, pageCount - first));
                        bitmap.setDirtyRange(first * PAGE, pages * PAGE);
                        mine.set((int) first, (int) (first + pages));
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }, "writer-" + w);
        }
        grower.start();
        snapshotter.start();
        for (Thread t : writers) {
            t.start();
        }
        for (Thread t : writers) {
            t.join();
        }
        writersDone.set(true);
        snapshotter.join();
        grower.join();
        if (failure.get() != null) {
            throw new AssertionError("thread failed", failure.get());
        }
        assertEquals(GROWN_PAGES, bitmap.pageCount());
        DirtySnapshot drain = bitmap.snapshotAndClear(0, GROWN_PAGES * PAGE);
        for (long p = drain.nextDirtyPage(0); p >= 0; p = drain.nextDirtyPage(p + 1)) {
            seen.set((int) p);
        }
        BitSet expected = new BitSet();
        for (BitSet mine : marked) {
            expected.or(mine);
        }
        BitSet lost = (BitSet) expected.clone();
        lost.andNot(seen);
        BitSet spurious = (BitSet) seen.clone();
        spurious.andNot(expected);
        assertTrue(lost.isEmpty(), "lost pages: " + lost);
        assertTrue(spurious.isEmpty(), "spurious pages: " + spurious);
        return extendsDuringMarks.get();
    }
}
