package dev.guestmem.bench;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * {@link GlobalLockBenchmark} measures what it says: every variant reads the same registers (the sum worked out here
 * from the device's array), locked or not, and leaves the lock free.
 */
class GlobalLockBenchmarkTest {
    @Test
    void everyVariantLoadsTheSameRegisters() {
        GlobalLockBenchmark.Machine m = new GlobalLockBenchmark.Machine();
        m.setup();
        GlobalLockBenchmark.Offsets o = new GlobalLockBenchmark.Offsets();
        o.setup();
        long expected = 0;
        for (long off : o.offsets) {
            expected += m.regs[(int) (off >>> 3)];
        }
        assertNotEquals(0, expected);
        GlobalLockBenchmark b = new GlobalLockBenchmark();
        assertEquals(expected, b.lockFree(m, o));
        assertEquals(expected, b.locked(m, o));
        assertEquals(expected, b.lockedWhileHeld(m, o));
        assertEquals(expected, b.contendedLockFree(m, o));
        assertEquals(expected, b.contendedLocked(m, o));
        assertFalse(m.system.globalLock().isHeld());
    }
}
