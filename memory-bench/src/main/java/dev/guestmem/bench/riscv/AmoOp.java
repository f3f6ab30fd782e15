package dev.guestmem.bench.riscv;

/**
 * The read-modify-write of each RISC-V AMO instruction (the A extension's {@code amo*.w} and {@code amo*.d}): the value
 * stored, given the value in memory and the register operand.
 */
public enum AmoOp {
    SWAP, ADD, XOR, AND, OR, MIN, MAX, MINU, MAXU;

    /**
     * The new memory value for {@code old} and {@code operand}, for 4 bytes
     * ({@code size}) only the low 32 bits of both and of the result count; 8 bytes otherwise.
     */
    public long apply(long old, long operand, int size) {
        return size == 4 ? apply32(old, (int) operand) : apply64(old, operand);
    }

    private long apply64(long old, long operand) {
        return switch (this) {
            case SWAP -> operand;
            case ADD -> old + operand;
            case XOR -> old ^ operand;
            case AND -> old & operand;
            case OR -> old | operand;
            case MIN -> Math.min(old, operand);
            case MAX -> Math.max(old, operand);
            case MINU -> Long.compareUnsigned(old, operand) <= 0 ? old : operand;
            case MAXU -> Long.compareUnsigned(old, operand) >= 0 ? old : operand;
        };
    }

    /** The 32-bit operations compare the low words only, as signed or unsigned {@code int}s. */
    private long apply32(long old, int operand) {
        final int o = (int) old;
        return switch (this) {
            case MIN -> Math.min(o, operand);
            case MAX -> Math.max(o, operand);
            case MINU -> Integer.compareUnsigned(o, operand) <= 0 ? o : operand;
            case MAXU -> Integer.compareUnsigned(o, operand) >= 0 ? o : operand;
            default -> apply64(o, operand);
        };
    }
}
