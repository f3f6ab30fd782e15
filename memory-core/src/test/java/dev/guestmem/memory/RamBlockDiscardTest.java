package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * QEMU's discard coordination counters ({@code ram_block_discard_disable} and its family), one set per
 * {@link MemorySystem}: who may disable or require discards while whom holds what.
 */
class RamBlockDiscardTest {
    private final MemorySystem sys = new MemorySystem();
    private final RamBlockDiscard d = sys.ramBlockDiscard();

    @Test
    void startsNeitherDisabledNorRequired() {
        assertFalse(d.isDisabled());
        assertFalse(d.isRequired());
        assertEquals("discardDisabled=0 uncoordinatedDiscardDisabled=0 discardRequired=0 coordinatedDiscardRequired=0",
                d.toString());
    }

    @Test
    void disablingIsCountedAndRefusesEveryRequirer() {
        assertTrue(d.disable(true));
        assertTrue(d.disable(true)); // two devices that pin memory
        assertTrue(d.isDisabled());
        assertFalse(d.require(true), "a balloon cannot start while discards are disabled");
        assertFalse(d.coordinatedRequire(true), "nor can virtio-mem");
        assertFalse(d.isRequired());
        assertTrue(d.disable(false));
        assertFalse(d.coordinatedRequire(true), "one disabler is left");
        assertTrue(d.disable(false));
        assertFalse(d.isDisabled());
        assertTrue(d.coordinatedRequire(true));
        assertTrue(d.require(true));
        assertEquals("discardDisabled=0 uncoordinatedDiscardDisabled=0 discardRequired=1 coordinatedDiscardRequired=1",
                d.toString());
    }

    @Test
    void requiringIsCountedAndRefusesEveryDisabler() {
        assertTrue(d.require(true));
        assertTrue(d.isRequired());
        assertFalse(d.disable(true));
        assertFalse(d.uncoordinatedDisable(true), "uncoordinated discards are required too");
        assertFalse(d.isDisabled());
        assertTrue(d.require(false));
        assertFalse(d.isRequired());
        assertTrue(d.disable(true));
    }

    @Test
    void coordinatedRequirersCoexistWithUncoordinatedDisablers() {
        // virtio-mem (coordinated discards) next to a device that maps only populated memory, in either order
        assertTrue(d.coordinatedRequire(true));
        assertTrue(d.uncoordinatedDisable(true));
        assertTrue(d.isRequired());
        assertTrue(d.isDisabled());
        assertFalse(d.disable(true), "every discard cannot be disabled while coordinated ones are required");
        assertFalse(d.require(true), "every discard cannot be required while uncoordinated ones are disabled");
        assertTrue(d.uncoordinatedDisable(false));
        assertTrue(d.coordinatedRequire(false));

        assertTrue(d.uncoordinatedDisable(true));
        assertTrue(d.coordinatedRequire(true));
        assertEquals("discardDisabled=0 uncoordinatedDiscardDisabled=1 discardRequired=0 coordinatedDiscardRequired=1",
                d.toString());
    }

    @Test
    void anUnpairedReleaseIsRefusedAndChangesNothing() {
        assertTrue(d.coordinatedRequire(true));
        for (String what : new String[] {"disable", "uncoordinatedDisable", "require"}) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> {
                switch (what) {
                    case "disable" -> d.disable(false);
                    case "uncoordinatedDisable" -> d.uncoordinatedDisable(false);
                    default -> d.require(false);
                }
            });
            assertEquals(what + "(false) with discardDisabled=0 uncoordinatedDiscardDisabled=0 discardRequired=0 "
                    + "coordinatedDiscardRequired=1: no " + what + "(true) to end", e.getMessage());
        }
        assertTrue(d.coordinatedRequire(false));
        assertThrows(IllegalStateException.class, () -> d.coordinatedRequire(false));
        assertEquals("discardDisabled=0 uncoordinatedDiscardDisabled=0 discardRequired=0 coordinatedDiscardRequired=0",
                d.toString());
    }

    @Test
    void eachMemorySystemCoordinatesItsOwnRam() {
        MemorySystem other = new MemorySystem();
        assertNotSame(d, other.ramBlockDiscard());
        assertTrue(d.disable(true));
        assertTrue(other.ramBlockDiscard().require(true), "QEMU's counters are per process, guestmem's per system");
        assertFalse(d.require(true));
    }

    @Test
    void discardRangeDoesNotConsultTheCounters() {
        MemoryRegion ram = sys.ram("ram", 0x2000);
        ram.ramSegment().set(ValueLayout.JAVA_LONG, 0x1000, -1L);
        assertTrue(d.disable(true));
        ((AbstractRamBlock) ram.ramBlock()).discardRange(0x1000, 0x1000); // QEMU's callers check, not the discard
        assertEquals(0, ram.ramSegment().get(ValueLayout.JAVA_LONG, 0x1000));
    }
}
