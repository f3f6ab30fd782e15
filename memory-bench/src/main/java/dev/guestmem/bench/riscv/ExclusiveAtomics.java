package dev.guestmem.bench.riscv;

import dev.guestmem.memory.AtomicOp;

/**
 * The atomics the library refuses (an AMO or SC on MMIO, or on RAM that may fault), done as a load and a store
 * through the hart's {@link GuestMemory} under the lock every hart of one machine shares: QEMU's stop-the-world
 * ({@code cpu_exec_step_atomic}) reduced to the harts' refused atomics. They are atomic against each other, not
 * against plain stores of other harts, which no lock of this kind can stop.
 *
 * <p>Threading: any hart's thread, each with its own memory; the lock is the machine's.
 */
final class ExclusiveAtomics {
    private ExclusiveAtomics() {
    }

    /** {@code op} with {@code operand} on the {@code size}-byte value at {@code addr}; the old value, zero-extended. */
    static long fetchOp(Object lock, GuestMemory memory, AtomicOp op, long addr, long operand, int size) {
        synchronized (lock) {
            final long old = load(memory, addr, size);
            store(memory, addr, op.apply(old, operand, size), size);
            return old;
        }
    }

    /**
     * Stores {@code desired} if the {@code size}-byte value at {@code addr} equals {@code expected} (zero-extended);
     * returns the value found, zero-extended.
     */
    static long cmpxchg(Object lock, GuestMemory memory, long addr, long expected, long desired, int size) {
        synchronized (lock) {
            final long found = load(memory, addr, size);
            if (found == expected) {
                store(memory, addr, desired, size);
            }
            return found;
        }
    }

    private static long load(GuestMemory memory, long addr, int size) {
        return size == 4 ? memory.ldl(addr) & 0xffff_ffffL : memory.ldq(addr);
    }

    private static void store(GuestMemory memory, long addr, long value, int size) {
        if (size == 4) {
            memory.stl(addr, (int) value);
        } else {
            memory.stq(addr, value);
        }
    }
}
