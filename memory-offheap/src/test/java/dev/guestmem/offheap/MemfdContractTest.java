package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.util.Set;

/** The contract on {@code memory-backend-memfd}: a sealed memfd, mapped shared, discarded by punching holes. */
class MemfdContractTest extends RamBackendContract {
    @Override
    MemorySystem.RamAllocator backend() {
        return HostMemoryBackend.memfd().build();
    }

    @Override
    Set<RamFlag> expectedFlags() {
        return Set.of(RamFlag.SHARED, RamFlag.NORESERVE);
    }

    @Override
    boolean hasFd() {
        return true;
    }
}
