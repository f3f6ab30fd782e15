package dev.guestmem.bench.riscv;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.SoftTlb;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The virt machine's CFI flash writes its array behind the access path; what it programs or erases must still reach
 * code protection (a JIT that decoded the old bytes drops them) and the dirty log (a migration sends them again).
 */
class FlashCodeReportTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @Test
    void aProgrammedWordInAProtectedPageIsReportedAndMarkedDirty() {
        RiscvVirtMachine machine = RiscvVirtMachine.create();
        AddressSpace memory = machine.memory();
        CodeProtection cp = CodeProtection.of(machine.system());
        List<long[]> reports = new ArrayList<>();
        cp.addListener((ramAddr, length) -> {
            synchronized (reports) {
                reports.add(new long[] {ramAddr, length});
            }
        });
        SoftTlb tlb = new SoftTlb(memory);
        long word = RiscvVirtMachine.FLASH_BASE + 0x1040;
        long ramAddr = tlb.protectCode(word);
        machine.flash().setLog(true, DirtyMemoryClient.VGA); // a second client, to see the dirty marking
        machine.flash().snapshotAndClearDirty(0, 0x10000, DirtyMemoryClient.VGA);

        memory.stb(word, 0x40, U); // program
        memory.stlLe(word, 0x1234_5678, U);
        memory.stb(word, 0xff, U); // read array
        assertEquals(0x1234_5678, memory.ldlLe(word, U, null));
        synchronized (reports) {
            assertEquals(1, reports.size(), "the programmed word is reported once");
            assertEquals(ramAddr, reports.get(0)[0]);
            assertEquals(4, reports.get(0)[1]);
        }
        assertTrue(machine.flash().getDirty(0x1040, 4, DirtyMemoryClient.VGA));

        // An erase of the block reports the protected page in it.
        memory.stb(word, 0x20, U);
        memory.stb(word, 0xd0, U);
        memory.stb(word, 0xff, U);
        assertEquals(0xffff_ffff, memory.ldlLe(word, U, null));
        synchronized (reports) {
            assertEquals(2, reports.size());
            assertEquals(ramAddr & ~0xfffL, reports.get(1)[0]);
            assertEquals(0x1000, reports.get(1)[1]);
        }
    }
}
