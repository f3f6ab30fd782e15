package dev.guestmem.memory.internal.dispatch;

import static dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch.BITS_PER_LEVEL;
import static dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch.NODE_SIZE;

import java.util.Arrays;

/**
 * QEMU's {@code phys_page_set} and {@code phys_page_set_level}, written once for both writers of the page tree: the
 * full build ({@link DispatchBuilder}), which allocates nodes as it goes, and the incremental one
 * ({@link DispatchUpdater}), which copies a node an older dispatch shares before changing it. They differ only in how
 * the entry at a position is made to point to a node this writer may change ({@link #writableNode}).
 *
 * <p>Threading: writer only.
 */
abstract class PageTreeWriter {
    /** Levels of the tree: the root's level is {@code levels - 1}. */
    final int levels;

    /** The walking state of one {@link #setPages}: next page number to set, pages still to set, the leaf to store. */
    private long setPage;
    private long setCount;
    private int setLeaf;

    PageTreeWriter(int levels) {
        this.levels = levels;
    }

    /** The node table, re-read after every {@link #writableNode} (which may grow it). */
    abstract int[] nodes();

    /**
     * Makes the entry at {@code pos} (-1: the root) point to a node this writer may change, at {@code level}, and
     * returns that node's number.
     */
    abstract int writableNode(int pos, int level);

    /** Maps {@code count} pages from page number {@code page} to section {@code leaf}. */
    final void setPages(long page, long count, int leaf) {
        setPage = page;
        setCount = count;
        setLeaf = leaf;
        setLevel(-1, levels - 1);
    }

    /**
     * Fills the node the entry at {@code pos} points to, one entry per {@code 512^level} pages: an aligned block of
     * that many pages becomes one leaf here, anything smaller goes one level down.
     */
    private void setLevel(int pos, int level) {
        int base = writableNode(pos, level) * NODE_SIZE;
        int shift = level * BITS_PER_LEVEL;
        long step = 1L << shift;
        int i = (int) ((setPage >>> shift) & (NODE_SIZE - 1));
        while (setCount != 0 && i < NODE_SIZE) {
            if ((setPage & (step - 1)) == 0 && Long.compareUnsigned(setCount, step) >= 0) {
                // A run of whole aligned blocks: one leaf entry each, written in one go.
                long whole = Long.divideUnsigned(setCount, step);
                int run = (int) Math.min(whole, NODE_SIZE - i);
                Arrays.fill(nodes(), base + i, base + i + run, setLeaf);
                setPage += run * step;
                setCount -= run * step;
                i += run;
            } else {
                setLevel(base + i, level - 1);
                i++;
            }
        }
    }
}
