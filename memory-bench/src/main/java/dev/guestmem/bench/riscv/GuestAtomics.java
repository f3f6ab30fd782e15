package dev.guestmem.bench.riscv;

/**
 * Atomic read-modify-writes of guest memory for the A extension: what {@link Rv64Cpu}'s LR/SC and AMOs are built
 * on. Values of 4 bytes are sign-extended to 64 bits; addresses are guest-physical and naturally aligned.
 *
 * <p>A stand-in: guestmem's {@link dev.guestmem.memory.SoftTlb} and {@link dev.guestmem.memory.AddressSpace} have no
 * atomic access API yet (QEMU's {@code atomic_mmu_lookup}: compare-and-exchange, fetch-and-op on 4 and 8 bytes, with
 * dirty marking and code protection like any store). Until they do, {@link #locked()} makes each operation a load and a
 * store through the vCPU's {@link GuestMemory} under one lock that every vCPU of a machine shares. That is atomic with
 * respect to the other atomics of the same instance only: a plain store of another vCPU to the same word can land
 * between the load and the store and be lost. The guest programs therefore touch their lock words only with atomics
 * (the spinlock is released with {@code amoswap}, not {@code sw}). The library's atomic API will replace this
 * interface's implementation, and lift that restriction.
 *
 * <p>Threading: every method may be called from any vCPU thread, each with its own {@link GuestMemory}.
 */
public interface GuestAtomics {
    /** Applies {@code op} with {@code operand} to the {@code size}-byte value at {@code addr}; returns the old value. */
    long fetchAndOp(GuestMemory memory, AmoOp op, long addr, long operand, int size);

    /**
     * Stores {@code desired} at {@code addr} if the {@code size}-byte value there equals {@code expected} (compared on
     * {@code size} bytes); returns the value found.
     */
    long compareAndExchange(GuestMemory memory, long addr, long expected, long desired, int size);

    /** The {@code size}-byte value at {@code addr}, ordered with the other operations (a load-reserved's load). */
    long load(GuestMemory memory, long addr, int size);

    /** Atomics under one lock, for all the vCPUs of one machine; see the class comment for what they do not cover. */
    static GuestAtomics locked() {
        return new LockedGuestAtomics();
    }
}
