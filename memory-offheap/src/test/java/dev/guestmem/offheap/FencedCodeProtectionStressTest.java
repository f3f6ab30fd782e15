package dev.guestmem.offheap;

import dev.guestmem.memory.stress.CodeProtectionStressTest;

/**
 * memory-core's {@link CodeProtectionStressTest} with the fence this JVM installed: with {@code membarrier} (the
 * default test run here) the soft TLBs fill entries of pages that only CODE logs without their entry locks, and
 * every protect's visit races those fills; the {@code fallback-fence} run checks the locked fills again.
 */
class FencedCodeProtectionStressTest extends CodeProtectionStressTest {
}
