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
        if (v == null || v.compareTo(TWO_64) >= 0) {
            throw new MapFormatException(where + shown(n.asText()) + " is not below 2^64");
        }
        return v.longValue();
    }

    /**
     * A size: {@code "0x0"} to {@code "0x10000000000000000"} (2^64, returned as -1). 2^64 - 1 is refused: like
     * QEMU, guestmem reads UINT64_MAX as 2^64, so that size cannot be represented.
     */
    static long size(String where, JsonNode n) {
        BigInteger v = parse(where, n);
        if (v == null || v.compareTo(TWO_64) > 0) {
            throw new MapFormatException(where + shown(n.asText()) + " exceeds 2^64 (0x10000000000000000)");
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

    /** The value, or null when it has more than 17 significant hex digits (so is above 2^64 whatever they are). */
    private static BigInteger parse(String where, JsonNode n) {
        if (n == null || !n.isTextual()) {
            throw new MapFormatException(where + "expected a hex string like \"0x1000\", found " + shownNode(n));
        }
        String s = n.asText();
        if (s.length() < 3 || !s.startsWith("0x")) {
            throw new MapFormatException(where + shown(s) + " is not a hex string like \"0x1000\"");
        }
        int first = 2;
        for (int i = 2; i < s.length(); i++) {
            if (Character.digit(s.charAt(i), 16) < 0 || s.charAt(i) > 'f') {
                throw new MapFormatException(where + shown(s) + " is not a hex string like \"0x1000\"");
            }
            if (first == i && s.charAt(i) == '0' && i < s.length() - 1) {
                first = i + 1; // leading zeros do not count against the width
            }
        }
        return s.length() - first > 17 ? null : new BigInteger(s.substring(first), 16);
    }

    /** A value as a message shows it: quoted, and cut short when long. */
    static String shown(String s) {
        return "\"" + (s.length() <= 40 ? s : s.substring(0, 40) + "...(" + s.length() + " characters)") + "\"";
    }

    private static String shownNode(JsonNode n) {
        return n == null ? "nothing" : shown(n.toString());
    }

    static String formatAddress(long v) {
        return "0x" + Long.toHexString(v);
    }

    static String formatSize(long size) {
        return U64.sizeHex(size);
    }
}
