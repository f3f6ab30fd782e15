package dev.guestmem.memory;

/**
 * The read-modify-writes of the atomic access API ({@link AddressSpace#atomicFetchOp}, {@link SoftTlb#atomicFetchOp},
 * {@link HostTlb#atomicFetchOp}),
 * named as QEMU's {@code cpu_atomic_*} family ({@code accel/tcg/atomic_template.h}): each stores a function of the old
 * value and an operand and returns the old value. Compare-and-exchange, which takes two operands, has methods of its
 * own ({@code atomicCmpxchg}).
 *
 * <p>Values are unsigned {@code size}-byte quantities: for 4 bytes only the low 32 bits of the operand count, and the
 * signed minimum and maximum compare the low 32 bits as an {@code int}.
 */
public enum AtomicOp {
    /** {@code cpu_atomic_xchg}: stores the operand. */
    XCHG,
    /** {@code cpu_atomic_fetch_add}: stores old + operand (wrapping). */
    FETCH_ADD,
    /** {@code cpu_atomic_fetch_and}. */
    FETCH_AND,
    /** {@code cpu_atomic_fetch_or}. */
    FETCH_OR,
    /** {@code cpu_atomic_fetch_xor}. */
    FETCH_XOR,
    /** {@code cpu_atomic_fetch_smin}: the smaller as signed values. */
    FETCH_SMIN,
    /** {@code cpu_atomic_fetch_smax}: the larger as signed values. */
    FETCH_SMAX,
    /** {@code cpu_atomic_fetch_umin}: the smaller as unsigned values. */
    FETCH_UMIN,
    /** {@code cpu_atomic_fetch_umax}: the larger as unsigned values. */
    FETCH_UMAX;

    /**
     * The value this operation stores over {@code old} with {@code operand}, for {@code size} bytes (4 or 8); for 4
     * bytes the result's high 32 bits are 0.
     */
    public long apply(long old, long operand, int size) {
        if (size == 4) {
            final int o = (int) old;
            final int x = (int) operand;
            return (switch (this) {
                case XCHG -> x;
                case FETCH_ADD -> o + x;
                case FETCH_AND -> o & x;
                case FETCH_OR -> o | x;
                case FETCH_XOR -> o ^ x;
                case FETCH_SMIN -> Math.min(o, x);
                case FETCH_SMAX -> Math.max(o, x);
                case FETCH_UMIN -> Integer.compareUnsigned(o, x) <= 0 ? o : x;
                case FETCH_UMAX -> Integer.compareUnsigned(o, x) >= 0 ? o : x;
            }) & 0xffff_ffffL;
        }
        return switch (this) {
            case XCHG -> operand;
            case FETCH_ADD -> old + operand;
            case FETCH_AND -> old & operand;
            case FETCH_OR -> old | operand;
            case FETCH_XOR -> old ^ operand;
            case FETCH_SMIN -> Math.min(old, operand);
            case FETCH_SMAX -> Math.max(old, operand);
            case FETCH_UMIN -> Long.compareUnsigned(old, operand) <= 0 ? old : operand;
            case FETCH_UMAX -> Long.compareUnsigned(old, operand) >= 0 ? old : operand;
        };
    }
}
