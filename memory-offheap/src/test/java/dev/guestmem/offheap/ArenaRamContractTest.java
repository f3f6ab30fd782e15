package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.util.Set;

/** The contract on memory-core's own backend, anonymous RAM in an {@code Arena}: the reference the others match. */
class ArenaRamContractTest extends RamBackendContract {
    @Override
    MemorySystem.RamAllocator backend() {
        return MemorySystem.ANONYMOUS_RAM;
    }

    @Override
    Set<RamFlag> expectedFlags() {
        return Set.of();
    }

    @Override
    boolean returnsMemory() {
        return false; // an Arena's memory is zero-filled on discard, not given back
    }

    @Override
    boolean shrinkDiscards() {
        return false;
    }
}
