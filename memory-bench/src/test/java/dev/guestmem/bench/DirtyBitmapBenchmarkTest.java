package dev.guestmem.bench;

import dev.guestmem.memory.DirtySnapshot;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The snapshot benchmarks take what they claim: both forms take exactly the touched pages of the whole bitmap, the
 * reused snapshot is refilled rather than replaced, and the copy baseline moves the bitmap's number of bytes.
 */
class DirtyBitmapBenchmarkTest {

    @ParameterizedTest
    @ValueSource(strings = {"heap", "offheap"})
    void bothSnapshotFormsTakeTheTouchedPagesAndTheBaselineCopiesTheBitmapsBytes(String impl) {
        DirtyBitmapBenchmark.Snapshot s = new DirtyBitmapBenchmark.Snapshot();
        s.ramGiB = 1;
        s.impl = impl;
        s.setUp();
        try {
            long pages = 1L << 18;
            assertEquals(pages / DirtyBitmapBenchmark.SPARSE_STRIDE, s.touched.length);
            DirtyBitmapBenchmark bench = new DirtyBitmapBenchmark();
            DirtySnapshot fresh = bench.snapshotAndClear(s);
            DirtySnapshot reused = bench.snapshotAndClearInto(s);
            assertSame(s.reused, reused);
            assertEquals(s.touched.length, fresh.dirtyPageCount());
            assertEquals(pages * DirtyBitmapBenchmark.PAGE, fresh.end());
            assertArrayEquals(fresh.toWords(), reused.toWords());
            for (long addr : s.touched) {
                assertTrue(reused.isDirtyPage(addr / DirtyBitmapBenchmark.PAGE), "addr=" + addr);
            }
            assertEquals(pages / 8, bench.copyBaseline(s).byteSize());
        } finally {
            s.tearDown();
        }
    }
}
