package dev.guestmem.memory;

/**
 * Unsigned 64-bit arithmetic on {@code long}: guest addresses, offsets and sizes are all unsigned.
 *
 * <p>Sizes follow QEMU's rule: a size is an unsigned count of bytes, except that {@code -1L} (UINT64_MAX) stands for
 * 2^64. A region therefore never has a size of 2^64 - 1, exactly as in QEMU. Ranges are carried as a start and an
 * inclusive last address so that a range ending at the top of the space never overflows.
 */
public final class U64 {
    /** The size value that stands for 2^64 bytes (QEMU's UINT64_MAX-means-2^64 rule). */
    public static final long SIZE_2_64 = -1L;

    private U64() {
    }

    /** {@code a < b}, unsigned. */
    public static boolean lt(long a, long b) {
        return Long.compareUnsigned(a, b) < 0;
    }

    /** {@code a <= b}, unsigned. */
    public static boolean le(long a, long b) {
        return Long.compareUnsigned(a, b) <= 0;
    }

    public static long max(long a, long b) {
        return Long.compareUnsigned(a, b) >= 0 ? a : b;
    }

    public static long min(long a, long b) {
        return Long.compareUnsigned(a, b) <= 0 ? a : b;
    }

    /**
     * {@code len} bytes cut where only {@code leftMinusOne} + 1 remain (the bytes up to an inclusive last address:
     * a range, a page): {@code len} if it fits, else {@code leftMinusOne + 1}; 0 stays 0. Unsigned throughout, so a
     * limit of 2^64 bytes ({@code leftMinusOne} = -1) never cuts.
     */
    public static long clip(long len, long leftMinusOne) {
        return len == 0 || Long.compareUnsigned(len - 1, leftMinusOne) <= 0 ? len : leftMinusOne + 1;
    }

    /**
     * The last offset (inclusive) of a non-empty size; {@code size} must not be 0.
     * 2^64 (encoded as -1) gives 2^64 - 1.
     */
    public static long lastOffset(long size) {
        assert size != 0 : "size=0 has no last offset";
        return size == SIZE_2_64 ? -1L : size - 1;
    }

    /** {@code start + lastOffset}, saturating at 2^64 - 1 instead of wrapping. */
    public static long saturatingAdd(long start, long lastOffset) {
        long r = start + lastOffset;
        return Long.compareUnsigned(r, start) < 0 ? -1L : r;
    }

    /** Formats an address as QEMU's {@code HWADDR_FMT_plx}: 16 lowercase hex digits. */
    public static String hex16(long v) {
        String s = Long.toHexString(v);
        return "0".repeat(16 - s.length()) + s;
    }

    /** {@code 0x}-prefixed lowercase hex, for messages in {@code key=value} form. */
    public static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    /** A size for messages: hex, with 2^64 spelled out. */
    public static String sizeHex(long size) {
        return size == SIZE_2_64 ? "0x10000000000000000" : hex(size);
    }
}
