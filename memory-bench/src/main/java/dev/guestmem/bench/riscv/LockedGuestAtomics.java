package dev.guestmem.bench.riscv;

/**
 * {@link GuestAtomics} as a load and a store under one lock; see {@link GuestAtomics} for its limits. The lock also
 * orders: a vCPU's plain stores before an atomic happen-before another vCPU's accesses after a later atomic, which is
 * what an acquire-release spinlock needs.
 *
 * <p>Threading: thread-safe; one instance per machine.
 */
final class LockedGuestAtomics implements GuestAtomics {
    private final Object lock = new Object();

    @Override
    public long fetchAndOp(GuestMemory memory, AmoOp op, long addr, long operand, int size) {
        synchronized (lock) {
            long old = read(memory, addr, size);
            write(memory, addr, op.apply(old, operand, size), size);
            return old;
        }
    }

    @Override
    public long compareAndExchange(GuestMemory memory, long addr, long expected, long desired, int size) {
        synchronized (lock) {
            long found = read(memory, addr, size);
            if (found == (size == 4 ? (int) expected : expected)) {
                write(memory, addr, desired, size);
            }
            return found;
        }
    }

    @Override
    public long load(GuestMemory memory, long addr, int size) {
        synchronized (lock) {
            return read(memory, addr, size);
        }
    }

    private static long read(GuestMemory memory, long addr, int size) {
        return size == 4 ? memory.ldl(addr) : memory.ldq(addr);
    }

    private static void write(GuestMemory memory, long addr, long value, int size) {
        if (size == 4) {
            memory.stl(addr, (int) value);
        } else {
            memory.stq(addr, value);
        }
    }
}
