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
    /**
     * An atomic access ({@link AddressSpace#atomicFetchOp}, {@link SoftTlb#atomicCmpxchg} and the like) was not done
     * because it cannot be done atomically there: MMIO, ROM, a hole, RAM read-only through the mapping, or a
     * misaligned address. Nothing was read or written. QEMU's TCG then executes the instruction again with every
     * other vCPU stopped ({@code cpu_loop_exit_atomic}); guestmem has no such code, and leaves the choice to the
     * emulator. Not one of QEMU's results.
     */
    public static final int ATOMIC_REFUSED = 1 << 3;

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
        append(sb, result, ATOMIC_REFUSED, "ATOMIC_REFUSED");
        int unknown = result & ~(ERROR | DECODE_ERROR | ACCESS_ERROR | ATOMIC_REFUSED);
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
