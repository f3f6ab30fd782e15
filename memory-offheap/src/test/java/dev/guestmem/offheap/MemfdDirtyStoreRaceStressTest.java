package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.stress.DirtyStoreRaceStressTest;

/**
 * memory-core's {@link DirtyStoreRaceStressTest} on guest RAM in a memfd, run with the fence this JVM installed:
 * {@code membarrier} in the default test run, the fence per mark in the {@code fallback-fence} run (see
 * {@link AsymmetricFenceTest}).
 */
class MemfdDirtyStoreRaceStressTest extends DirtyStoreRaceStressTest {
    @Override
    protected MemorySystem.RamAllocator ramBackend() {
        return HostMemoryBackend.memfd().build();
    }
}
