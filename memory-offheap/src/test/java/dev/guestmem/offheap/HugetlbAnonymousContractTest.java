package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.util.Set;

/** The contract on private MAP_HUGETLB memory, its pages reserved at creation. */
class HugetlbAnonymousContractTest extends HugetlbContract {
    @Override
    MemorySystem.RamAllocator hugetlbBackend() {
        return HostMemoryBackend.anonymous().hugetlb(true).build();
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of();
    }
}
