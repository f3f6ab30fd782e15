package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.util.Set;

/** The contract on {@code memory-backend-ram,share=on}: MAP_SHARED anonymous memory, MADV_REMOVE discards. */
class AnonymousSharedContractTest extends RamBackendContract {
    @Override
    protected MemorySystem.RamAllocator backend() {
        return HostMemoryBackend.anonymous().share(true).build();
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of(RamFlag.SHARED, RamFlag.NORESERVE);
    }
}
