package dev.guestmem.bench.riscv;

import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A hand-assembled program in the RAM of a fresh {@link RiscvVirtMachine}, on one hart. */
final class Rv64Harness {
    /** Where the code goes: the first page after the mailbox. */
    static final long CODE = RiscvVirtMachine.RAM_BASE + 0x1000;
    /** Data the programs load and store: a page of its own. */
    static final long DATA = RiscvVirtMachine.RAM_BASE + 0x10_0000;

    final RiscvVirtMachine machine = RiscvVirtMachine.create();

    Rv64Cpu hart(int hartId, MemoryPath path) {
        Rv64Cpu cpu = machine.newHart(hartId, path);
        cpu.setPc(CODE);
        return cpu;
    }

    void code(long addr, int... words) {
        for (int k = 0; k < words.length; k++) {
            assertEquals(MemTxResult.OK, machine.memory().stlLe(addr + 4L * k, words[k], MemTxAttrs.UNSPECIFIED));
        }
    }

    void storeQuad(long addr, long value) {
        assertEquals(MemTxResult.OK, machine.memory().stqLe(addr, value, MemTxAttrs.UNSPECIFIED));
    }

    long loadQuad(long addr) {
        int[] result = new int[1];
        long v = machine.memory().ldqLe(addr, MemTxAttrs.UNSPECIFIED, result);
        assertEquals(MemTxResult.OK, result[0]);
        return v;
    }

    /**
     * Runs {@code words} at {@link #CODE} on hart 0, exactly one instruction per word, through each TLB on a machine
     * of its own: both end with the same registers and pc; returns the {@code HostTlb}'s hart.
     */
    static Rv64Cpu run(long[] initialRegs, int... words) {
        Rv64Cpu soft = runOn(MemoryPath.SOFT_TLB, initialRegs, words);
        Rv64Cpu host = runOn(MemoryPath.HOST_TLB, initialRegs, words);
        for (int reg = 0; reg < 32; reg++) {
            assertEquals(soft.reg(reg), host.reg(reg), "x" + reg + " after both TLBs");
        }
        assertEquals(soft.pc(), host.pc(), "pc after both TLBs");
        return host;
    }

    private static Rv64Cpu runOn(MemoryPath path, long[] initialRegs, int... words) {
        Rv64Harness h = new Rv64Harness();
        h.code(CODE, words);
        Rv64Cpu cpu = h.hart(0, path);
        for (int reg = 1; reg < initialRegs.length; reg++) {
            cpu.setReg(reg, initialRegs[reg]);
        }
        assertEquals(words.length, cpu.run(words.length), path + ": retired; fault=" + cpu.fault());
        assertEquals(null, cpu.fault(), path.toString());
        return cpu;
    }

    /** Registers x0..x13 with x11 ({@code a1}) = {@code a1} and x12 ({@code a2}) = {@code a2}. */
    static long[] regs(long a1, long a2) {
        long[] r = new long[14];
        r[Rv64Asm.A1] = a1;
        r[Rv64Asm.A2] = a2;
        return r;
    }
}
