package dev.guestmem.memory.internal.render;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.guestmem.memory.U64;
import java.math.BigInteger;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The alias-window check's 65-bit arithmetic agrees with exact arithmetic: every pair of offsets and sizes near the
 * edges (0, 1, 2^63, 2^64 - 1, 2^64 and their neighbours) and random ones, against {@link BigInteger}.
 */
class RegionChecksTest {
    private static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);

    private static BigInteger size(long s) {
        return s == U64.SIZE_2_64 ? TWO_64 : new BigInteger(Long.toUnsignedString(s));
    }

    private static boolean oracle(long offset, long size, long target) {
        return new BigInteger(Long.toUnsignedString(offset)).add(size(size)).compareTo(size(target)) <= 0;
    }

    @Test
    void windowFitsAgreesWithExactArithmetic() {
        long[] edges = {0, 1, 2, 0xfff, 0x1000, 0x1001, Long.MAX_VALUE - 1, Long.MAX_VALUE, Long.MIN_VALUE,
            Long.MIN_VALUE + 1, -3L, -2L, U64.SIZE_2_64};
        for (long offset : edges) {
            for (long size : edges) {
                for (long target : edges) {
                    assertEquals(oracle(offset, size, target), RegionChecks.windowFits(offset, size, target),
                            "offset=" + U64.hex(offset) + " size=" + U64.sizeHex(size) + " target="
                            + U64.sizeHex(target));
                }
            }
        }
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < 100_000; i++) {
            long target = r.nextInt(4) == 0 ? U64.SIZE_2_64 : r.nextLong();
            long size = r.nextInt(8) == 0 ? U64.SIZE_2_64 : r.nextBoolean() ? r.nextLong() : r.nextLong(1 << 20);
            long offset = r.nextBoolean() ? r.nextLong() : target - size + r.nextLong(-2, 3);
            assertEquals(oracle(offset, size, target), RegionChecks.windowFits(offset, size, target),
                    "offset=" + U64.hex(offset) + " size=" + U64.sizeHex(size) + " target=" + U64.sizeHex(target));
        }
    }
}
