package dev.guestmem.memory.internal.dirty;

import dev.guestmem.memory.DirtyBitmap;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * The marks that direct stores into one flat range make, resolved once when the range is put into a dispatch: QEMU's
 * {@code cpu_physical_memory_set_dirty_range} for the clients logging the range, with each client's bitmap block that
 * holds the range's pages found in advance. A store marks its page by testing one word per client and setting the bit
 * only where it is clear; the block table, its bounds check and the walk over all clients stay out of the store.
 *
 * <p>Made only for ranges whose ram_addr pages lie inside one block of every bitmap concerned and inside the pages
 * those bitmaps had when the record was made; anything else gets no record and keeps
 * {@link DirtyBitmap#setDirtyRange}. A block, once made, belongs to its bitmap for good: growth copies the table but
 * keeps every block (see {@link WordDirtyBitmap#extend}), and nothing else replaces one, so a block held here is the
 * one every take swaps and clears.
 *
 * <h2>Implementation note: why testing before setting loses no store</h2>
 * The requirement (see {@link WordDirtyBitmap}): a guest store must be in a snapshot taken after it, or be marked after
 * that snapshot's take. The mark is made after the store's bytes were written, on the storing thread:
 * <ol>
 *   <li>The word is read with an opaque load. HotSpot compiles it with a compiler barrier on either side, so it stays
 *   after the guest store in the machine code; the CPU may still perform it before the store leaves its store
 *   buffer (a store-load reordering).</li>
 *   <li>If it sees the bit clear, it sets it with a volatile OR, which on x86 is a locked instruction and drains the
 *   store buffer: the guest bytes are visible before the bit is, and a take that swaps the bit out sees them.</li>
 *   <li>If it sees the bit set, it writes nothing. The set bit is in the word's modification order before the load.
 *   Either no take swapped it out between the mark that set it and this load (then it is still set after this
 *   store, and the next take carries the page, with whatever the store wrote by then: the next point), or a take
 *   swaps it out after the load. Such a take then calls {@link dev.guestmem.memory.AsymmetricFence#heavy()} before
 *   anyone reads its pages; with membarrier that runs a full barrier on this thread at some point of its program:
 *   if after the guest store, the store is drained and the copy sees it; if before, the load comes after the
 *   barrier too and so after the swap, and would have seen the bit clear, a contradiction. With the fallback
 *   ({@link MarkFence#FENCE_PER_MARK}) the mark itself runs a full fence between the store and the load, so the
 *   store is visible before the load reads the word.</li>
 * </ol>
 * So reading first is the same protocol as {@link WordDirtyBitmap}'s own {@code orIfClear}; what must never happen
 * is a test that is not ordered after the store (a cached "this page is dirty" kept anywhere but in the bitmap word a
 * take swaps, or a load the compiler may move above the store), which {@code DirtyStoreRaceStressTest} is there to
 * catch.
 *
 * <p>Threading: immutable after construction; marks from any number of threads at once.
 */
public final class DirtyMarks {
    private static final VarHandle WORD = MethodHandles.arrayElementVarHandle(long[].class);

    /** The first marked client's block holding the range's pages (one client is the common case: VGA alone). */
    private final long[] first;
    /** The other marked clients' blocks: the same block index in every bitmap. Often empty. */
    private final long[][] more;
    /** The bitmaps behind {@link #blocks}, for marks that span pages. */
    private final DirtyBitmap[] bitmaps;
    /** ram_addr page of word 0 bit 0 of every block here. */
    private final long blockFirstPage;
    private final int pageBits;
    /** The range's first and last ram_addr pages. */
    private final long firstPage;
    private final long lastPage;
    /** Marks that found every bit set, between two looks at whether the whole range is marked ({@link #allMarked}). */
    private final int checkEvery;
    /**
     * Marks that may still find every bit set before the next look. A racy count, read and written plainly by every
     * marking thread: a lost update only moves the next look, which is a hint anyway.
     */
    private int untilCheck;

    private DirtyMarks(long[][] blocks, DirtyBitmap[] bitmaps, long blockFirstPage, int pageBits, long firstPage,
                       long lastPage) {
        this.first = blocks[0];
        this.more = Arrays.copyOfRange(blocks, 1, blocks.length);
        this.bitmaps = bitmaps;
        this.blockFirstPage = blockFirstPage;
        this.pageBits = pageBits;
        this.firstPage = firstPage;
        this.lastPage = lastPage;
        // A look reads every word of the range once per client: one look per 16 words' worth of marks keeps its cost
        // below a sixteenth of a word read per mark, however large the range.
        long words = ((lastPage - firstPage) >>> 6) + 2;
        this.checkEvery = (int) Math.min(Integer.MAX_VALUE, Math.max(64, 16 * words * blocks.length));
        this.untilCheck = checkEvery;
    }

    /**
     * The marks of the range of ram_addr bytes {@code [ramFirst, ramLast]} for the clients in {@code mask} (bit
     * {@code c} for {@code bitmaps[c]}), or null when there is nothing to mark or the range does not qualify (see the
     * class comment): the caller then marks through {@link DirtyBitmap#setDirtyRange}.
     */
    public static DirtyMarks of(DirtyBitmap[] bitmaps, int mask, long ramFirst, long ramLast) {
        if (mask == 0 || ramFirst < 0 || ramLast < ramFirst) {
            return null;
        }
        int n = Integer.bitCount(mask);
        long[][] blocks = new long[n][];
        DirtyBitmap[] marked = new DirtyBitmap[n];
        int pageBits = -1;
        long blockFirstPage = 0;
        int k = 0;
        for (int c = 0; c < bitmaps.length; c++) {
            if ((mask & (1 << c)) == 0) {
                continue;
            }
            if (!(bitmaps[c] instanceof HeapDirtyBitmap b) || (pageBits >= 0 && b.pageBits != pageBits)) {
                return null;
            }
            pageBits = b.pageBits;
            long first = ramFirst >>> b.pageBits;
            long last = ramLast >>> b.pageBits;
            // Acquire (table()): the blocks are seen complete. Pages past pageCount may not have a block yet.
            WordDirtyBitmap.Blocks t = b.table();
            if (last >= t.pageCount || first >>> b.blockBits != last >>> b.blockBits) {
                return null;
            }
            blocks[k] = (long[]) t.blocks[(int) (first >>> b.blockBits)];
            marked[k] = b;
            blockFirstPage = (first >>> b.blockBits) << b.blockBits;
            k++;
        }
        return k == n ? new DirtyMarks(blocks, marked, blockFirstPage, pageBits, ramFirst >>> pageBits,
                ramLast >>> pageBits) : null;
    }

    /**
     * Marks the pages of ram_addr {@code [ramAddr, ramAddr + len)} dirty for every client of this record, after the
     * caller wrote them; they lie in the record's range.
     *
     * @param len bytes, at least 1
     * @return whether the caller should look whether the whole range is marked ({@link #allMarked}): only where
     *         {@link DirtyEpoch#REARMING} holds, now and then, when this mark found every bit set already
     */
    public boolean mark(long ramAddr, long len) {
        final long page = ramAddr >>> pageBits;
        if (page != (ramAddr + len - 1) >>> pageBits) {
            markRange(ramAddr, len);
            return false;
        }
        if (MarkFence.FENCE_PER_MARK) {
            // Full fence (store-load), the fallback's per-mark half; see the class comment, point 3.
            VarHandle.fullFence();
        }
        final int w = (int) ((page - blockFirstPage) >>> 6);
        final long bit = 1L << page;
        boolean wasSet = true;
        // Opaque: kept after the caller's guest store by the compiler; see the class comment.
        if (((long) WORD.getOpaque(first, w) & bit) == 0) {
            set(first, w, bit);
            wasSet = false;
        }
        for (long[] block : more) {
            if (((long) WORD.getOpaque(block, w) & bit) == 0) {
                set(block, w, bit);
                wasSet = false;
            }
        }
        return DirtyEpoch.REARMING && wasSet && checkDue();
    }

    /**
     * Whether the page holding ram_addr {@code ramAddr}, one of this record's, has its bit clear in the first client's
     * bitmap: for a record of the CODE client alone, whether it is protected code. An opaque read, which the compiler
     * keeps in program order with the caller's stores; ordering it against other threads is the caller's (a soft
     * TLB's fill relies on the clear's heavy fence).
     */
    public boolean clean(long ramAddr) {
        final long page = ramAddr >>> pageBits;
        assert page >= firstPage && page <= lastPage : "ramAddr=" + Long.toHexString(ramAddr) + " outside the record";
        return ((long) WORD.getOpaque(first, (int) ((page - blockFirstPage) >>> 6)) & (1L << page)) == 0;
    }

    /**
     * Whether the page holding ram_addr {@code ramAddr}, one of this record's, has its bit set for every client of the
     * record: a soft TLB's fill of a logged page, which may then go fast (QEMU's {@code cpu_physical_memory_is_clean},
     * the other way round). Opaque reads of the words a take swaps; the fill reads the dirty epoch with acquire before
     * calling this, which orders these reads after it.
     */
    public boolean marked(long ramAddr) {
        final long page = ramAddr >>> pageBits;
        assert page >= firstPage && page <= lastPage : "ramAddr=" + Long.toHexString(ramAddr) + " outside the record";
        final int w = (int) ((page - blockFirstPage) >>> 6);
        final long bit = 1L << page;
        if (((long) WORD.getOpaque(first, w) & bit) == 0) {
            return false;
        }
        for (long[] block : more) {
            if (((long) WORD.getOpaque(block, w) & bit) == 0) {
                return false;
            }
        }
        return true;
    }

    /** The bitmaps' page size, as a shift. */
    public int pageBits() {
        return pageBits;
    }

    /** Counts a mark that found its bits set; true once every {@link #checkEvery} of them. */
    private boolean checkDue() {
        int left = untilCheck - 1; // plain read and write of the racy count; see the field
        if (left > 0) {
            untilCheck = left;
            return false;
        }
        untilCheck = checkEvery;
        return true;
    }

    /**
     * Whether every page of the range is marked for every client of this record, read with opaque loads: a caller
     * that read the dirty epoch with acquire before this call and gets true knows that no take of that epoch or
     * before left a page of the range clean (each take swaps its bits before it advances the epoch).
     */
    public boolean allMarked() {
        final int w0 = (int) ((firstPage - blockFirstPage) >>> 6);
        final int w1 = (int) ((lastPage - blockFirstPage) >>> 6);
        final long head = -1L << firstPage; // the bits of pages from firstPage on in word w0
        final long tail = -1L >>> (63 - (lastPage & 63)); // those up to lastPage in word w1
        if (!allSet(first, w0, w1, head, tail)) {
            return false;
        }
        for (long[] block : more) {
            if (!allSet(block, w0, w1, head, tail)) {
                return false;
            }
        }
        return true;
    }

    private static boolean allSet(long[] block, int w0, int w1, long head, long tail) {
        for (int w = w0; w <= w1; w++) {
            long want = (w == w0 ? head : -1L) & (w == w1 ? tail : -1L);
            if (((long) WORD.getOpaque(block, w) & want) != want) {
                return false;
            }
        }
        return true;
    }

    /** The bit was clear: a volatile OR, out of line since a page written again finds it set. */
    private static void set(long[] block, int w, long bit) {
        // Volatile OR: the guest bytes stored before it are visible to whoever swaps the bit out (point 2).
        long unused = (long) WORD.getAndBitwiseOr(block, w, bit);
    }

    /** A mark across pages: each bitmap's own walk. */
    private void markRange(long ramAddr, long len) {
        for (DirtyBitmap b : bitmaps) {
            b.setDirtyRange(ramAddr, len);
        }
    }
}
