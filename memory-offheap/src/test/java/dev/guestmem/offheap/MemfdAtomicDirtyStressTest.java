package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.stress.AtomicDirtyStressTest;

/**
 * memory-core's {@link AtomicDirtyStressTest} on guest RAM in a memfd, run with the fence this JVM installed:
 * {@code membarrier} in the default test run, where the fast TLB's atomics hit logged pages and the takes re-arm it,
 * and the fence per mark in the {@code fallback-fence} run (see {@link AsymmetricFenceTest}).
 */
class MemfdAtomicDirtyStressTest extends AtomicDirtyStressTest {
    @Override
    protected MemorySystem.RamAllocator ramBackend() {
        return HostMemoryBackend.memfd().build();
    }
}
