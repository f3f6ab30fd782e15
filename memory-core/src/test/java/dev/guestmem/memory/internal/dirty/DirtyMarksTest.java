package dev.guestmem.memory.internal.dirty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtySnapshot;
import java.lang.foreign.Arena;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * {@link DirtyMarks}: a range's resolved marks set exactly the bits {@link DirtyBitmap#setDirtyRange} would, for the
 * clients of its mask only, set them again after a take, keep reaching the bitmap after it grows, and are refused
 * (null, so the caller takes the general walk) for every range they cannot serve.
 */
class DirtyMarksTest {
    private static final long PAGE = 4096;
    private static final long BLOCK_PAGES = 256;

    /** Three clients' bitmaps of {@code pages} pages, blocks of {@value #BLOCK_PAGES} pages. */
    private static DirtyBitmap[] bitmaps(long pages) {
        return new DirtyBitmap[] {new HeapDirtyBitmap(PAGE, pages, BLOCK_PAGES),
                new HeapDirtyBitmap(PAGE, pages, BLOCK_PAGES), new HeapDirtyBitmap(PAGE, pages, BLOCK_PAGES)};
    }

    private static long[] pagesOf(DirtyBitmap b, long pages) {
        DirtySnapshot s = b.snapshotAndClear(0, pages * PAGE);
        long[] out = new long[(int) s.dirtyPageCount()];
        int n = 0;
        for (long p = s.nextDirtyPage(0); p >= 0; p = s.nextDirtyPage(p + 1)) {
            out[n++] = p;
        }
        return out;
    }

    @Test
    void aStoreMarksItsPageForTheMaskedClientsOnly() {
        DirtyBitmap[] b = bitmaps(1024);
        // Range: ram_addr pages 300 to 400, all in block 1 (pages 256 to 511).
        DirtyMarks marks = DirtyMarks.of(b, 0b101, 300 * PAGE, 401 * PAGE - 1);
        assertNotNull(marks);
        marks.mark(350 * PAGE + 8, 8);
        marks.mark(350 * PAGE + 16, 8); // the bit is set: nothing changes
        marks.mark(399 * PAGE + 4095, 1);
        assertEquals("[350, 399]", Arrays.toString(pagesOf(b[0], 1024)));
        assertEquals("[]", Arrays.toString(pagesOf(b[1], 1024)));
        assertEquals("[350, 399]", Arrays.toString(pagesOf(b[2], 1024)));
    }

    @Test
    void aStoreAcrossAPageBorderMarksBothPages() {
        DirtyBitmap[] b = bitmaps(1024);
        DirtyMarks marks = DirtyMarks.of(b, 0b001, 256 * PAGE, 512 * PAGE - 1);
        marks.mark(319 * PAGE + 4092, 8); // pages 319 and 320, across a word of the bitmap too
        assertEquals("[319, 320]", Arrays.toString(pagesOf(b[0], 1024)));
    }

    @Test
    void aMarkAfterATakeSetsTheBitAgain() {
        DirtyBitmap[] b = bitmaps(512);
        DirtyMarks marks = DirtyMarks.of(b, 0b010, 0, 256 * PAGE - 1);
        marks.mark(5 * PAGE, 8);
        assertTrue(b[1].testAndClearDirty(5 * PAGE, PAGE));
        assertFalse(b[1].getDirty(5 * PAGE, PAGE));
        marks.mark(5 * PAGE + 64, 8);
        assertTrue(b[1].getDirty(5 * PAGE, PAGE));
    }

    @Test
    void marksStillReachTheBitmapAfterItGrows() {
        DirtyBitmap[] b = bitmaps(300);
        DirtyMarks marks = DirtyMarks.of(b, 0b001, 256 * PAGE, 300 * PAGE - 1);
        assertNotNull(marks);
        b[0].extend(4096); // a new table, the same block 1
        marks.mark(299 * PAGE, 8);
        assertTrue(b[0].getDirty(299 * PAGE, PAGE));
        assertEquals(1, b[0].snapshotAndClear(0, 4096 * PAGE).dirtyPageCount());
    }

    @Test
    void rangesTheMarksCannotServeGetNone() {
        DirtyBitmap[] b = bitmaps(1024);
        assertNull(DirtyMarks.of(b, 0, 0, PAGE - 1), "no client");
        assertNull(DirtyMarks.of(b, 0b001, 200 * PAGE, 300 * PAGE - 1), "across blocks 0 and 1");
        assertNull(DirtyMarks.of(b, 0b001, 1000 * PAGE, 1025 * PAGE - 1), "past the bitmap's pages");
        assertNull(DirtyMarks.of(b, 0b001, -1, 10), "a block not placed (offset -1)");
        DirtyBitmap[] offHeap = {new OffHeapDirtyBitmap(PAGE, 1024, BLOCK_PAGES, Arena.ofAuto())};
        assertNull(DirtyMarks.of(offHeap, 0b001, 0, PAGE - 1), "another layout");
        DirtyBitmap[] mixed = {b[0], new HeapDirtyBitmap(2 * PAGE, 1024, BLOCK_PAGES)};
        assertNull(DirtyMarks.of(mixed, 0b011, 0, PAGE - 1), "page sizes that differ");
        assertNotNull(DirtyMarks.of(b, 0b111, 0, 256 * PAGE - 1), "block 0 whole");
    }
}
