package example.consumer;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class MachineTest {
    @Test
    void theMapLoadsAndItsRamHoldsWhatIsStored() {
        assertEquals("""
                store OK, load 0x1122334455667788 OK
                FlatView #0
                 AS "memory", root: system
                 Root memory region: system
                  0000000000000000-00000000000fffff (prio 0, ram): ram
                  0000000010000000-0000000010000007 (prio 1, i/o): uart

                """, Machine.run());
    }
}
