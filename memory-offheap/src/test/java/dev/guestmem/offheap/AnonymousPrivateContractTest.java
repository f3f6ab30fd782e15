package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.util.Set;

/** The contract on {@code memory-backend-ram}: private anonymous mmap, lazily zeroed, MADV_DONTNEED discards. */
class AnonymousPrivateContractTest extends RamBackendContract {
    @Override
    protected MemorySystem.RamAllocator backend() {
        return HostMemoryBackend.anonymous().build();
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of(RamFlag.NORESERVE);
    }
}
