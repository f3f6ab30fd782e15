package dev.guestmem.memory.internal.dirty;

import dev.guestmem.memory.DirtyBitmap;
import java.util.Arrays;

/**
 * Arithmetic shared by the {@link DirtyBitmap} implementations: argument checks, page ranges and word masks, with the
 * failure paths out of line. Page {@code p} is bit {@code p % 64} of word {@code p / 64}.
 *
 * <p>Threading: stateless.
 */
public final class DirtyWords {
    /** The ram_addr space ends below 2^62, so {@code ramAddr + length + pageSize - 1} can never overflow. */
    static final int ADDR_BITS = 62;
    /**
     * 16 KiB of zero words, never written: what a bitmap's words are compared with, a piece at a time, to skip the
     * clean ones with the JDK's vectorized mismatch.
     */
    static final long[] ZERO_WORDS = new long[2048];

    /**
     * The first of {@code words[from, to)} that is not 0, or {@code to}: a vectorized compare with
     * {@link #ZERO_WORDS}, plain reads.
     */
    static int nextNonZero(long[] words, int from, int to) {
        final long[] zeros = ZERO_WORDS;
        for (int w = from; w < to; w += zeros.length) {
            int n = Math.min(to - w, zeros.length);
            int m = Arrays.mismatch(words, w, w + n, zeros, 0, n);
            if (m >= 0) {
                return w + m;
            }
        }
        return to;
    }

    private DirtyWords() {
    }

    /** log2 of {@code pageSize}, which must be a power of two of at least 1 byte and below 2^32. */
    static int pageBits(long pageSize) {
        if (pageSize <= 0 || Long.bitCount(pageSize) != 1 || pageSize > 1L << 31) {
            throw new IllegalArgumentException("pageSize=0x" + Long.toHexString(pageSize));
        }
        return Long.numberOfTrailingZeros(pageSize);
    }

    /** log2 of {@code blockPages}, which must be a power of two from 64 to 2^30 pages. */
    static int blockBits(long blockPages) {
        if (blockPages < 64 || Long.bitCount(blockPages) != 1 || blockPages > 1L << 30) {
            throw new IllegalArgumentException("blockPages=" + blockPages);
        }
        return Long.numberOfTrailingZeros(blockPages);
    }

    /** Blocks needed for {@code pageCount} pages; throws when the ram_addr space would reach 2^62 bytes. */
    static int blocksFor(long pageCount, int pageBits, int blockBits) {
        if (pageCount < 0 || pageCount > 1L << (ADDR_BITS - pageBits)) {
            throw new IllegalArgumentException("pageCount=" + pageCount + " pageSize=0x"
                    + Long.toHexString(1L << pageBits));
        }
        long blocks = (pageCount + (1L << blockBits) - 1) >>> blockBits;
        if (blocks > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("pageCount=" + pageCount + " blockPages=" + (1L << blockBits));
        }
        return (int) blocks;
    }

    /**
     * The page just past {@code [ramAddr, ramAddr + length)}, after checking that the range lies within the first
     * {@code pageCount} pages.
     */
    static long endPage(long ramAddr, long length, long pageCount, int pageBits) {
        long limit = pageCount << pageBits;
        if (ramAddr < 0 || length < 0 || ramAddr > limit || length > limit - ramAddr) {
            throw outOfRange(ramAddr, length, pageCount, pageBits);
        }
        return (ramAddr + length + (1L << pageBits) - 1) >>> pageBits;
    }

    /** Bits {@code bit} up to {@code bit + n - 1} of a word; {@code 1 <= n <= 64 - bit}. */
    static long mask(int bit, long n) {
        return (-1L >>> (64 - n)) << bit;
    }

    /** Whether any of bits {@code [first, end)} of {@code words} is set. */
    public static boolean anySet(long[] words, long first, long end) {
        long bit = first;
        while (bit < end) {
            int b = (int) bit & 63;
            long n = Math.min(end - bit, 64 - b);
            if ((words[(int) (bit >>> 6)] & mask(b, n)) != 0) {
                return true;
            }
            bit += n;
        }
        return false;
    }

    /** Words of a snapshot from page {@code firstWordPage} (a multiple of 64) up to page {@code end}, rounded up. */
    static int snapshotWords(long firstWordPage, long end) {
        long words = (end - firstWordPage + 63) >>> 6;
        if (words > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("snapshotPages=" + (end - firstWordPage));
        }
        return (int) words;
    }

    private static IllegalArgumentException outOfRange(long ramAddr, long length, long pageCount, int pageBits) {
        return new IllegalArgumentException("ramAddr=0x" + Long.toHexString(ramAddr) + " length=0x"
                + Long.toHexString(length) + " pageCount=" + pageCount + " pageSize=0x"
                + Long.toHexString(1L << pageBits));
    }
}
