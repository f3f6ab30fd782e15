package dev.guestmem.memory.internal.dirty;

import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtySnapshot;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * What both {@link DirtyBitmap} layouts share: the block table (QEMU's {@code DirtyMemoryBlocks}), growth, and the
 * walks over pages and words with their memory ordering. A layout only says how one 64-bit word of a block is reached
 * with each atomic access: {@code long[]} blocks in {@link HeapDirtyBitmap}, {@code MemorySegment} blocks in
 * {@link OffHeapDirtyBitmap}.
 *
 * <p>Threading: any number of threads mark, test, clear and snapshot at once; {@link #extend} is serialized by a
 * private lock and never blocks the others (see {@link DirtyBitmap}).
 *
 * @param <B> a block: {@code blockPages / 64} words
 */
abstract sealed class WordDirtyBitmap<B> implements DirtyBitmap permits HeapDirtyBitmap, OffHeapDirtyBitmap {
    private static final VarHandle BLOCKS;

    static {
        try {
            BLOCKS = MethodHandles.lookup().findVarHandle(WordDirtyBitmap.class, "blocks", Blocks.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** A published block table: {@code blocks[b]} is block b; {@code pageCount} pages of it are in use. */
    static final class Blocks {
        final Object[] blocks;
        final long pageCount;

        Blocks(Object[] blocks, long pageCount) {
            this.blocks = blocks;
            this.pageCount = pageCount;
        }
    }

    final int pageBits;
    final int blockBits;
    private final long blockMask;
    private final Object extendLock = new Object();
    /** Written only with a release store (constructor, or {@link #extend} under its lock); read with acquire. */
    @SuppressWarnings("unused")
    private Blocks blocks;

    WordDirtyBitmap(long pageSize, long blockPages) {
        this.pageBits = DirtyWords.pageBits(pageSize);
        this.blockBits = DirtyWords.blockBits(blockPages);
        this.blockMask = blockPages - 1;
    }

    /** Makes the first table; subclass constructors call it once their own fields are set. */
    final void init(long pageCount) {
        Object[] table = new Object[DirtyWords.blocksFor(pageCount, pageBits, blockBits)];
        for (int b = 0; b < table.length; b++) {
            table[b] = newBlock();
        }
        // Release: pairs with the acquire in every method, so the blocks are seen fully zeroed even by a thread that
        // got this bitmap through a data race.
        BLOCKS.setRelease(this, new Blocks(table, pageCount));
    }

    // ---------------------------------------------------------------- the layout's word accesses

    /** A new, clean block. */
    abstract B newBlock();

    /** Volatile atomic OR of {@code mask} into word {@code w} of {@code block}. */
    abstract void or(B block, int w, long mask);

    abstract long getAcquire(B block, int w);

    abstract long getOpaque(B block, int w);

    /** Volatile atomic AND of {@code mask}; returns the old word. */
    abstract long getAndAnd(B block, int w, long mask);

    /** Volatile atomic swap with 0; returns the old word. */
    abstract long getAndClear(B block, int w);

    /**
     * The first word in {@code [from, to)} of {@code block} that a plain read finds non-zero, or {@code to} if there
     * is none. The reads are a hint, with no ordering of their own: they may be vectorized, and a word may change
     * right after it was read.
     */
    abstract int nextNonZero(B block, int from, int to);

    // ---------------------------------------------------------------- DirtyBitmap

    @Override
    public final long pageSize() {
        return 1L << pageBits;
    }

    @Override
    public final long blockPages() {
        return 1L << blockBits;
    }

    @Override
    public final long pageCount() {
        return table().pageCount;
    }

    @Override
    public final void setDirtyRange(long ramAddr, long length) {
        final Blocks t = table();
        final long end = DirtyWords.endPage(ramAddr, length, t.pageCount, pageBits);
        long page = ramAddr >>> pageBits;
        if (MarkFence.FENCE_PER_MARK) {
            // Full fence (store-load), the fallback's per-mark half: the guest data the caller stored before marking is
            // visible to every thread before any word is read below. A word that already holds the bits is then left
            // alone, and whoever swaps or clears those bits afterwards (their volatile read-modify-write comes after
            // this fence's read of the word) sees this data too. Without it, and without a heavy fence on the taking
            // side, a store still in this core's store buffer could miss a snapshot taking a bit that this mark found
            // set: a lost write. With an asymmetric fence installed this is folded away (a static final constant):
            // every take calls heavy() after its swaps instead, which drains this thread's store buffer for it.
            VarHandle.fullFence();
        }
        if (end - page == 1) {
            // One page, what every store inside a page marks: one bit, no loop and no mask arithmetic.
            orIfClear(block(t, page), wordIndex(page), 1L << page);
            return;
        }
        while (page < end) {
            int bit = (int) page & 63;
            long n = Math.min(end - page, 64 - bit);
            orIfClear(block(t, page), wordIndex(page), DirtyWords.mask(bit, n));
            page += n;
        }
    }

    /**
     * Sets the bits of {@code mask} in word {@code w} unless they are all set: after {@code setDirtyRange}'s fence with
     * the fallback, or with nothing before it but the caller's guest store when an asymmetric fence is installed.
     */
    private void orIfClear(B block, int w, long mask) {
        // Opaque read, the asymmetric fence's light half. The JIT keeps it after the caller's guest store (HotSpot
        // compiles an opaque access with a compiler barrier on either side, no instruction), and the CPU may still
        // let it pass that store; what it sees set is then either taken by a snapshot whose heavy() follows the
        // swap and drains the store for it, or still set after this mark. A word that holds the bits is only read,
        // so its cache line stays shared by every core that stores to its pages: most stores land on a page that is
        // dirty already (HotSpot's conditional card marking makes the same trade).
        if ((getOpaque(block, w) & mask) != mask) {
            // Volatile OR: guest data the caller stored before marking is visible to whoever later takes these bits
            // with a swap, an AND-NOT or an acquire load. A whole word is one OR.
            or(block, w, mask);
        }
    }

    @Override
    public final boolean getDirty(long ramAddr, long length) {
        final Blocks t = table();
        final long end = DirtyWords.endPage(ramAddr, length, t.pageCount, pageBits);
        long page = ramAddr >>> pageBits;
        while (page < end) {
            int bit = (int) page & 63;
            long n = Math.min(end - page, 64 - bit);
            // Acquire: a bit seen set comes with the guest data its writer stored before marking.
            if ((getAcquire(block(t, page), wordIndex(page)) & DirtyWords.mask(bit, n)) != 0) {
                return true;
            }
            page += n;
        }
        return false;
    }

    @Override
    public final boolean testAndClearDirty(long ramAddr, long length) {
        final Blocks t = table();
        final long end = DirtyWords.endPage(ramAddr, length, t.pageCount, pageBits);
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
            B block = block(t, page);
            int w = wordIndex(page);
            // Opaque pre-check: marks this load does not see come after it in the word's modification order, so the
            // clear of a word seen clean takes effect at this load; clean words stay shared in other cores' caches.
            if ((getOpaque(block, w) & mask) != 0) {
                // Volatile AND-NOT: returns the bits it cleared, with the data stored before they were marked.
                any |= (getAndAnd(block, w, ~mask) & mask) != 0;
            }
            page += n;
        }
        if (any) {
            heavyAfterTake();
        }
        return any;
    }

    @Override
    public final DirtySnapshot snapshotAndClear(long ramAddr, long length, DirtySnapshot into) {
        final Blocks t = table();
        final long end = DirtyWords.endPage(ramAddr, length, t.pageCount, pageBits);
        final long first = (ramAddr >>> pageBits) & ~63L;
        final int count = DirtyWords.snapshotWords(first, end);
        into.refill(first << pageBits, pageBits, count);
        // Full fence: the plain zero tests below are ordered after it, so they see every mark whose volatile OR came
        // before this call began (as in testAndClearDirty); this is the call's linearization point for the words it
        // finds clean.
        VarHandle.fullFence();
        final int wordsPerBlock = 1 << (blockBits - 6);
        boolean took = false;
        int i = 0;
        while (i < count) {
            final long page = first + ((long) i << 6);
            final B block = block(t, page);
            final int from = wordIndex(page);
            final int stop = (int) Math.min(wordsPerBlock, from + (long) (count - i));
            final int base = i - from; // word base + w of the snapshot is word w of this block
            // The layout skips clean words with plain, vectorized reads: a 0 read means nothing to take yet, and a
            // mark it does not see will be taken by a later snapshot; a sparse bitmap is scanned at memory speed and
            // without a single write, so its cache lines stay shared with the writers.
            for (int w = nextNonZero(block, from, stop); w < stop; w = nextNonZero(block, w + 1, stop)) {
                // Volatile swap: takes the word's bits and the guest data stored before each was marked. Only the
                // swap decides what the snapshot holds; the read that found the word non-zero is a hint.
                long word = getAndClear(block, w);
                if (word != 0) { // 0 when a concurrent snapshot took the word first
                    into.put(base + w, word);
                    took = true;
                }
            }
            i = base + stop;
        }
        if (took) {
            heavyAfterTake();
        }
        return into;
    }

    /**
     * The asymmetric fence's heavy half, after a take that took bits and before the caller reads their pages: a writer
     * whose mark read one of those bits as set before the take has its guest data visible once this returns. A take
     * that took nothing skips it: no page of it is to be read, and a mark racing it finds its bit clear and sets it.
     */
    private static void heavyAfterTake() {
        // First the dirty epoch, which re-arms the soft TLBs' fast write entries of logged pages (QEMU's
        // tlb_reset_dirty): a TLB store whose check of the epoch comes after the heavy fence's barrier on its thread
        // sees the take and marks its page again; see DirtyEpoch.
        DirtyEpoch.advance();
        MarkFence.INSTALLED.heavy();
    }

    @Override
    public final void extend(long newPageCount) {
        synchronized (extendLock) {
            final Blocks old = table();
            if (newPageCount <= old.pageCount) {
                return;
            }
            int count = DirtyWords.blocksFor(newPageCount, pageBits, blockBits);
            Object[] table = old.blocks;
            if (count > table.length) {
                table = Arrays.copyOf(table, count);
                for (int b = old.blocks.length; b < count; b++) {
                    table[b] = newBlock();
                }
            }
            // Release, under extendLock: the new blocks are zeroed before any thread can reach them through the
            // acquire in table(). Threads still using the old table keep writing into the same blocks, which the new
            // table shares, so no mark is lost and nobody waits.
            BLOCKS.setRelease(this, new Blocks(table, newPageCount));
        }
    }

    final Blocks table() {
        // Acquire: pairs with the release in init() and in extend().
        return (Blocks) BLOCKS.getAcquire(this);
    }

    @SuppressWarnings("unchecked")
    private B block(Blocks t, long page) {
        return (B) t.blocks[(int) (page >>> blockBits)];
    }

    /** The index in its block of the word that holds {@code page}. */
    private int wordIndex(long page) {
        return (int) ((page & blockMask) >>> 6);
    }
}
