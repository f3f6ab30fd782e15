package dev.guestmem.memory.map;

import com.fasterxml.jackson.databind.JsonNode;
import dev.guestmem.memory.U64;

/**
 * The hex strings of machine maps: addresses below 2^64, sizes up to and including 2^64. A value as read is a
 * {@code String} when the map gave a JSON string there, else the {@link JsonNode} it gave (shown in the message), or
 * null when it gave none.
 */
final class HexNumbers {
    private HexNumbers() {
    }

    /** An address or offset: {@code "0x0"} to {@code "0xffffffffffffffff"}. */
    static long address(String where, Object n) {
        String s = hex(where, n);
        int first = firstDigit(s);
        if (s.length() - first > 16) {
            throw new MapFormatException(where + shown(s) + " is not below 2^64");
        }
        return Long.parseUnsignedLong(s, first, s.length(), 16);
    }

    /**
     * A size: {@code "0x0"} to {@code "0x10000000000000000"} (2^64, returned as -1). 2^64 - 1 is refused: like
     * QEMU, guestmem reads UINT64_MAX as 2^64, so that size cannot be represented.
     */
    static long size(String where, Object n) {
        String s = hex(where, n);
        int first = firstDigit(s);
        int digits = s.length() - first;
        if (digits == 17 && s.charAt(first) == '1' && zerosFrom(s, first + 1)) {
            return U64.SIZE_2_64; // a 1 and sixteen zeros
        }
        if (digits > 16) {
            throw new MapFormatException(where + shown(s) + " exceeds 2^64 (0x10000000000000000)");
        }
        long v = Long.parseUnsignedLong(s, first, s.length(), 16);
        if (v == -1L) {
            throw new MapFormatException(where + s
                    + " cannot be a size (UINT64_MAX means 2^64 in QEMU); write 0x10000000000000000 for 2^64");
        }
        return v;
    }

    /** The text of a hex string: {@code 0x} and at least one of 0-9, a-f, A-F; anything else is refused. */
    private static String hex(String where, Object n) {
        if (!(n instanceof String s)) {
            throw new MapFormatException(where + "expected a hex string like \"0x1000\", found "
                    + (n == null ? "nothing" : shown(n.toString())));
        }
        if (s.length() < 3 || !s.startsWith("0x")) {
            throw new MapFormatException(where + shown(s) + " is not a hex string like \"0x1000\"");
        }
        for (int i = 2; i < s.length(); i++) {
            if (Character.digit(s.charAt(i), 16) < 0 || s.charAt(i) > 'f') {
                throw new MapFormatException(where + shown(s) + " is not a hex string like \"0x1000\"");
            }
        }
        return s;
    }

    /** The index of the first significant digit of a hex string (its last digit when all are zeros). */
    private static int firstDigit(String s) {
        int first = 2;
        while (first < s.length() - 1 && s.charAt(first) == '0') {
            first++; // leading zeros do not count against the width
        }
        return first;
    }

    private static boolean zerosFrom(String s, int from) {
        for (int i = from; i < s.length(); i++) {
            if (s.charAt(i) != '0') {
                return false;
            }
        }
        return true;
    }

    /** A value as a message shows it: quoted, and cut short when long. */
    static String shown(String s) {
        return "\"" + (s.length() <= 40 ? s : s.substring(0, 40) + "...(" + s.length() + " characters)") + "\"";
    }

    static String formatAddress(long v) {
        return "0x" + Long.toHexString(v);
    }

    static String formatSize(long size) {
        return U64.sizeHex(size);
    }
}
