package dev.guestmem.bench.riscv;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.memory.mtree.MtreePrinter;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The machine is its map: {@code ./guestmem mtree} on riscv-virt.json prints the machine the vCPUs run on. */
class RiscvVirtMachineTest {
    private static final String FLAT = """
            FlatView #0
             AS "memory", root: system
             Root memory region: system
              0000000000100000-0000000000100fff (prio 0, i/o): riscv.sifive.test
              0000000010000000-0000000010000007 (prio 0, i/o): serial
              0000000020000000-0000000021ffffff (prio 0, romd): virt.flash0
              0000000040000000-000000004007ffff (prio 0, ram): virt.fb
              0000000041000000-0000000041000fff (prio 0, i/o): movable-bar
              0000000080000000-0000000083ffffff (prio 0, ram): riscv_virt_board.ram

            """;

    @Test
    void theMapFilePrintsTheMachine() throws IOException {
        RiscvVirtMachine machine = RiscvVirtMachine.create();
        Path file = Path.of("src/main/resources/dev/guestmem/bench/riscv", RiscvVirtMachine.MAP_RESOURCE);
        MemorySystem fromFile = MachineMap.read(file, MemorySystem.LAYOUT_ONLY).system();
        assertEquals(MtreePrinter.mtree(fromFile, true), MtreePrinter.mtree(machine.system(), true));
        assertEquals(MtreePrinter.flatViews(fromFile), MtreePrinter.flatViews(machine.system()));
        assertEquals(FLAT, MtreePrinter.flatViews(machine.system()));
    }
}
