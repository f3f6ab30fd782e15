package dev.guestmem.offheap;

import dev.guestmem.memory.stress.DirtyBitmapStressTest;

/**
 * memory-core's {@link DirtyBitmapStressTest} again, with the fence this JVM installed: {@code membarrier} in the
 * default test run, the fence per mark in the {@code fallback-fence} run (see {@link AsymmetricFenceTest}).
 */
class FencedDirtyBitmapStressTest extends DirtyBitmapStressTest {
}
