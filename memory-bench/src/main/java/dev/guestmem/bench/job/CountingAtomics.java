package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.AmoOp;
import dev.guestmem.bench.riscv.GuestAtomics;
import dev.guestmem.bench.riscv.GuestMemory;

/**
 * A vCPU's view of the machine's {@link GuestAtomics} (the stand-in for a library atomic API, see there) with its
 * atomic operations counted; their loads and stores go through the vCPU's TLB and are counted as the atomic's.
 *
 * <p>Threading: confined to its vCPU thread.
 */
final class CountingAtomics implements GuestAtomics {
    private final GuestAtomics shared;
    private final CountingGuestMemory memory;
    long atomics;

    CountingAtomics(GuestAtomics shared, CountingGuestMemory memory) {
        this.shared = shared;
        this.memory = memory;
    }

    @Override
    public long fetchAndOp(GuestMemory ignored, AmoOp op, long addr, long operand, int size) {
        atomics++;
        long loads = memory.loads;
        long stores = memory.stores;
        long old = shared.fetchAndOp(memory, op, addr, operand, size);
        memory.atomicDone(loads, stores);
        return old;
    }

    @Override
    public long compareAndExchange(GuestMemory ignored, long addr, long expected, long desired, int size) {
        atomics++;
        long loads = memory.loads;
        long stores = memory.stores;
        long found = shared.compareAndExchange(memory, addr, expected, desired, size);
        memory.atomicDone(loads, stores);
        return found;
    }

    @Override
    public long load(GuestMemory ignored, long addr, int size) {
        atomics++;
        long loads = memory.loads;
        long stores = memory.stores;
        long value = shared.load(memory, addr, size);
        memory.atomicDone(loads, stores);
        return value;
    }
}
