package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.MemoryRegionCache;
import dev.guestmem.memory.SoftTlb;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The value layouts of guest loads and stores, unaligned in either byte order, and the one get/set by size that the
 * access path, {@link MemoryRegionCache} and {@link SoftTlb} share (QEMU's {@code ldn_le_p}/{@code stn_be_p}
 * family), and the little-endian byte loops of MMIO pieces that start in a byte array or a segment. The
 * layouts are created once here; hot paths that know their size and order use them directly.
 *
 * <p>Threading: stateless.
 */
public final class ValueLayouts {
    public static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    public static final ValueLayout.OfShort U16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfShort U16_BE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    public static final ValueLayout.OfInt U32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt U32_BE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    public static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong U64_BE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private ValueLayouts() {
    }

    /** The {@code size} bytes (1, 2, 4 or 8) at {@code off} of {@code s} in the given order, zero-extended. */
    public static long get(MemorySegment s, long off, int size, boolean bigEndian) {
        return switch (size) {
            case 1 -> s.get(U8, off) & 0xffL;
            case 2 -> s.get(bigEndian ? U16_BE : U16_LE, off) & 0xffffL;
            case 4 -> s.get(bigEndian ? U32_BE : U32_LE, off) & 0xffff_ffffL;
            default -> s.get(bigEndian ? U64_BE : U64_LE, off);
        };
    }

    /** Stores the low {@code size} bytes (1, 2, 4 or 8) of {@code value} at {@code off} of {@code s}, in that order. */
    public static void set(MemorySegment s, long off, long value, int size, boolean bigEndian) {
        switch (size) {
            case 1 -> s.set(U8, off, (byte) value);
            case 2 -> s.set(bigEndian ? U16_BE : U16_LE, off, (short) value);
            case 4 -> s.set(bigEndian ? U32_BE : U32_LE, off, (int) value);
            default -> s.set(bigEndian ? U64_BE : U64_LE, off, value);
        }
    }

    /** Stores the low {@code n} bytes of {@code v}, little-endian, into {@code array} or else {@code segment}. */
    public static void putLittleEndian(MemorySegment segment, byte[] array, long offset, int n, long v) {
        for (int i = 0; i < n; i++) {
            byte b = (byte) (v >>> (8 * i));
            if (array != null) {
                array[(int) offset + i] = b;
            } else {
                segment.set(U8, offset + i, b);
            }
        }
    }

    /** Loads {@code n} bytes, little-endian, from {@code array} or else {@code segment}. */
    public static long getLittleEndian(MemorySegment segment, byte[] array, long offset, int n) {
        long v = 0;
        for (int i = 0; i < n; i++) {
            byte b = array != null ? array[(int) offset + i] : segment.get(U8, offset + i);
            v |= (b & 0xffL) << (8 * i);
        }
        return v;
    }
}
