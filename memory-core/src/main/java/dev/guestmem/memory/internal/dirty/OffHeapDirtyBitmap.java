package dev.guestmem.memory.internal.dirty;

import dev.guestmem.memory.DirtyBitmap;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * A {@link DirtyBitmap} in off-heap memory: each block a {@link MemorySegment} of {@code blockPages / 8} bytes,
 * accessed with the atomics of a {@link ValueLayout#JAVA_LONG} var handle. The block table, growth and the walks with
 * their memory ordering are {@link WordDirtyBitmap}'s.
 *
 * <h2>Layout (fixed, so that another process can share a block)</h2>
 * A block is an array of 64-bit <em>little-endian</em> words, the segment {@value #BLOCK_ALIGNMENT}-byte aligned
 * (so every word is 8-byte aligned, as atomic access requires). Word {@code w} of block {@code b} is at byte offset
 * {@code 8 * w} and covers pages {@code b * blockPages() + 64 * w} onwards: its bit {@code i} (value {@code 1L << i})
 * is page {@code b * blockPages() + 64 * w + i}. Equivalently, over the blocks laid end to end, bit {@code i} of word
 * {@code W} is page {@code 64 * W + i}. A set bit means dirty; writers only ever set bits (atomic OR) and the owning
 * client only clears them (atomic AND-NOT or swap), so a peer that marks pages needs a 64-bit atomic OR and nothing
 * else.
 *
 * <p>Lifetime: the blocks are allocated in the {@link Arena} given at construction (by default an automatic arena,
 * freed by the garbage collector once the bitmap is unreachable); whoever owns that arena closes it, after the last
 * thread that could use the bitmap is done.
 *
 * <p>Threading: any number of threads mark, test, clear and snapshot at once; {@link #extend} is serialized by a
 * private lock and never blocks the others (see {@link DirtyBitmap}).
 */
public final class OffHeapDirtyBitmap extends WordDirtyBitmap<MemorySegment> {
    /** Alignment of every block in bytes: a cache line, so a block shares no line with unrelated data. */
    public static final long BLOCK_ALIGNMENT = 64;
    private static final ValueLayout.OfLong WORD_LAYOUT = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Coordinates (segment, byte offset). */
    private static final VarHandle WORD = WORD_LAYOUT.varHandle();
    /** {@link DirtyWords#ZERO_WORDS} as a segment, to compare blocks with. */
    private static final MemorySegment ZEROS = MemorySegment.ofArray(DirtyWords.ZERO_WORDS).asReadOnly();

    private final Arena arena;

    /** A bitmap of {@code pageCount} pages of {@code pageSize} bytes, blocks of QEMU's size, in an automatic arena. */
    public OffHeapDirtyBitmap(long pageSize, long pageCount) {
        this(pageSize, pageCount, DEFAULT_BLOCK_PAGES, Arena.ofAuto());
    }

    /**
     * A bitmap of {@code pageCount} pages of {@code pageSize} bytes in blocks of {@code blockPages} pages, allocated
     * (zeroed) in {@code arena}, which must allow access from every thread that uses the bitmap (a shared or automatic
     * arena).
     */
    public OffHeapDirtyBitmap(long pageSize, long pageCount, long blockPages, Arena arena) {
        super(pageSize, blockPages);
        this.arena = arena;
        init(pageCount);
    }

    @Override
    MemorySegment newBlock() {
        // Arena.allocate zeroes the memory: a new block is clean.
        return arena.allocate(1L << (blockBits - 3), BLOCK_ALIGNMENT);
    }

    @Override
    void or(MemorySegment block, int w, long mask) {
        // (The old value is typed as the access mode returns it, so the call links exactly.)
        long unused = (long) WORD.getAndBitwiseOr(block, (long) w << 3, mask);
    }

    @Override
    long getAcquire(MemorySegment block, int w) {
        return (long) WORD.getAcquire(block, (long) w << 3);
    }

    @Override
    long getOpaque(MemorySegment block, int w) {
        return (long) WORD.getOpaque(block, (long) w << 3);
    }

    @Override
    long getAndAnd(MemorySegment block, int w, long mask) {
        return (long) WORD.getAndBitwiseAnd(block, (long) w << 3, mask);
    }

    @Override
    long getAndClear(MemorySegment block, int w) {
        return (long) WORD.getAndSet(block, (long) w << 3, 0L);
    }

    @Override
    int nextNonZero(MemorySegment block, int from, int to) {
        final long piece = ZEROS.byteSize();
        for (long off = (long) from << 3, end = (long) to << 3; off < end; off += piece) {
            long n = Math.min(end - off, piece);
            long m = MemorySegment.mismatch(block, off, off + n, ZEROS, 0, n);
            if (m >= 0) {
                return (int) ((off + m) >>> 3);
            }
        }
        return to;
    }

    /** Block {@code b}'s segment as laid out above; for tests of the layout. */
    MemorySegment blockSegment(int b) {
        return (MemorySegment) table().blocks[b];
    }
}
