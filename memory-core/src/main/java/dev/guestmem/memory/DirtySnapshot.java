package dev.guestmem.memory;

import dev.guestmem.memory.internal.dirty.DirtyWords;
import java.util.Arrays;

/**
 * The dirty bits of a ram_addr range taken by {@link DirtyBitmap#snapshotAndClear}: QEMU's
 * {@code DirtyBitmapSnapshot}, queried with {@link #getDirty} as QEMU's {@code cpu_physical_memory_snapshot_get_dirty}.
 * The range is whole 64-page words: {@link #start()} and {@link #end()} are multiples of {@code 64 * pageSize()}.
 *
 * <p>A snapshot made with {@link #DirtySnapshot()} is for reuse: pass it to
 * {@link DirtyBitmap#snapshotAndClear(long, long, DirtySnapshot)} again and again, and each call refills it, allocating
 * only when it needs more words than the snapshot has held before (a display or a migration taking the same range
 * every round allocates once).
 *
 * <p>Threading: one returned by {@link DirtyBitmap#snapshotAndClear(long, long)} is never written again, and any
 * thread may query it. One that is refilled belongs to its caller: a call that refills it writes it, so it may be
 * queried by other threads only between refills, after a happens-before edge from the refill (as for any object).
 */
public final class DirtySnapshot {
    private static final long[] NO_WORDS = new long[0];

    private long start;
    private int pageBits;
    /** Words {@code [0, wordCount)} are the snapshot; every word past them is 0. */
    private long[] words;
    private int wordCount;
    /**
     * For refilling without clearing every word: {@code nonZero[0, nonZeroCount)} lists every non-zero word of
     * {@link #words}; {@code nonZeroCount} is -1 when they were too many to list (or this snapshot was never refilled),
     * and then they all lie in {@code [0, wordCount)}.
     */
    private int[] nonZero;
    private int nonZeroCount = -1;

    /**
     * An empty snapshot (no pages, {@link #start()} 0) to be refilled by
     * {@link DirtyBitmap#snapshotAndClear(long, long, DirtySnapshot)}.
     */
    public DirtySnapshot() {
        this.words = NO_WORDS;
    }

    /** {@code words[i]} holds pages {@code start / pageSize + 64 * i} onwards, bit j for page +j; not copied. */
    DirtySnapshot(long start, int pageBits, long[] words) {
        assert (start & ((64L << pageBits) - 1)) == 0 : "start=0x" + Long.toHexString(start);
        this.start = start;
        this.pageBits = pageBits;
        this.words = words;
        this.wordCount = words.length;
    }

    /**
     * Makes this the snapshot of {@code count} words from ram_addr {@code start} (a multiple of
     * {@code 64 << pageBits}), all clear, to be filled with {@link #put}. Reuses the words when there are enough, so
     * that refilling allocates nothing; and clears only the words listed as non-zero when they were few, so that
     * refilling a sparse snapshot does not write all of it. For {@link DirtyBitmap} implementations, inside their
     * {@code snapshotAndClear}.
     */
    public void refill(long start, int pageBits, int count) {
        if (count < 0 || pageBits < 0 || pageBits > 31 || (start & ((64L << pageBits) - 1)) != 0) {
            throw new IllegalArgumentException("start=0x" + Long.toHexString(start) + " pageBits=" + pageBits
                    + " count=" + count + ": start must be a multiple of 64 pages, count not negative");
        }
        final long[] w = words;
        if (w.length < count) {
            words = new long[count];
            nonZero = null;
            nonZeroCount = -1; // all zero; listing starts with the next refill, so a one-off snapshot has no list
        } else {
            if (nonZeroCount < 0) {
                Arrays.fill(w, 0, wordCount, 0L);
            } else {
                final int[] list = nonZero;
                for (int i = 0; i < nonZeroCount; i++) {
                    w[list[i]] = 0;
                }
            }
            if (nonZero == null) {
                // A sixteenth of the words: more than that non-zero, and clearing them all costs little more.
                nonZero = new int[Math.max(16, w.length >>> 4)];
            }
            nonZeroCount = 0;
        }
        this.start = start;
        this.pageBits = pageBits;
        this.wordCount = count;
    }

