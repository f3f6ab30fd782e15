package dev.guestmem.bench;

import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtySnapshot;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * What taking a dirty bitmap costs against copying its bytes, and how fast pages are marked while a consumer takes
 * them. One bit per 4 KiB page, so a guest of R bytes has {@code R / 4096} pages and a bitmap of {@code R / 32768}
 * bytes: 1 GiB = 256 Ki pages (32 KiB of bitmap), 16 GiB = 4 Mi pages (512 KiB), 64 GiB = 16 Mi pages (2 MiB).
 *
 * <p><b>Snapshot</b> ({@code snapshotAndClear}, {@code snapshotAndClearInto}, {@code markSparse},
 * {@code copyBaseline}; time per call): the bitmap of {@code ramGiB} GiB of guest RAM is sparsely touched, one page in
 * every {@value #SPARSE_STRIDE} (one per 64 MiB of RAM), and {@code snapshotAndClear} marks those pages again and
 * takes the whole bitmap with {@link DirtyBitmap#snapshotAndClear(long, long)}, which allocates the snapshot's words;
 * {@code snapshotAndClearInto} does the same into one reused {@link DirtySnapshot}
 * ({@link DirtyBitmap#snapshotAndClear(long, long, DirtySnapshot)}, no allocation), as a display or a migration
 * taking the same range every round would; {@code markSparse} is the marking alone, to subtract. The baseline, in the
 * same run, is {@link MemorySegment#copy} of the bitmap's number of bytes between two native segments: the
 * memcpy-class limit. Derived figures: bitmap bandwidth in GB/s = {@code (R / 32768) / t} and pages per second =
 * {@code (R / 4096) / t}, with t the time per snapshot less {@code markSparse}; e.g. 2 MiB in 200 us is 10.5 GB/s of
 * bitmap and 84 Gpages/s.
 *
 * <p><b>Marking under snapshots</b> (groups {@code oneWriter} and {@code twoWriters}; operations per microsecond per
 * thread): one or two threads mark random single pages ({@link DirtyBitmap#setDirtyRange} of 8 bytes, as a store does)
 * of a 1 GiB bitmap while a third thread loops {@code snapshotAndClear} over all of it into its reused snapshot; JMH
 * reports each thread's rate. Uniformly random pages mean the writers mostly miss in cache: an upper bound on the cost
 * of a mark, not a typical one.
 *
 * <p>Run: {@code ./guestmem bench DirtyBitmapBenchmark} (or e.g. {@code -p impl=offheap -p ramGiB=64}).
 */
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class DirtyBitmapBenchmark {
    static final long PAGE = 4096;
    /** Pages between two touched pages: 64 MiB of guest RAM. */
    static final int SPARSE_STRIDE = 16384;

    static DirtyBitmap newBitmap(String impl, long pages) {
        return switch (impl) {
            case "heap" -> DirtyBitmap.onHeap(PAGE, pages);
            case "offheap" -> DirtyBitmap.offHeap(PAGE, pages);
            default -> throw new IllegalArgumentException("impl=" + impl);
        };
    }

    /** A sparsely touched bitmap over {@code ramGiB} GiB, and two native segments of its size for the baseline. */
    @State(Scope.Thread)
    public static class Snapshot {
        @Param({"1", "16", "64"})
        public int ramGiB;
        @Param({"heap", "offheap"})
        public String impl;

        DirtyBitmap bitmap;
        long limit;
        long[] touched;
        Arena arena;
        MemorySegment src;
        MemorySegment dst;
        /** Refilled by every {@code snapshotAndClearInto}. */
        final DirtySnapshot reused = new DirtySnapshot();

        @Setup
        public void setUp() {
            long pages = (long) ramGiB << 18;
            limit = pages * PAGE;
            bitmap = newBitmap(impl, pages);
            SplittableRandom random = new SplittableRandom(1);
            touched = new long[(int) (pages / SPARSE_STRIDE)];
            for (int i = 0; i < touched.length; i++) {
                touched[i] = ((long) i * SPARSE_STRIDE + random.nextInt(SPARSE_STRIDE)) * PAGE;
            }
            arena = Arena.ofConfined();
            src = arena.allocate(pages / 8, 64);
            dst = arena.allocate(pages / 8, 64);
            for (long page : touched) {
                src.set(ValueLayout.JAVA_BYTE, page / PAGE / 8, (byte) 1);
            }
        }

        @TearDown
        public void tearDown() {
            arena.close();
        }
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public DirtySnapshot snapshotAndClear(Snapshot s) {
        return markTouched(s).snapshotAndClear(0, s.limit);
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public DirtySnapshot snapshotAndClearInto(Snapshot s) {
        return markTouched(s).snapshotAndClear(0, s.limit, s.reused);
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public DirtyBitmap markSparse(Snapshot s) {
        return markTouched(s);
    }

    /** Marks the touched pages again, as an 8-byte store to each would; returns the bitmap. */
    static DirtyBitmap markTouched(Snapshot s) {
        final DirtyBitmap bitmap = s.bitmap;
        for (long addr : s.touched) {
            bitmap.setDirtyRange(addr, 8);
        }
        return bitmap;
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public MemorySegment copyBaseline(Snapshot s) {
        MemorySegment.copy(s.src, 0, s.dst, 0, s.src.byteSize());
        return s.dst;
    }

    /** A 1 GiB bitmap shared by the threads of one group. */
    @State(Scope.Group)
    public static class Shared {
        static final long PAGES = 1L << 18;

        @Param({"heap", "offheap"})
        public String impl;

        DirtyBitmap bitmap;

        @Setup
        public void setUp() {
            bitmap = newBitmap(impl, PAGES);
        }
    }

    /** The snapshotting thread's reused snapshot. */
    @State(Scope.Thread)
    public static class Taker {
        final DirtySnapshot reused = new DirtySnapshot();
    }

    /** Each writer's random page sequence (xorshift). */
    @State(Scope.Thread)
    public static class Writer {
        long x;

        @Setup
        public void setUp() {
            x = new SplittableRandom().nextLong() | 1;
        }

        long nextPage() {
            long v = x;
            v ^= v << 13;
            v ^= v >>> 7;
            v ^= v << 17;
            x = v;
            return v & (Shared.PAGES - 1);
        }
    }

    @Benchmark
    @Group("oneWriter")
    @GroupThreads(1)
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public long mark1(Shared shared, Writer writer) {
        long page = writer.nextPage();
        shared.bitmap.setDirtyRange(page * PAGE, 8);
        return page;
    }

    @Benchmark
    @Group("oneWriter")
    @GroupThreads(1)
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public DirtySnapshot snapshot1(Shared shared, Taker taker) {
        return shared.bitmap.snapshotAndClear(0, Shared.PAGES * PAGE, taker.reused);
    }

    @Benchmark
    @Group("twoWriters")
    @GroupThreads(2)
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public long mark2(Shared shared, Writer writer) {
        long page = writer.nextPage();
        shared.bitmap.setDirtyRange(page * PAGE, 8);
        return page;
    }

    @Benchmark
    @Group("twoWriters")
    @GroupThreads(1)
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public DirtySnapshot snapshot2(Shared shared, Taker taker) {
        return shared.bitmap.snapshotAndClear(0, Shared.PAGES * PAGE, taker.reused);
    }
}
