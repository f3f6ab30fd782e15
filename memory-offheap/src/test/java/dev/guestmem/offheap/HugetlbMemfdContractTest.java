package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.util.Set;

/** The contract on {@code memory-backend-memfd,hugetlb=on}: a sealed MFD_HUGETLB memfd, its pages reserved. */
class HugetlbMemfdContractTest extends HugetlbContract {
    @Override
    MemorySystem.RamAllocator hugetlbBackend() {
        return HostMemoryBackend.memfd().hugetlb(true).build();
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of(RamFlag.SHARED);
    }

    @Override
    protected boolean hasFd() {
        return true;
    }
}
