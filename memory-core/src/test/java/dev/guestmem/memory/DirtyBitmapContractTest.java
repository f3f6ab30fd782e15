package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.stress.DirtyBitmapImpl;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.LongSupplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The contract of {@link DirtyBitmap}, run against every implementation and compared with a {@code boolean[]} model:
 * every range at every page alignment and length (with byte offsets inside the first and last page), within a word,
 * across words and across blocks; marking, querying, test-and-clear, snapshot-and-clear with QEMU's rounding out to
 * 64-page words (fresh, and refilling one reused snapshot without allocating), growth, and rejection of ranges outside
 * the bitmap.
 *
 * <p>The bitmap under test has {@value #PAGES} pages of {@value #PAGE} bytes in blocks of {@value #BLOCK} pages (two
 * words), so the last block is partly in use and the page count is not a multiple of 64.
 */
class DirtyBitmapContractTest {
    static final long PAGE = 4096;
    static final int PAGES = 300;
    static final long BLOCK = 128;
    static final long LIMIT = PAGES * PAGE;

    /** The byte range that covers exactly pages {@code [first, end)}, with byte offsets picked by {@code salt}. */
    static long[] byteRange(long first, long end, long salt) {
        long[] starts = {0, 1, PAGE - 1, PAGE / 2};
        long[] ends = {PAGE, 1, PAGE - 1, PAGE / 2 + 1};
        if (end == first) {
            long addr = first * PAGE + (first < PAGES ? starts[(int) (salt & 3)] : 0);
            return new long[] {addr, 0};
        }
        long addr = first * PAGE + starts[(int) (salt & 3)];
        long endByte = Math.max((end - 1) * PAGE + ends[(int) ((salt >>> 2) & 3)], addr + 1);
        return new long[] {addr, endByte - addr};
    }