    /**
     * Sets word {@code i} (below the count given to {@link #refill}) to {@code word}, which is not 0; for
     * {@link DirtyBitmap} implementations, after {@link #refill}.
     */
    public void put(int i, long word) {
        assert i < wordCount && word != 0 : "i=" + i + " wordCount=" + wordCount;
        words[i] = word;
        final int n = nonZeroCount;
        if (n >= 0) {
            if (n < nonZero.length) {
                nonZero[n] = i;
                nonZeroCount = n + 1;
            } else {
                nonZeroCount = -1;
            }
        }
    }

    /** First ram_addr the snapshot covers, a multiple of {@code 64 * pageSize()}. */
    public long start() {
        return start;
    }

    /** ram_addr just past the snapshot, a multiple of {@code 64 * pageSize()}. */
    public long end() {
        return start + ((long) wordCount << (6 + pageBits));
    }

    /** Bytes per page of the bitmap it was taken from (1 for a reusable snapshot not filled yet). */
    public long pageSize() {
        return 1L << pageBits;
    }

    /**
     * Whether any page of {@code [ramAddr, ramAddr + length)} (ram_addr, bytes) was dirty when taken. The range must
     * lie within {@code [start(), end())}.
     */
    public boolean getDirty(long ramAddr, long length) {
        if (ramAddr < start || length < 0 || ramAddr > end() || length > end() - ramAddr) {
            throw outside(ramAddr, length);
        }
        if (length == 0) {
            return false;
        }
        long first = (ramAddr - start) >>> pageBits;
        long end = ((ramAddr - start) + length + (1L << pageBits) - 1) >>> pageBits;
        return DirtyWords.anySet(words, first, end);
    }

    /** Whether page {@code page} (a page number in the ram_addr space, not relative to the snapshot) was dirty. */
    public boolean isDirtyPage(long page) {
        long rel = page - (start >>> pageBits);
        if (rel < 0 || rel >= (long) wordCount << 6) {
            throw outside(page << pageBits, 1L << pageBits);
        }
        return (words[(int) (rel >>> 6)] & (1L << rel)) != 0;
    }

    /**
     * The first dirty page at or after page {@code fromPage} (page numbers of the ram_addr space), or -1 if there is
     * none before {@link #end()}: how a display or a migration walks the pages to redraw or send.
     */
    public long nextDirtyPage(long fromPage) {
        long base = start >>> pageBits;
        long rel = Math.max(fromPage - base, 0);
        int w = (int) (rel >>> 6);
        if (w >= wordCount) {
            return -1;
        }
        long word = words[w] & (-1L << rel);
        while (word == 0) {
            if (++w == wordCount) {
                return -1;
            }
            word = words[w];
        }
        return base + ((long) w << 6) + Long.numberOfTrailingZeros(word);
    }

    /** Number of dirty pages in the snapshot. */
    public long dirtyPageCount() {
        final long[] w = words;
        long n = 0;
        for (int i = 0; i < wordCount; i++) {
            n += Long.bitCount(w[i]);
        }
        return n;
    }

    /** A copy of the words: word i holds the pages from {@code start() / pageSize() + 64 * i}, bit j for page +j. */
    public long[] toWords() {
        return Arrays.copyOf(words, wordCount);
    }

    private IllegalArgumentException outside(long ramAddr, long length) {
        return new IllegalArgumentException("ramAddr=0x" + Long.toHexString(ramAddr) + " length=0x"
                + Long.toHexString(length) + " snapshotStart=0x" + Long.toHexString(start) + " snapshotEnd=0x"
                + Long.toHexString(end()));
    }
}
