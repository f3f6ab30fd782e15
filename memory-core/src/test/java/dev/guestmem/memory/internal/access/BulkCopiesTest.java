package dev.guestmem.memory.internal.access;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.guestmem.memory.BulkCopier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** The choice of the {@link BulkCopier}, as memory-core alone makes it: no provider, so the JDK's copy. */
class BulkCopiesTest {
    @Test
    void withoutAProviderTheJdkCopyIsInstalled() {
        assertSame(BulkCopier.jdk(), BulkCopier.installed());
        assertEquals("MemorySegment.copy", BulkCopier.installed().name());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(64);
            for (int i = 0; i < 64; i++) {
                s.set(ValueLayout.JAVA_BYTE, i, (byte) i);
            }
            BulkCopier.installed().copy(s, 0, s, 8, 32); // overlapping, as MemorySegment.copy allows
            for (int i = 0; i < 32; i++) {
                assertEquals((byte) i, s.get(ValueLayout.JAVA_BYTE, 8 + i));
            }
            assertThrows(IndexOutOfBoundsException.class, () -> BulkCopier.installed().copy(s, 60, s, 0, 8));
        }
    }

    @Test
    void theSettingChoosesAndABadOneIsRefusedNamingIt() {
        assertSame(BulkCopies.JDK, BulkCopies.choose("jdk"));
        assertSame(BulkCopies.JDK, BulkCopies.choose("auto")); // no provider on memory-core's class path
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BulkCopies.choose("memcpy"));
        assertEquals("guestmem.copy=memcpy: expected auto or jdk", e.getMessage());
    }
}
