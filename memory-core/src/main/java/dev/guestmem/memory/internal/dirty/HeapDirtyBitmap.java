package dev.guestmem.memory.internal.dirty;

import dev.guestmem.memory.DirtyBitmap;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A {@link DirtyBitmap} in the Java heap: each block a {@code long[]} of {@code blockPages / 64} words, accessed
 * through an array-element {@link VarHandle} for the atomics. The block table, growth and the walks with their memory
 * ordering are {@link WordDirtyBitmap}'s.
 *
 * <p>Threading: any number of threads mark, test, clear and snapshot at once; {@link #extend} is serialized by a
 * private lock and never blocks the others (see {@link DirtyBitmap}).
 */
public final class HeapDirtyBitmap extends WordDirtyBitmap<long[]> {
    private static final VarHandle WORD = MethodHandles.arrayElementVarHandle(long[].class);

    /** A bitmap of {@code pageCount} pages of {@code pageSize} bytes in blocks of QEMU's size. */
    public HeapDirtyBitmap(long pageSize, long pageCount) {
        this(pageSize, pageCount, DEFAULT_BLOCK_PAGES);
    }

    /** A bitmap of {@code pageCount} pages of {@code pageSize} bytes in blocks of {@code blockPages} pages. */
    public HeapDirtyBitmap(long pageSize, long pageCount, long blockPages) {
        super(pageSize, blockPages);
        init(pageCount);
    }

    @Override
    long[] newBlock() {
        return new long[1 << (blockBits - 6)];
    }

    @Override
    void or(long[] block, int w, long mask) {
        // (The old value is typed as the access mode returns it, so the call links exactly.)
        long unused = (long) WORD.getAndBitwiseOr(block, w, mask);
    }

    @Override
    long getAcquire(long[] block, int w) {
        return (long) WORD.getAcquire(block, w);
    }

    @Override
    long getOpaque(long[] block, int w) {
        return (long) WORD.getOpaque(block, w);
    }

    @Override
    long getAndAnd(long[] block, int w, long mask) {
        return (long) WORD.getAndBitwiseAnd(block, w, mask);
    }

    @Override
    long getAndClear(long[] block, int w) {
        return (long) WORD.getAndSet(block, w, 0L);
    }

    @Override
    int nextNonZero(long[] block, int from, int to) {
        return DirtyWords.nextNonZero(block, from, to);
    }
}
