package dev.guestmem.memory.internal.dirty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.guestmem.memory.AsymmetricFence;
import org.junit.jupiter.api.Test;

/** The choice of the {@link AsymmetricFence}, as memory-core alone makes it: no provider, so the fallback. */
class MarkFenceTest {
    @Test
    void withoutAProviderTheFallbackIsInstalledAndMarksFence() {
        assertSame(AsymmetricFence.fallback(), AsymmetricFence.installed());
        assertEquals("fence per mark", AsymmetricFence.installed().name());
        assertEquals(true, MarkFence.FENCE_PER_MARK);
        AsymmetricFence.installed().heavy(); // a full fence of the caller's: returns
    }

    @Test
    void theSettingChoosesAndABadOneIsRefusedNamingIt() {
        assertSame(MarkFence.FALLBACK, MarkFence.choose("fallback"));
        assertSame(MarkFence.FALLBACK, MarkFence.choose("auto")); // no provider on memory-core's class path
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MarkFence.choose("fast"));
        assertEquals("guestmem.fence=fast: expected auto or fallback", e.getMessage());
    }
}
