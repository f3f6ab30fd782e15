package dev.guestmem.memory;

import java.util.Arrays;

/**
 * The dirty bits of a ram_addr range taken by {@link DirtyBitmap#snapshotAndClear}: QEMU's
 * {@code DirtyBitmapSnapshot}, queried with {@link #getDirty} as QEMU's {@code cpu_physical_memory_snapshot_get_dirty}.
 * The range is whole 64-page words: {@link #start()} and {@link #end()} are multiples of {@code 64 * pageSize()}.
 *
 * <p>Threading: immutable once returned; any thread may query it.
 */
public final class DirtySnapshot {
    private final long start;
    private final int pageBits;
    private final long[] words;

    /** {@code words[i]} holds pages {@code start / pageSize + 64 * i} onwards, bit j for page +j; not copied. */
    DirtySnapshot(long start, int pageBits, long[] words) {
        assert (start & ((64L << pageBits) - 1)) == 0 : "start=0x" + Long.toHexString(start);
        this.start = start;
        this.pageBits = pageBits;
        this.words = words;
    }

    /** First ram_addr the snapshot covers, a multiple of {@code 64 * pageSize()}. */
    public long start() {
        return start;
    }

    /** ram_addr just past the snapshot, a multiple of {@code 64 * pageSize()}. */
    public long end() {
        return start + ((long) words.length << (6 + pageBits));
    }

    /** Bytes per page of the bitmap it was taken from. */
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
        if (rel < 0 || rel >= (long) words.length << 6) {
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
        if (w >= words.length) {
            return -1;
        }
        long word = words[w] & (-1L << rel);
        while (word == 0) {
            if (++w == words.length) {
                return -1;
            }
            word = words[w];
        }
        return base + ((long) w << 6) + Long.numberOfTrailingZeros(word);
    }

    /** Number of dirty pages in the snapshot. */
    public long dirtyPageCount() {
        long n = 0;
        for (long word : words) {
            n += Long.bitCount(word);
        }
        return n;
    }

    /** A copy of the words: word i holds the pages from {@code start() / pageSize() + 64 * i}, bit j for page +j. */
    public long[] toWords() {
        return Arrays.copyOf(words, words.length);
    }

    private IllegalArgumentException outside(long ramAddr, long length) {
        return new IllegalArgumentException("ramAddr=0x" + Long.toHexString(ramAddr) + " length=0x"
                + Long.toHexString(length) + " snapshotStart=0x" + Long.toHexString(start) + " snapshotEnd=0x"
                + Long.toHexString(end()));
    }
}
