package dev.guestmem.bench.peers;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The Unicorn binding against the real library (Debian's libunicorn2; skipped, with the reason, only where it is not
 * installed): what it writes it reads back, its errors name the call and Unicorn's error, and a closed engine refuses
 * every call instead of reaching freed native memory.
 */
class UnicornEngineTest {

    @BeforeEach
    void needsUnicorn() {
        assumeTrue(UnicornEngine.unavailable().isEmpty(), () -> UnicornEngine.unavailable().get());
    }

    @Test
    void writesAndReadsBackInEveryMappedRegion() {
        try (UnicornEngine uc = UnicornEngine.open(); Arena arena = Arena.ofConfined()) {
            assertTrue(UnicornEngine.version().startsWith("2."), UnicornEngine.version());
            uc.map(0x4000_0000L, 0x2000);
            uc.map(0x4000_3000L, 0x1000);
            assertEquals(0, uc.readLong(0x4000_1ff8L), "uc_mem_map memory starts zeroed");
            uc.writeLong(0x4000_0008L, 0x1122_3344_5566_7788L);
            uc.writeLong(0x4000_3ff8L, -2);
            assertEquals(0x1122_3344_5566_7788L, uc.readLong(0x4000_0008L));
            assertEquals(-2, uc.readLong(0x4000_3ff8L));

            MemorySegment page = arena.allocate(4096);
            for (int i = 0; i < 4096; i++) {
                page.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) (i * 7));
            }
            assertEquals(UnicornEngine.UC_ERR_OK, uc.write(0x4000_1000L, page, 4096));
            MemorySegment back = arena.allocate(4096);
            assertEquals(UnicornEngine.UC_ERR_OK, uc.read(0x4000_1000L, back, 4096));
            assertEquals(-1, page.mismatch(back));
            assertEquals(0x88, uc.readLong(0x4000_0008L) & 0xff, "x86 is little-endian");
        }
    }

    @Test
    void errorsNameTheCallAndUnicornsError() {
        try (UnicornEngine uc = UnicornEngine.open()) {
            IllegalStateException unaligned = assertThrows(IllegalStateException.class, () -> uc.map(0x1001, 0x1000));
            assertTrue(unaligned.getMessage().startsWith("uc_mem_map(address=0x1001, size=0x1000) failed: uc_err=15 ("),
                    unaligned.getMessage());
            uc.map(0x1000, 0x1000);
            IllegalStateException overlap = assertThrows(IllegalStateException.class, () -> uc.map(0x1000, 0x1000));
            assertTrue(overlap.getMessage().contains("uc_err=11"), overlap.getMessage());
            IllegalStateException hole = assertThrows(IllegalStateException.class, () -> uc.readLong(0x2000));
            assertTrue(hole.getMessage().startsWith("uc_mem_read(address=0x2000, size=8) failed: uc_err=6 ("),
                    hole.getMessage());
            assertThrows(IllegalStateException.class, () -> uc.writeLong(0x2000, 1));
            assertEquals(0, uc.readLong(0x1000), "a failed call leaves the mapped memory as it was");
        }
    }

    @Test
    void aClosedEngineRefusesEveryCall() {
        UnicornEngine uc = UnicornEngine.open();
        uc.map(0x1000, 0x1000);
        uc.close();
        assertDoesNotThrow(uc::close, "closing twice does nothing");
        assertEquals("engine=closed: uc_close was called",
                assertThrows(IllegalStateException.class, () -> uc.readLong(0x1000)).getMessage());
        assertThrows(IllegalStateException.class, () -> uc.map(0x2000, 0x1000));
    }
}