    static void assertMatches(boolean[] model, DirtyBitmap bitmap, String context) {
        for (int p = 0; p < model.length; p++) {
            assertEquals(model[p], bitmap.getDirty(p * PAGE, PAGE), context + " page=" + p);
        }
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void setMarksExactlyTheCoveredPages(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        for (int first = 0; first <= PAGES; first++) {
            for (int end = first; end <= PAGES; end++) {
                long[] r = byteRange(first, end, first * 31L + end);
                bitmap.setDirtyRange(r[0], r[1]);
                boolean[] model = new boolean[PAGES];
                Arrays.fill(model, first, end, true);
                String context = "first=" + first + " end=" + end;
                assertMatches(model, bitmap, context);
                assertEquals(end > first, bitmap.getDirty(r[0], r[1]), context);
                assertEquals(end > first, bitmap.testAndClearDirty(0, LIMIT), context);
                assertFalse(bitmap.getDirty(0, LIMIT), context);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void testAndClearClearsExactlyTheCoveredPages(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        for (int first = 0; first <= PAGES; first++) {
            for (int end = first; end <= PAGES; end++) {
                bitmap.setDirtyRange(0, LIMIT);
                long[] r = byteRange(first, end, first * 17L + end * 3);
                String context = "first=" + first + " end=" + end;
                assertEquals(end > first, bitmap.testAndClearDirty(r[0], r[1]), context);
                assertFalse(bitmap.testAndClearDirty(r[0], r[1]), context + " (again)");
                boolean[] model = new boolean[PAGES];
                Arrays.fill(model, true);
                Arrays.fill(model, first, end, false);
                assertMatches(model, bitmap, context);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void getDirtyIsTrueExactlyForRangesThatCoverADirtyPage(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        for (int dirty : new int[] {0, 1, 62, 63, 64, 65, 127, 128, 129, 191, 255, 256, 298, 299}) {
            bitmap.setDirtyRange(dirty * PAGE + 5, 1);
            for (int first = 0; first <= PAGES; first++) {
                for (int end = first; end <= PAGES; end++) {
                    long[] r = byteRange(first, end, first + end * 7L);
                    assertEquals(first <= dirty && dirty < end, bitmap.getDirty(r[0], r[1]),
                            "dirty=" + dirty + " first=" + first + " end=" + end);
                }
            }
            assertTrue(bitmap.testAndClearDirty(dirty * PAGE, PAGE));
        }
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void snapshotRoundsOutToWordsAndTakesExactlyThem(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        SplittableRandom random = new SplittableRandom(4);
        int[] lengths = {0, 1, 2, 63, 64, 65, 127, 128, 129, 200, PAGES};
        for (int first = 0; first <= PAGES; first++) {
            for (int length : lengths) {
                int end = Math.min(first + length, PAGES);
                boolean[] model = new boolean[PAGES];
                bitmap.testAndClearDirty(0, LIMIT);
                for (int p = 0; p < PAGES; p++) {
                    model[p] = random.nextInt(3) == 0;
                    if (model[p]) {
                        bitmap.setDirtyRange(p * PAGE, PAGE);
                    }
                }
                String context = "first=" + first + " end=" + end;
                long[] r = byteRange(first, end, first + length);
                DirtySnapshot snap = bitmap.snapshotAndClear(r[0], r[1]);
                long wordStart = first & ~63L;
                long wordEnd = (end + 63) & ~63L;
                assertEquals(wordStart * PAGE, snap.start(), context);
                assertEquals(Math.max(wordEnd, wordStart) * PAGE, snap.end(), context);
                long dirtyInSnapshot = 0;
                long expectNext = -1;
                for (long p = snap.end() / PAGE - 1; p >= wordStart; p--) {
                    boolean was = p < PAGES && model[(int) p];
                    assertEquals(was, snap.isDirtyPage(p), context + " page=" + p);
                    if (was) {
                        dirtyInSnapshot++;
                        expectNext = p;
                        model[(int) p] = false; // taken: the whole word is cleared, not only the requested pages
                    }
                    assertEquals(expectNext, snap.nextDirtyPage(p), context + " next from page=" + p);
                }
                assertEquals(dirtyInSnapshot, snap.dirtyPageCount(), context);
                assertMatches(model, bitmap, context + " after");
                // Queries of the snapshot, over sub-ranges of it, against the pages it took.
                long[] words = snap.toWords();
                for (long a = snap.start(); a < snap.end(); a += PAGE * 13) {
                    for (long len : new long[] {0, 1, PAGE, PAGE + 1, 64 * PAGE, snap.end() - a}) {
                        if (len > snap.end() - a) {
                            continue;
                        }
                        boolean expected = false;
                        for (long p = a / PAGE; p < (a + len + PAGE - 1) / PAGE; p++) {
                            long rel = p - wordStart;
                            expected |= (words[(int) (rel >>> 6)] & (1L << rel)) != 0;
                        }
                        assertEquals(expected, snap.getDirty(a, len), context + " query a=" + a + " len=" + len);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void snapshotIntoAReusedSnapshotTakesWhatAFreshOneTakes(DirtyBitmapImpl impl) {
        DirtyBitmap fresh = impl.create(PAGE, PAGES, BLOCK);
        DirtyBitmap reusing = impl.create(PAGE, PAGES, BLOCK);
        DirtySnapshot reused = new DirtySnapshot();
        assertEquals(0, reused.start());
        assertEquals(0, reused.end());
        assertEquals(-1, reused.nextDirtyPage(0));
        SplittableRandom random = new SplittableRandom(5);
        // Large, small, empty and large again: a refill must not show words left from a larger earlier snapshot.
        int[][] ranges = {{0, PAGES}, {70, 10}, {250, 50}, {128, 0}, {1, 299}, {130, 1}, {0, PAGES}, {64, 64}};
        for (int round = 0; round < 20; round++) {
            for (int[] range : ranges) {
                for (int p = 0; p < PAGES; p++) {
                    if (random.nextInt(4) == 0) {
                        fresh.setDirtyRange(p * PAGE, PAGE);
                        reusing.setDirtyRange(p * PAGE, PAGE);
                    }
                }
                String context = "round=" + round + " firstPage=" + range[0] + " pages=" + range[1];
                DirtySnapshot expected = fresh.snapshotAndClear(range[0] * PAGE, range[1] * PAGE);
                assertSame(reused, reusing.snapshotAndClear(range[0] * PAGE, range[1] * PAGE, reused), context);
                assertEquals(expected.start(), reused.start(), context);
                assertEquals(expected.end(), reused.end(), context);
                assertEquals(PAGE, reused.pageSize(), context);
                assertArrayEquals(expected.toWords(), reused.toWords(), context);
                assertEquals(expected.dirtyPageCount(), reused.dirtyPageCount(), context);
                for (long p = expected.start() / PAGE; p <= expected.end() / PAGE; p++) {
                    assertEquals(expected.nextDirtyPage(p), reused.nextDirtyPage(p), context + " next from page=" + p);
                }
                assertThrows(IllegalArgumentException.class, () -> reused.isDirtyPage(reused.end() / PAGE),
                        context);
                for (int p = 0; p < PAGES; p++) {
                    assertEquals(fresh.getDirty(p * PAGE, PAGE), reusing.getDirty(p * PAGE, PAGE),
                            context + " left in the bitmap, page=" + p);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void snapshotIntoAnInvalidRangeLeavesTheSnapshotAlone(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        bitmap.setDirtyRange(65 * PAGE, PAGE);
        DirtySnapshot reused = bitmap.snapshotAndClear(64 * PAGE, 64 * PAGE, new DirtySnapshot());
        assertThrows(IllegalArgumentException.class, () -> bitmap.snapshotAndClear(LIMIT - PAGE, 2 * PAGE, reused));
        assertEquals(64 * PAGE, reused.start());
        assertArrayEquals(new long[] {2L}, reused.toWords());
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void refillingASnapshotOfTheSameRangeAllocatesNothing(DirtyBitmapImpl impl) throws ReflectiveOperationException {
        LongSupplier allocated = ThreadAllocation.counter();
        long pages = 64L << 18; // 64 GiB of guest RAM: 2 MiB of snapshot
        DirtyBitmap bitmap = impl.create(PAGE, pages, DirtyBitmap.DEFAULT_BLOCK_PAGES);
        DirtySnapshot reused = new DirtySnapshot();
        long dirty = 0;
        for (int i = 0; i < 200; i++) {
            bitmap.setDirtyRange((i * 7919L % pages) * PAGE, 8);
            dirty += bitmap.snapshotAndClear(0, pages * PAGE, reused).dirtyPageCount();
        }
        long before = allocated.getAsLong();
        for (int i = 0; i < 200; i++) {
            bitmap.setDirtyRange((i * 7919L % pages) * PAGE, 8);
            dirty += bitmap.snapshotAndClear(0, pages * PAGE, reused).dirtyPageCount();
        }
        long bytes = allocated.getAsLong() - before;
        assertEquals(400, dirty);
        // One fresh snapshot is 2 MiB; the bound leaves room for a few stray allocations by the JIT, nothing more.
        assertTrue(bytes < 64 * 1024, "allocated=" + bytes + " bytes over 200 snapshots of 2 MiB");
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void snapshotQueriesOutsideItsRangeAreRejected(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        DirtySnapshot snap = bitmap.snapshotAndClear(70 * PAGE, 10 * PAGE);
        assertEquals(64 * PAGE, snap.start());
        assertEquals(128 * PAGE, snap.end());
        assertFalse(snap.getDirty(64 * PAGE, 64 * PAGE));
        assertThrows(IllegalArgumentException.class, () -> snap.getDirty(63 * PAGE, PAGE));
        assertThrows(IllegalArgumentException.class, () -> snap.getDirty(127 * PAGE, PAGE + 1));
        assertThrows(IllegalArgumentException.class, () -> snap.isDirtyPage(128));
        assertEquals(-1, snap.nextDirtyPage(0));
        DirtySnapshot empty = bitmap.snapshotAndClear(128 * PAGE, 0);
        assertEquals(empty.start(), empty.end());
        assertFalse(empty.getDirty(128 * PAGE, 0));
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void extendKeepsBitsAndAddsCleanPagesInWholeBlocks(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        bitmap.setDirtyRange(0, PAGE);
        bitmap.setDirtyRange(200 * PAGE, 100 * PAGE);
        assertThrows(IllegalArgumentException.class, () -> bitmap.setDirtyRange(299 * PAGE, 2 * PAGE));
        bitmap.extend(320); // still inside the third block
        assertEquals(320, bitmap.pageCount());
        bitmap.extend(100); // smaller: nothing changes
        assertEquals(320, bitmap.pageCount());
        bitmap.extend(1000); // five blocks more
        assertEquals(1000, bitmap.pageCount());
        boolean[] model = new boolean[1000];
        model[0] = true;
        Arrays.fill(model, 200, 300, true);
        assertMatches(model, bitmap, "after extend");
        bitmap.setDirtyRange(299 * PAGE, 600 * PAGE); // across the old end and four block boundaries
        Arrays.fill(model, 299, 899, true);
        assertMatches(model, bitmap, "marked across the old end");
        DirtySnapshot snap = bitmap.snapshotAndClear(0, 1000 * PAGE);
        assertEquals(1024 * PAGE, snap.end());
        assertEquals(1 + 699, snap.dirtyPageCount());
        assertThrows(IllegalArgumentException.class, () -> bitmap.getDirty(1000 * PAGE, 1));
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void emptyBitmapGrowsFromNothing(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, 0, BLOCK);
        assertEquals(0, bitmap.pageCount());
        assertFalse(bitmap.getDirty(0, 0));
        assertThrows(IllegalArgumentException.class, () -> bitmap.setDirtyRange(0, 1));
        bitmap.extend(1);
        bitmap.setDirtyRange(0, 1);
        assertTrue(bitmap.testAndClearDirty(0, PAGE));
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void qemuSizedBlocksCoverAGuestOf16GiB(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, 4L << 20, DirtyBitmap.DEFAULT_BLOCK_PAGES);
        long last = (16L << 30) - 8;
        bitmap.setDirtyRange(last, 8);
        bitmap.setDirtyRange((8L << 30) - 1, 2); // the byte before and the byte after the block boundary
        DirtySnapshot snap = bitmap.snapshotAndClear(0, 16L << 30);
        assertEquals(3, snap.dirtyPageCount());
        assertEquals((2L << 20) - 1, snap.nextDirtyPage(0));
        assertEquals(2L << 20, snap.nextDirtyPage(2L << 20));
        assertEquals((4L << 20) - 1, snap.nextDirtyPage((2L << 20) + 1));
        assertFalse(bitmap.getDirty(0, 16L << 30));
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void rangesOutsideTheBitmapAreRejected(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        long[][] bad = {{-1, 1}, {0, -1}, {LIMIT, 1}, {LIMIT - 1, 2}, {LIMIT + 1, 0}, {PAGE, Long.MAX_VALUE},
                {Long.MIN_VALUE, 1}, {Long.MAX_VALUE, 1}};
        for (long[] r : bad) {
            String context = "ramAddr=" + r[0] + " length=" + r[1];
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> bitmap.setDirtyRange(r[0], r[1]), context);
            assertTrue(e.getMessage().startsWith("ramAddr=0x"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> bitmap.getDirty(r[0], r[1]), context);
            assertThrows(IllegalArgumentException.class, () -> bitmap.testAndClearDirty(r[0], r[1]), context);
            assertThrows(IllegalArgumentException.class, () -> bitmap.snapshotAndClear(r[0], r[1]), context);
        }
        assertFalse(bitmap.getDirty(0, LIMIT));
        assertThrows(IllegalArgumentException.class, () -> impl.create(3, 1, BLOCK));
        assertThrows(IllegalArgumentException.class, () -> impl.create(PAGE, 1, 32));
        assertThrows(IllegalArgumentException.class, () -> impl.create(PAGE, 1, 96));
        assertThrows(IllegalArgumentException.class, () -> impl.create(PAGE, 1L << 51, BLOCK));
        assertThrows(IllegalArgumentException.class, () -> bitmap.extend(1L << 51));
    }

    @ParameterizedTest
    @MethodSource("dev.guestmem.memory.stress.DirtyBitmapImpl#all")
    void snapshotWordsAreTheBitmapsWords(DirtyBitmapImpl impl) {
        DirtyBitmap bitmap = impl.create(PAGE, PAGES, BLOCK);
        bitmap.setDirtyRange(64 * PAGE, PAGE);
        bitmap.setDirtyRange(127 * PAGE, 3 * PAGE);
        assertArrayEquals(new long[] {1L | 1L << 63, 3L}, bitmap.snapshotAndClear(64 * PAGE, 65 * PAGE).toWords());
    }
}
