package dev.guestmem.memory;

import dev.guestmem.memory.internal.dirty.HeapDirtyBitmap;
import dev.guestmem.memory.internal.dirty.OffHeapDirtyBitmap;
import java.lang.foreign.Arena;

/**
 * One dirty-memory client's bitmap over the ram_addr space: one bit per target page, set when the page is written,
 * read and cleared by the client. Models QEMU's per-client {@code DirtyMemoryBlocks} (include/exec/ram_addr.h) and
 * the {@code cpu_physical_memory_*_dirty} functions that work on it.
 *
 * <h2>Layout</h2>
 * Page {@code p} (ram_addr {@code p * pageSize()} up to the next page) is bit {@code p % 64} of 64-bit word
 * {@code p / 64}. Words are grouped in blocks of {@link #blockPages()} pages (a multiple of 64, a power of two); block
 * {@code b} holds pages {@code [b * blockPages(), (b + 1) * blockPages())}. {@link #extend} adds whole blocks and never
 * moves an existing one, so RAM can be added while writers mark pages (QEMU's {@code dirty_memory_extend}).
 *
 * <h2>Units</h2>
 * Every {@code ramAddr} is a ram_addr (an offset into the ram_addr space, not a guest-physical address) and every
 * {@code length} is in bytes; a range covers each page that holds one of its bytes, so {@code (ramAddr, length)}
 * covers pages {@code ramAddr / pageSize()} up to but excluding {@code ceil((ramAddr + length) / pageSize())}, and a
 * length of 0 covers none. A range must lie within {@code [0, pageCount() * pageSize())}; one that does not is a
 * programming error and throws {@link IllegalArgumentException} at once.
 *
 * <h2>Memory ordering</h2>
 * Marking ({@link #setDirtyRange}) reads each word and does an atomic OR of the bits it does not hold yet (a word that
 * already holds them all is only read); clearing ({@link #testAndClearDirty}) is an atomic AND-NOT, and taking
 * ({@link #snapshotAndClear}) an atomic swap with 0: volatile read-modify-writes. The loads of {@link #getDirty} are
 * acquire loads. Ordering between a writer's guest store and its mark is an asymmetric fence
 * ({@link AsymmetricFence#installed()}): with {@code membarrier} the mark adds no fence, and every test-and-clear or
 * snapshot that took a bit calls {@link AsymmetricFence#heavy()} before it returns; with the fallback every mark starts
 * with a full fence. Either way, a writer that stores guest data and <em>then</em> marks its page makes that data
 * visible to every thread that takes the bit, once the take has returned: through a snapshot that swapped it out or a
 * test-and-clear that returned {@code true} for it, and so to whoever reads the page after the take (a display, a
 * migration). A mark that found its bit set just before a take swapped it is covered by the take's heavy fence; one
 * that reads after the take finds the bit clear and sets it again, for the next take. {@code getDirty} sees the data
 * of the mark that set the bit when that mark's OR set it. Taking and clearing start with a full fence, so they see
 * every mark that completed before they were called (a word that reads 0 is then skipped without a write, which keeps
 * a sparse bitmap's cache lines shared). Each word is atomic on its own; a range of several words is not taken at one
 * instant (nor is it in QEMU). Each bit a mark sets is taken by exactly one later snapshot, test-and-clear or reset of
 * its page (or merges with a bit still set there): a mark that lands while a snapshot runs is in that snapshot or in
 * the next one that covers its page, never in both and never in neither.
 *
 * <p>Threading: any number of threads may call every method at once; {@link #extend} calls are serialized among
 * themselves by the bitmap and never block the other methods.
 */
public interface DirtyBitmap {
    /** QEMU's {@code DIRTY_MEMORY_BLOCK_SIZE}: 2 Mi pages (256 KiB of bitmap, 8 GiB of RAM at 4 KiB pages). */
    long DEFAULT_BLOCK_PAGES = 1L << 21;

    /**
     * A bitmap in the Java heap of {@code pageCount} pages of {@code pageSize} bytes (a power of two), in blocks of
     * {@link #DEFAULT_BLOCK_PAGES} pages: the kind each client of a {@link MemorySystem} has.
     */
    static DirtyBitmap onHeap(long pageSize, long pageCount) {
        return new HeapDirtyBitmap(pageSize, pageCount);
    }

