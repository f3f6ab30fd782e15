package dev.guestmem.memory;

/**
 * The outcome of a memory transaction, as QEMU's {@code MemTxResult}: a bit set, so that the results of the pieces
 * of a split access are OR-ed together. Guest-visible outcomes are values, never exceptions.
 */
public final class MemTxResult {
    /** The access succeeded. */
    public static final int OK = 0;
    /** The device reported an error. */
    public static final int ERROR = 1;
    /** Nothing decodes at the address. */
    public static final int DECODE_ERROR = 1 << 1;
    /** The access was refused (permissions, re-entrancy). */
    public static final int ACCESS_ERROR = 1 << 2;

    private MemTxResult() {
    }

    public static boolean isOk(int result) {
        return result == OK;
    }

    /** A readable form such as {@code ERROR|DECODE_ERROR}. */
    public static String toString(int result) {
        if (result == OK) {
            return "OK";
        }
        StringBuilder sb = new StringBuilder();
        append(sb, result, ERROR, "ERROR");
        append(sb, result, DECODE_ERROR, "DECODE_ERROR");
        append(sb, result, ACCESS_ERROR, "ACCESS_ERROR");
        int unknown = result & ~(ERROR | DECODE_ERROR | ACCESS_ERROR);
        if (unknown != 0) {
            append(sb, unknown, unknown, "0x" + Integer.toHexString(unknown));
        }
        return sb.toString();
    }

    private static void append(StringBuilder sb, int result, int bit, String name) {
        if ((result & bit) != 0) {
            if (!sb.isEmpty()) {
                sb.append('|');
            }
            sb.append(name);
        }
    }
}
