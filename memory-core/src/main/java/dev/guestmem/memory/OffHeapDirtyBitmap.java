package dev.guestmem.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A {@link DirtyBitmap} in off-heap memory: each block a {@link MemorySegment} of {@code blockPages / 8} bytes,
 * accessed with the atomics of a {@link ValueLayout#JAVA_LONG} var handle. The block table is an immutable
 * {@link Blocks} object (QEMU's {@code DirtyMemoryBlocks}) replaced with a release store when the bitmap grows; the
 * blocks in it are shared between the old table and the new one.
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
public final class OffHeapDirtyBitmap implements DirtyBitmap {
    /** Alignment of every block in bytes: a cache line, so a block shares no line with unrelated data. */
    public static final long BLOCK_ALIGNMENT = 64;
    private static final ValueLayout.OfLong WORD_LAYOUT = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Coordinates (segment, byte offset). */
    private static final VarHandle WORD = WORD_LAYOUT.varHandle();
    private static final VarHandle BLOCKS;

    static {
        try {
            BLOCKS = MethodHandles.lookup().findVarHandle(OffHeapDirtyBitmap.class, "blocks", Blocks.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** A published block table: {@code segments[b]} is block b; {@code pageCount} pages of it are in use. */
    private static final class Blocks {
        final MemorySegment[] segments;
        final long pageCount;

        Blocks(MemorySegment[] segments, long pageCount) {
            this.segments = segments;
            this.pageCount = pageCount;
        }
    }

    private final int pageBits;
    private final int blockBits;
    private final long blockMask;
    private final Arena arena;
    private final Object extendLock = new Object();
    /** Written only with a release store under {@link #extendLock}; read with an acquire load (via BLOCKS). */
    @SuppressWarnings("unused")
    private Blocks blocks;

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
        this.pageBits = DirtyWords.pageBits(pageSize);
        this.blockBits = DirtyWords.blockBits(blockPages);
        this.blockMask = blockPages - 1;
        this.arena = arena;
        MemorySegment[] segments = new MemorySegment[DirtyWords.blocksFor(pageCount, pageBits, blockBits)];
        for (int b = 0; b < segments.length; b++) {
            segments[b] = newBlock();
        }
        // Release: pairs with the acquire in every method, so the blocks are seen fully zeroed even by a thread that
        // got this bitmap through a data race.
        BLOCKS.setRelease(this, new Blocks(segments, pageCount));
    }

    @Override
    public long pageSize() {
        return 1L << pageBits;
    }

    @Override
    public long blockPages() {
        return 1L << blockBits;
    }

    @Override
    public long pageCount() {
        return table().pageCount;
    }

    @Override
    public void setDirtyRange(long ramAddr, long length) {
        final Blocks blocks = table();
        final long end = DirtyWords.endPage(ramAddr, length, blocks.pageCount, pageBits);
        long page = ramAddr >>> pageBits;
        while (page < end) {
            int bit = (int) page & 63;
            long n = Math.min(end - page, 64 - bit);
            // Volatile OR: guest data the caller stored before marking is visible to whoever later takes this bit
            // with a swap, an AND-NOT or an acquire load. A whole word is one OR.
            // (The old value is typed as the access mode returns it, so the call links exactly.)
            long unused = (long) WORD.getAndBitwiseOr(blocks.segments[(int) (page >>> blockBits)], wordOffset(page),
                    DirtyWords.mask(bit, n));
            page += n;
        }
    }

    @Override
    public boolean getDirty(long ramAddr, long length) {
        final Blocks blocks = table();
        final long end = DirtyWords.endPage(ramAddr, length, blocks.pageCount, pageBits);
        long page = ramAddr >>> pageBits;
        while (page < end) {
            int bit = (int) page & 63;
            long n = Math.min(end - page, 64 - bit);
            // Acquire: a bit seen set comes with the guest data its writer stored before marking.
            long word = (long) WORD.getAcquire(blocks.segments[(int) (page >>> blockBits)], wordOffset(page));
            if ((word & DirtyWords.mask(bit, n)) != 0) {
                return true;
            }
            page += n;
        }
        return false;
    }

    @Override
    public boolean testAndClearDirty(long ramAddr, long length) {
        final Blocks blocks = table();
        final long end = DirtyWords.endPage(ramAddr, length, blocks.pageCount, pageBits);
        boolean any = false;
        // Full fence: the opaque pre-checks below are not in the synchronization order, so without it they could
        // miss a mark whose volatile OR came before this call began; after it they see every such mark. This is the
        // call's linearization point for the words it finds clean.
        VarHandle.fullFence();
        long page = ramAddr >>> pageBits;
        while (page < end) {
            int bit = (int) page & 63;
            long n = Math.min(end - page, 64 - bit);
            long mask = DirtyWords.mask(bit, n);
            MemorySegment block = blocks.segments[(int) (page >>> blockBits)];
            long w = wordOffset(page);
            // Opaque pre-check: marks this load does not see come after it in the word's modification order, so the
            // clear of a word seen clean takes effect at this load; clean words stay shared in other cores' caches.
            if (((long) WORD.getOpaque(block, w) & mask) != 0) {
                // Volatile AND-NOT: returns the bits it cleared, with the data stored before they were marked.
                any |= ((long) WORD.getAndBitwiseAnd(block, w, ~mask) & mask) != 0;
            }
            page += n;
        }
        return any;
    }

    @Override
    public DirtySnapshot snapshotAndClear(long ramAddr, long length) {
        final Blocks blocks = table();
        final long end = DirtyWords.endPage(ramAddr, length, blocks.pageCount, pageBits);
        final long first = (ramAddr >>> pageBits) & ~63L;
        final long[] out = new long[DirtyWords.snapshotWords(first, end)];
        // Full fence: as in testAndClearDirty, so the opaque pre-checks see every mark completed before this call.
        VarHandle.fullFence();
        int i = 0;
        long page = first;
        while (i < out.length) {
            MemorySegment block = blocks.segments[(int) (page >>> blockBits)];
            long w = wordOffset(page);
            long stop = Math.min(block.byteSize(), w + ((long) (out.length - i) << 3));
            for (; w < stop; w += 8, i++) {
                // Opaque pre-check, as in testAndClearDirty: a 0 read means nothing to take yet, and a mark not seen
                // will be taken by a later snapshot; a sparse bitmap is then scanned without a single write.
                if ((long) WORD.getOpaque(block, w) != 0) {
                    // Volatile swap: takes the word's bits and the guest data stored before each was marked.
                    out[i] = (long) WORD.getAndSet(block, w, 0L);
                }
            }
            page = first + ((long) i << 6);
        }
        return new DirtySnapshot(first << pageBits, pageBits, out);
    }

    @Override
    public void extend(long newPageCount) {
        synchronized (extendLock) {
            final Blocks old = table();
            if (newPageCount <= old.pageCount) {
                return;
            }
            int count = DirtyWords.blocksFor(newPageCount, pageBits, blockBits);
            MemorySegment[] segments = old.segments;
            if (count > segments.length) {
                segments = Arrays.copyOf(segments, count);
                for (int b = old.segments.length; b < count; b++) {
                    segments[b] = newBlock();
                }
            }
            // Release, under extendLock: the new blocks are zeroed before any thread can reach them through the
            // acquire in table(). Threads still using the old table keep writing into the same block segments, which
            // the new table shares, so no mark is lost and nobody waits.
            BLOCKS.setRelease(this, new Blocks(segments, newPageCount));
        }
    }

    private Blocks table() {
        // Acquire: pairs with the release in the constructor and in extend().
        return (Blocks) BLOCKS.getAcquire(this);
    }

    /** Byte offset in its block of the word that holds {@code page}. */
    private long wordOffset(long page) {
        return ((page & blockMask) >>> 6) << 3;
    }

    private MemorySegment newBlock() {
        // Arena.allocate zeroes the memory: a new block is clean.
        return arena.allocate(1L << (blockBits - 3), BLOCK_ALIGNMENT);
    }

    /** Block {@code b}'s segment as laid out above; for tests of the layout. */
    MemorySegment blockSegment(int b) {
        return table().segments[b];
    }
}
