package dev.guestmem.memory;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * A {@link DirtyBitmap} in the Java heap: each block a {@code long[]} of {@code blockPages / 64} words, accessed
 * through an array-element {@link VarHandle} for the atomics. The block table is an immutable {@link Blocks} object
 * (QEMU's {@code DirtyMemoryBlocks}) replaced with a release store when the bitmap grows; the blocks in it are shared
 * between the old table and the new one.
 *
 * <p>Threading: any number of threads mark, test, clear and snapshot at once; {@link #extend} is serialized by a
 * private lock and never blocks the others (see {@link DirtyBitmap}).
 */
public final class HeapDirtyBitmap implements DirtyBitmap {
    private static final VarHandle WORD = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VarHandle BLOCKS;

    static {
        try {
            BLOCKS = MethodHandles.lookup().findVarHandle(HeapDirtyBitmap.class, "blocks", Blocks.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** A published block table: {@code words[b]} is block b; {@code pageCount} pages of it are in use. */
    private static final class Blocks {
        final long[][] words;
        final long pageCount;

        Blocks(long[][] words, long pageCount) {
            this.words = words;
            this.pageCount = pageCount;
        }
    }

    private final int pageBits;
    private final int blockBits;
    private final long blockMask;
    private final Object extendLock = new Object();
    /** Written only with a release store under {@link #extendLock}; read with an acquire load (via BLOCKS). */
    @SuppressWarnings("unused")
    private Blocks blocks;

    /** A bitmap of {@code pageCount} pages of {@code pageSize} bytes in blocks of QEMU's size. */
    public HeapDirtyBitmap(long pageSize, long pageCount) {
        this(pageSize, pageCount, DEFAULT_BLOCK_PAGES);
    }

    /** A bitmap of {@code pageCount} pages of {@code pageSize} bytes in blocks of {@code blockPages} pages. */
    public HeapDirtyBitmap(long pageSize, long pageCount, long blockPages) {
        this.pageBits = DirtyWords.pageBits(pageSize);
        this.blockBits = DirtyWords.blockBits(blockPages);
        this.blockMask = blockPages - 1;
        long[][] words = new long[DirtyWords.blocksFor(pageCount, pageBits, blockBits)][];
        for (int b = 0; b < words.length; b++) {
            words[b] = new long[(int) (blockPages >>> 6)];
        }
        // Release: pairs with the acquire in every method, so the blocks are seen fully zeroed even by a thread that
        // got this bitmap through a data race.
        BLOCKS.setRelease(this, new Blocks(words, pageCount));
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
            long unused = (long) WORD.getAndBitwiseOr(blocks.words[(int) (page >>> blockBits)], wordIndex(page),
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
            long word = (long) WORD.getAcquire(blocks.words[(int) (page >>> blockBits)], wordIndex(page));
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
            long[] block = blocks.words[(int) (page >>> blockBits)];
            int w = wordIndex(page);
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
            long[] block = blocks.words[(int) (page >>> blockBits)];
            int w = wordIndex(page);
            int stop = (int) Math.min(block.length, w + (long) (out.length - i));
            for (; w < stop; w++, i++) {
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
            long[][] words = old.words;
            if (count > words.length) {
                words = Arrays.copyOf(words, count);
                for (int b = old.words.length; b < count; b++) {
                    words[b] = new long[1 << (blockBits - 6)];
                }
            }
            // Release, under extendLock: the new blocks are zeroed before any thread can reach them through the
            // acquire in table(). Threads still using the old table keep writing into the same block arrays, which
            // the new table shares, so no mark is lost and nobody waits.
            BLOCKS.setRelease(this, new Blocks(words, newPageCount));
        }
    }

    private Blocks table() {
        // Acquire: pairs with the release in the constructor and in extend().
        return (Blocks) BLOCKS.getAcquire(this);
    }

    private int wordIndex(long page) {
        return (int) ((page & blockMask) >>> 6);
    }
}
