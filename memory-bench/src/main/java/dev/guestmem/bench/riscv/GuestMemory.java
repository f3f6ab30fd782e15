package dev.guestmem.bench.riscv;

import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.CodeProtection;

/**
 * What {@link Rv64Cpu} needs from guest memory: little-endian loads and stores of 1, 2, 4 and 8 bytes at
 * guest-physical addresses, atomics of 4 and 8 bytes, instruction fetch, and what decoded-code caching needs. QEMU's
 * {@code cpu_ld*_data}, {@code cpu_st*_data}, {@code cpu_atomic_*} and {@code cpu_ldl_code} as one vCPU sees them.
 *
 * <p>Results are sticky, as in {@link dev.guestmem.memory.SoftTlb}: an access that fails reads 0 (a store is dropped)
 * and ORs its {@link dev.guestmem.memory.MemTxResult} into what {@link #takeResult()} returns.
 *
 * <p>Threading: an instance belongs to one vCPU thread.
 */
public interface GuestMemory extends AutoCloseable {
    /** The byte at {@code addr}, 0..255. */
    int ldub(long addr);

    /** The 16 bits at {@code addr}, 0..65535. */
    int lduw(long addr);

    /** The 32 bits at {@code addr}. */
    int ldl(long addr);

    /** The 64 bits at {@code addr}. */
    long ldq(long addr);

    /** Stores the low 8 bits of {@code val}. */
    void stb(long addr, int val);

    /** Stores the low 16 bits of {@code val}. */
    void stw(long addr, int val);

    void stl(long addr, int val);

    void stq(long addr, long val);

    /**
     * The library's {@link dev.guestmem.memory.SoftTlb#atomicFetchOp}: atomically applies {@code op} to the
     * {@code size}-byte (4 or 8) little-endian value at {@code addr}; returns the old value, zero-extended. What cannot
     * be done atomically there reads 0, writes nothing, and leaves
     * {@link dev.guestmem.memory.MemTxResult#ATOMIC_REFUSED} in {@link #takeResult()}.
     */
    long atomicFetchOp(AtomicOp op, long addr, long operand, int size);

    /** The library's {@link dev.guestmem.memory.SoftTlb#atomicCmpxchg}; refusals as {@link #atomicFetchOp}. */
    long atomicCmpxchg(long addr, long expected, long desired, int size);

    /** A 32-bit instruction word at {@code addr}, through the instruction-fetch path. */
    int fetch(long addr);

    /**
     * Called before decoded instructions of the 4 KiB page at guest-physical {@code pageAddr} are cached: returns the
     * key under which {@link #codeProtection()}'s reports will name that page (its ram_addr), after protecting it, or
     * {@link dev.guestmem.memory.RamList#INVALID_RAM_ADDR} when the page must not be cached (it is not RAM or ROM).
     */
    long protectCode(long pageAddr);

    /**
     * The code protection whose listeners hear every store to a protected page, or {@code null} when nobody reports
     * code writes; then the CPU drops its decoded instructions at every {@code fence.i}, which is all RISC-V
     * requires of a single hart.
     */
    CodeProtection codeProtection();

    /**
     * A check point between two blocks of guest code (QEMU's vCPU between translation blocks): a memory that follows a
     * read-side discipline honours map changes and flush requests here, and the thread is briefly outside its
     * section (a quiescent state). Returns a number that changes whenever the memory map may have changed
     * ({@link dev.guestmem.memory.AddressSpace#generation()}), read before the map the accesses after the check point
     * use was loaded: decoded code is keyed by guest-physical page, which a remap can point at other memory.
     */
    long checkpoint();

    /** Accesses since the memory was made that left its fast path (TLB misses, MMIO, logged or protected pages). */
    long missCount();

    /**
     * Enters the read-side section the accesses must be made in, if the memory needs one and the thread is not in it
     * yet; returns whether it entered (the caller then {@link #leaveSection() leaves} it). A memory without a
     * discipline returns {@code false}.
     */
    default boolean enterSection() {
        return false;
    }

    /** Leaves the section {@link #enterSection()} entered: before the thread blocks, sleeps or ends. */
    default void leaveSection() {
    }

    /** Releases what the memory holds for its thread (a reader registration), on that thread; nothing by default. */
    @Override
    default void close() {
    }

    /** The OR of the results of accesses since the last call; {@link dev.guestmem.memory.MemTxResult#OK} if none failed. */
    int takeResult();
}
