package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.util.Set;

/** The contract on {@code memory-backend-memfd}: a sealed memfd, mapped shared, discarded by punching holes. */
class MemfdContractTest extends RamBackendContract {
    @Override
    protected MemorySystem.RamAllocator backend() {
        return HostMemoryBackend.memfd().build();
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of(RamFlag.SHARED, RamFlag.NORESERVE);
    }

    @Override
    protected boolean hasFd() {
        return true;
    }
}
