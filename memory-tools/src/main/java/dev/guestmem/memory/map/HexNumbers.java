package dev.guestmem.memory.map;

import com.fasterxml.jackson.databind.JsonNode;
import dev.guestmem.memory.U64;

import java.math.BigInteger;

/** The hex strings of machine maps: addresses below 2^64, sizes up to and including 2^64. */
final class HexNumbers {
    private static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);

    private HexNumbers() {
    }

    /** An address or offset: {@code "0x0"} to {@code "0xffffffffffffffff"}. */
    static long address(String where, JsonNode n) {
        BigInteger v = parse(where, n);
        if (v.compareTo(TWO_64) >= 0) {
            throw new MapFormatException(where + n.asText() + " is not below 2^64");
        }
        return v.longValue();
    }

    /**
     * A size: {@code "0x0"} to {@code "0x10000000000000000"} (2^64, returned as -1). 2^64 - 1 is refused: like
     * QEMU, guestmem reads UINT64_MAX as 2^64, so that size cannot be represented.
     */
    static long size(String where, JsonNode n) {
        BigInteger v = parse(where, n);
        if (v.compareTo(TWO_64) > 0) {
            throw new MapFormatException(where + n.asText() + " exceeds 2^64 (0x10000000000000000)");
        }
        if (v.equals(TWO_64)) {
            return U64.SIZE_2_64;
        }
        if (v.longValue() == -1L) {
            throw new MapFormatException(where + n.asText()
                    + " cannot be a size (UINT64_MAX means 2^64 in QEMU); write 0x10000000000000000 for 2^64");
        }
        return v.longValue();
    }

    private static BigInteger parse(String where, JsonNode n) {
        if (n == null || !n.isTextual()) {
            throw new MapFormatException(where + "expected a hex string like \"0x1000\", found " + n);
        }
        String s = n.asText();
        if (!s.matches("0x[0-9a-fA-F]{1,17}")) {
            throw new MapFormatException(where + "\"" + s + "\" is not a hex string like \"0x1000\"");
        }
        try {
            return new BigInteger(s.substring(2), 16);
        } catch (NumberFormatException e) {
            throw new MapFormatException(where + "\"" + s + "\" is not a hex string like \"0x1000\"", e);
        }
    }

    static String formatAddress(long v) {
        return "0x" + Long.toHexString(v);
    }

    static String formatSize(long size) {
        return U64.sizeHex(size);
    }
}
