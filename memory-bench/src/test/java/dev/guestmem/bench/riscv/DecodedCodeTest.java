package dev.guestmem.bench.riscv;

import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static dev.guestmem.bench.riscv.Rv64Asm.*;
import static dev.guestmem.bench.riscv.Rv64Harness.CODE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The decoded-instruction cache drops a page when guest code is written: reported through {@code CodeProtection}
 * on both TLB paths (even without {@code fence.i}, and when another hart wrote), at {@code fence.i} on the plain
 * segment path, which shows that without either the stale instruction would run.
 */
class DecodedCodeTest {
    /**
     * Executes {@code addi a0, a0, 1} at CODE, then overwrites it with {@code addi a0, a0, 100} (held in t0, stored
     * through t1), optionally executes {@code fence.i}, and jumps back: 101 if the new instruction ran, 2 if the
     * decoded old one did.
     */
    private static int[] selfModifying(boolean fenceI) {
        return new int[] {
                addi(A0, A0, 1), // CODE + 0: the instruction that gets replaced
                b(1, A1, ZERO, 20), // +4: bnez a1, to the ebreak (second time round)
                addi(A1, ZERO, 1), // +8
                store(2, T0, T1, 0), // +12: sw t0, 0(t1)
                fenceI ? FENCE_I : addi(ZERO, ZERO, 0), // +16: fence.i, or a nop
                jal(ZERO, -20), // +20: back to CODE
                EBREAK, // +24
        };
    }

    private static Rv64Cpu runSelfModifying(MemoryPath path, boolean fenceI) {
        Rv64Harness h = new Rv64Harness();
        h.code(CODE, selfModifying(fenceI));
        Rv64Cpu cpu = h.hart(0, path);
        cpu.setReg(T0, addi(A0, A0, 100));
        cpu.setReg(T1, CODE);
        long retired = 0;
        for (int calls = 0; calls < 10 && cpu.fault() == null; calls++) {
            retired += cpu.run(100); // a fence.i that drops the decoded code ends the call
        }
        assertEquals(8, retired, "retired up to the ebreak");
        assertTrue(cpu.fault().startsWith("hart 0: ebreak"), cpu.fault());
        return cpu;
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void aStoreOverDecodedCodeIsSeenWithoutFenceI(MemoryPath path) {
        assertEquals(101, runSelfModifying(path, false).reg(A0));
        assertEquals(101, runSelfModifying(path, true).reg(A0));
    }

    @Test
    void withoutReportsOnlyFenceIDropsTheDecodedCode() {
        assertEquals(2, runSelfModifying(MemoryPath.SEGMENT, false).reg(A0), "the stale instruction ran");
        assertEquals(101, runSelfModifying(MemoryPath.SEGMENT, true).reg(A0));
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void codeWrittenByAnotherHartIsSeen(MemoryPath path) {
        Rv64Harness h = new Rv64Harness();
        // hart 0: a0 += 1, then loop on itself; hart 1: stores a new first instruction
        h.code(CODE, addi(A0, A0, 1), jal(ZERO, -4));
        h.code(CODE + 0x800, store(2, T0, T1, 0));
        Rv64Cpu runner = h.hart(0, path);
        Rv64Cpu writer = h.hart(1, path);
        writer.setPc(CODE + 0x800);
        writer.setReg(T0, addi(A0, A0, 100));
        writer.setReg(T1, CODE);
        assertEquals(10, runner.run(10));
        assertEquals(5, runner.reg(A0));
        assertEquals(1, runner.cachedPages());
        assertEquals(1, writer.run(1));
        assertEquals(10, runner.run(10));
        assertNull(runner.fault());
        assertEquals(5 + 5 * 100, runner.reg(A0));
    }

    @Test
    void aMapChangeUnderDecodedCodeDropsIt() {
        // a0 += 1 in a loop, executed in place from the flash; then the flash leaves romd mode (a read-identifier
        // command), so its addresses read the identifier, not the array: no valid instruction at the loop any more.
        RiscvVirtMachine machine = RiscvVirtMachine.create();
        byte[] image = new byte[8];
        java.nio.ByteBuffer.wrap(image).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .putInt(addi(A0, A0, 1)).putInt(jal(ZERO, -4));
        machine.loadBootImage(image);
        // Through the TLBs: the segment path caches every page and hears of nothing, by design (the limit).
        for (MemoryPath path : new MemoryPath[] {MemoryPath.SOFT_TLB, MemoryPath.HOST_TLB}) {
            Rv64Cpu cpu = machine.newHart(0, path);
            assertEquals(10, cpu.run(10));
            assertEquals(1, cpu.cachedPages());
            machine.memory().stb(RiscvVirtMachine.FLASH_BASE, 0x90, dev.guestmem.memory.MemTxAttrs.UNSPECIFIED);
            cpu.run(10);
            assertTrue(cpu.fault() != null && cpu.fault().startsWith("hart 0: illegal instruction pc=0x20000000"),
                    path + ": the decoded loop ran on after the remap; fault=" + cpu.fault());
            machine.memory().stb(RiscvVirtMachine.FLASH_BASE, 0xff, dev.guestmem.memory.MemTxAttrs.UNSPECIFIED);
            cpu.close();
        }
    }
}