    /** {@link #onHeap(long, long)} in blocks of {@code blockPages} pages (a power of two, at least 64). */
    static DirtyBitmap onHeap(long pageSize, long pageCount, long blockPages) {
        return new HeapDirtyBitmap(pageSize, pageCount, blockPages);
    }

    /**
     * A bitmap off the heap, in an automatic arena, of {@code pageCount} pages of {@code pageSize} bytes in blocks of
     * {@link #DEFAULT_BLOCK_PAGES} pages. Its blocks have a fixed layout that another process can share: each an array
     * of 64-bit little-endian words, 64-byte aligned, bit {@code i} of word {@code w} of block {@code b} being page
     * {@code b * blockPages() + 64 * w + i}; writers only set bits (atomic OR), the owner only clears them.
     */
    static DirtyBitmap offHeap(long pageSize, long pageCount) {
        return new OffHeapDirtyBitmap(pageSize, pageCount);
    }

    /**
     * {@link #offHeap(long, long)} in blocks of {@code blockPages} pages allocated (zeroed) in {@code arena}, which must
     * allow access from every thread that uses the bitmap; whoever owns the arena closes it after the last of them.
     */
    static DirtyBitmap offHeap(long pageSize, long pageCount, long blockPages, Arena arena) {
        return new OffHeapDirtyBitmap(pageSize, pageCount, blockPages, arena);
    }

    /** Bytes per page: a power of two, fixed at construction (QEMU's {@code TARGET_PAGE_SIZE}). */
    long pageSize();

    /** Pages per block: a power of two, at least 64. */
    long blockPages();

    /** Pages the bitmap covers now: the ram_addr space is {@code [0, pageCount() * pageSize())}. */
    long pageCount();

    /**
     * Marks every page of {@code [ramAddr, ramAddr + length)} dirty: per word one read and, when the word lacks some of
     * the bits, one atomic OR (a run of whole words costs one OR each), after one full fence only where the fallback
     * {@link AsymmetricFence} is installed. QEMU's
     * {@code cpu_physical_memory_set_dirty_range} for one client.
     */
    void setDirtyRange(long ramAddr, long length);

    /**
     * Whether any page of {@code [ramAddr, ramAddr + length)} is dirty, without clearing anything. QEMU's
     * {@code cpu_physical_memory_get_dirty}.
     */
    boolean getDirty(long ramAddr, long length);

    /**
     * Clears every page of {@code [ramAddr, ramAddr + length)} with one atomic AND-NOT per word, and returns whether
     * any of them was dirty. QEMU's {@code cpu_physical_memory_test_and_clear_dirty}.
     */
    boolean testAndClearDirty(long ramAddr, long length);

    /**
     * Takes and clears the dirty bits of {@code [ramAddr, ramAddr + length)} rounded out to whole 64-page words, as
     * QEMU's {@code cpu_physical_memory_snapshot_and_clear_dirty} does: the snapshot starts at {@code ramAddr} rounded
     * down to a multiple of {@code 64 * pageSize()} and ends at {@code ramAddr + length} rounded up to one, and the
     * pages of those words outside the requested range are taken and cleared too. Each word is taken with one atomic
     * swap with 0 (a word that reads 0 is left alone, which is the same as swapping 0 for 0).
     */
    default DirtySnapshot snapshotAndClear(long ramAddr, long length) {
        return snapshotAndClear(ramAddr, length, new DirtySnapshot());
    }

    /**
     * {@link #snapshotAndClear(long, long)} into {@code into}, which is refilled and returned: its earlier contents
     * are gone, and its words array is reused when it is large enough, so that taking the same range again and again
     * allocates nothing after the first time. The bits are taken exactly as by {@code snapshotAndClear(long, long)}.
     * On an invalid range it throws before {@code into} is touched.
     */
    DirtySnapshot snapshotAndClear(long ramAddr, long length, DirtySnapshot into);

    /**
     * Grows the bitmap to cover at least {@code newPageCount} pages, in whole blocks; new pages are clean. A count not
     * above {@link #pageCount()} changes nothing. Existing blocks keep their place and their bits, and threads marking
     * or taking pages at the same time are never stopped: one that still uses the block table from before the growth
     * works on the same blocks. QEMU's {@code dirty_memory_extend}.
     */
    void extend(long newPageCount);
}
