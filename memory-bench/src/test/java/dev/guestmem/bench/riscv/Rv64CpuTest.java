package dev.guestmem.bench.riscv;

import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static dev.guestmem.bench.riscv.Rv64Asm.*;
import static dev.guestmem.bench.riscv.Rv64Harness.CODE;
import static dev.guestmem.bench.riscv.Rv64Harness.DATA;
import static dev.guestmem.bench.riscv.Rv64Harness.regs;
import static dev.guestmem.bench.riscv.Rv64Harness.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** Each instruction class of {@link Rv64Cpu} on hand-assembled sequences, with the ISA manual's edge cases. */
class Rv64CpuTest {
    private static final long MIN = Long.MIN_VALUE;

    /** a0 after one instruction with a1 and a2 set. */
    private static long a0(int word, long a1, long a2) {
        return run(regs(a1, a2), word).reg(A0);
    }

    private static long rType(int f7, int f3, long a1, long a2) {
        return a0(op(f7, f3, A0, A1, A2), a1, a2);
    }

    private static long rType32(int f7, int f3, long a1, long a2) {
        return a0(op32(f7, f3, A0, A1, A2), a1, a2);
    }

    @Test
    void encodingsMatchTheGnuAssembler() {
        // Words from riscv64-unknown-elf-as, so that the encoder and the decoder cannot agree on a wrong layout.
        assertEquals(0x00b50863, b(0, A0, A1, 16)); // beq a0, a1, .+16
        assertEquals(0xff9ff0ef, jal(RA, -8)); // jal ra, .-8
        assertEquals(0xfeb13c23, store(3, A1, SP, -8)); // sd a1, -8(sp)
        assertEquals(0x3402e573, csr(6, A0, 0x340, 5)); // csrrsi a0, mscratch, 5
        assertEquals(0x18b6352f, amo(0x03, 3, A0, A2, A1) & ~(3 << 25)); // sc.d a0, a1, (a2), without aq and rl
        assertEquals(0xe6b6252f, amo(0x1c, 2, A0, A2, A1)); // amomaxu.w.aqrl a0, a1, (a2)
    }

    @Test
    void immediateAlu() {
        assertEquals(-1, a0(addi(A0, A1, -2), 1, 0));
        assertEquals(1, a0(opImm(2, A0, A1, 5), -3, 0)); // slti: -3 < 5
        assertEquals(0, a0(opImm(3, A0, A1, 5), -3, 0)); // sltiu: 2^64 - 3 > 5
        assertEquals(1, a0(opImm(3, A0, A1, -1), 7, 0)); // sltiu against the sign-extended 2^64 - 1
        assertEquals(0xff0L ^ -1, a0(opImm(4, A0, A1, -1), 0xff0, 0)); // xori -1 is not
        assertEquals(0x7f3, a0(opImm(6, A0, A1, 0x7f0), 3, 0)); // ori
        assertEquals(0x30, a0(opImm(7, A0, A1, 0x30), 0xff, 0)); // andi
        assertEquals(1L << 63, a0(opImm(1, A0, A1, 63), 1, 0)); // slli by 63
        assertEquals(1, a0(opImm(5, A0, A1, 63), MIN, 0)); // srli
        assertEquals(-1, a0(opImm(5, A0, A1, 0x400 | 63), MIN, 0)); // srai
        assertEquals(0x1234_5000L, a0(lui(A0, 0x1234_5000), 0, 0));
        assertEquals(0xffff_ffff_8000_0000L, a0(lui(A0, 0x8000_0000), 0, 0)); // sign-extended on RV64
        assertEquals(CODE + 0x1000, a0(auipc(A0, 0x1000), 0, 0));
        assertEquals(Integer.MIN_VALUE, a0(opImm32(0, A0, A1, 1), Integer.MAX_VALUE, 0)); // addiw wraps, sign-extends
        assertEquals(0xffff_ffff_8000_0000L, a0(opImm32(1, A0, A1, 31), 1, 0)); // slliw
        assertEquals(1, a0(opImm32(5, A0, A1, 31), 0xdead_0000_8000_0000L, 0)); // srliw uses the low word
        assertEquals(-1, a0(opImm32(5, A0, A1, 0x400 | 31), 0x8000_0000L, 0)); // sraiw
    }

    @Test
    void registerAlu() {
        assertEquals(MIN, rType(0, 0, Long.MAX_VALUE, 1)); // add wraps
        assertEquals(Long.MAX_VALUE, rType(0x20, 0, MIN, 1)); // sub wraps
        assertEquals(2, rType(0, 1, 1, 65)); // sll uses 6 bits of rs2
        assertEquals(1, rType(0, 2, -1, 0)); // slt
        assertEquals(0, rType(0, 3, -1, 0)); // sltu
        assertEquals(0b0110, rType(0, 4, 0b1100, 0b1010)); // xor
        assertEquals(1, rType(0, 5, MIN, 63)); // srl
        assertEquals(-1, rType(0x20, 5, MIN, 63)); // sra
        assertEquals(0b1110, rType(0, 6, 0b1100, 0b1010)); // or
        assertEquals(0b1000, rType(0, 7, 0b1100, 0b1010)); // and
        assertEquals(Integer.MIN_VALUE, rType32(0, 0, Integer.MAX_VALUE, 1)); // addw
        assertEquals(Integer.MAX_VALUE, rType32(0x20, 0, Integer.MIN_VALUE, 1)); // subw
        assertEquals(Integer.MIN_VALUE, rType32(0, 1, 1, 63)); // sllw uses 5 bits of rs2
        assertEquals(1, rType32(0, 5, 0x8000_0000L, 31)); // srlw
        assertEquals(-1, rType32(0x20, 5, 0x8000_0000L, 31)); // sraw
    }

    @Test
    void multiplyAndDivideWithTheIsaEdgeCases() {
        assertEquals(-6, rType(1, 0, 2, -3)); // mul
        assertEquals(-1, rType(1, 1, -2, 3)); // mulh: high word of -6
        assertEquals(0x4000_0000_0000_0000L, rType(1, 1, MIN, MIN)); // mulh: 2^126 >> 64
        assertEquals(-1, rType(1, 2, -1, 1)); // mulhsu: -1 * 1, high word
        assertEquals(-1, rType(1, 2, -1, -1)); // mulhsu: -1 * (2^64 - 1) = -2^64 + 1, high word -1
        assertEquals(0, rType(1, 2, 1, -1)); // mulhsu: 1 * (2^64 - 1), where mulh gives -1
        assertEquals(-1, rType(1, 1, 1, -1)); // mulh: 1 * -1
        assertEquals(-2, rType(1, 3, -1, -1)); // mulhu: (2^64 - 1)^2 >> 64 = 2^64 - 2
        assertEquals(-3, rType(1, 4, 7, -2)); // div truncates toward zero
        assertEquals(-1, rType(1, 4, 7, 0)); // div by zero: all ones
        assertEquals(MIN, rType(1, 4, MIN, -1)); // div overflow: the dividend
        assertEquals(-1, rType(1, 5, 7, 0)); // divu by zero: 2^64 - 1
        assertEquals(Long.divideUnsigned(-8, 3), rType(1, 5, -8, 3)); // divu
        assertEquals(1, rType(1, 6, 7, -2)); // rem has the dividend's sign
        assertEquals(-1, rType(1, 6, -7, 2));
        assertEquals(7, rType(1, 6, 7, 0)); // rem by zero: the dividend
        assertEquals(0, rType(1, 6, MIN, -1)); // rem overflow: 0
        assertEquals(7, rType(1, 7, 7, 0)); // remu by zero: the dividend
        assertEquals(Long.remainderUnsigned(-8, 3), rType(1, 7, -8, 3)); // remu
        assertEquals(Integer.MIN_VALUE, rType32(1, 0, 0x4000_0000L, 2)); // mulw wraps, sign-extends
        assertEquals(-1, rType32(1, 4, 5, 0)); // divw by zero
        assertEquals(Integer.MIN_VALUE, rType32(1, 4, Integer.MIN_VALUE, -1)); // divw overflow
        assertEquals(-1, rType32(1, 5, 5, 0)); // divuw by zero: 2^32 - 1, sign-extended
        assertEquals(0x7fff_ffffL, rType32(1, 5, 0xffff_fffeL, 2)); // divuw on the low words
        assertEquals(-5, rType32(1, 6, -5, 0)); // remw by zero
        assertEquals(0, rType32(1, 6, Integer.MIN_VALUE, -1)); // remw overflow
        assertEquals(Integer.MIN_VALUE, rType32(1, 7, 0x8000_0000L, 0)); // remuw by zero: the dividend, sign-extended
        assertEquals(1, rType32(1, 7, 0xffff_ffffL, 2)); // remuw
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void loadsAndStoresOfEverySizeAndSign(MemoryPath path) {
        Rv64Harness h = new Rv64Harness();
        h.storeQuad(DATA, 0x8899_aabb_ccdd_eeffL);
        h.code(CODE,
                load(0, 10, T0, 0), // lb  ff
                load(4, 11, T0, 0), // lbu ff
                load(1, 12, T0, 2), // lh  ccdd
                load(5, 13, T0, 2), // lhu ccdd
                load(2, 14, T0, 4), // lw  8899aabb
                load(6, 15, T0, 4), // lwu 8899aabb
                load(3, 16, T0, 0), // ld
                load(2, 17, T0, 1), // lw, misaligned: bytes 1..4
                store(0, T1, T0, 8), // sb
                store(1, T1, T0, 10), // sh
                store(2, T1, T0, 12), // sw
                store(3, T1, T0, 16), // sd
                store(3, T1, T0, 25)); // sd, misaligned
        Rv64Cpu cpu = h.hart(0, path);
        cpu.setReg(T0, DATA);
        cpu.setReg(T1, 0x0102_0304_0506_0708L);
        assertEquals(13, cpu.run(13));
        assertNull(cpu.fault());
        assertEquals(-1, cpu.reg(10));
        assertEquals(0xff, cpu.reg(11));
        assertEquals((short) 0xccdd, cpu.reg(12));
        assertEquals(0xccdd, cpu.reg(13));
        assertEquals(0xffff_ffff_8899_aabbL, cpu.reg(14));
        assertEquals(0x8899_aabbL, cpu.reg(15));
        assertEquals(0x8899_aabb_ccdd_eeffL, cpu.reg(16));
        assertEquals(0xffff_ffff_bbcc_ddeeL, cpu.reg(17));
        assertEquals(0x0506_0708_0708_0008L, h.loadQuad(DATA + 8));
        assertEquals(0x0102_0304_0506_0708L, h.loadQuad(DATA + 16));
        assertEquals(0x0203_0405_0607_0800L, h.loadQuad(DATA + 24));
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void branchesTakenAndNot(MemoryPath path) {
        int[][] cases = { // funct3, a1, a2, taken
                {0, 5, 5, 1}, {0, 5, 6, 0}, {1, 5, 6, 1}, {1, 5, 5, 0},
                {4, -1, 0, 1}, {4, 0, -1, 0}, {5, 0, -1, 1}, {5, -1, 0, 0}, {5, 3, 3, 1},
                {6, 0, -1, 1}, {6, -1, 0, 0}, {7, -1, 0, 1}, {7, 0, -1, 0}, {7, 3, 3, 1},
        };
        for (int[] c : cases) {
            // taken: skip the addi at +4 and land on the addi at +8, which adds 2; not taken: both run
            Rv64Harness h = new Rv64Harness();
            h.code(CODE, b(c[0], A1, A2, 8), addi(A0, A0, 1), addi(A0, A0, 2));
            Rv64Cpu cpu = h.hart(0, path);
            cpu.setReg(A1, c[1]);
            cpu.setReg(A2, c[2]);
            cpu.run(c[3] == 1 ? 2 : 3);
            assertEquals(c[3] == 1 ? 2 : 3, cpu.reg(A0), "funct3=" + c[0] + " a1=" + c[1] + " a2=" + c[2]);
            assertEquals(CODE + 12, cpu.pc());
        }
        Rv64Harness h = new Rv64Harness();
        h.code(CODE, addi(A0, ZERO, 3), addi(A0, A0, -1), b(1, A0, ZERO, -4)); // a loop: bne a0, zero, -4
        Rv64Cpu cpu = h.hart(0, path);
        assertEquals(7, cpu.run(7));
        assertEquals(0, cpu.reg(A0));
        assertEquals(CODE + 12, cpu.pc());
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void jumpsLinkTheNextInstruction(MemoryPath path) {
        Rv64Harness h = new Rv64Harness();
        h.code(CODE, jal(RA, 12));
        h.code(CODE + 12, jalr(T0, A1, 5)); // target a1 + 5, bit 0 cleared
        h.code(CODE + 0x100, jalr(A1, A1, -0xfb)); // rd = rs1: the target uses the old value
        Rv64Cpu cpu = h.hart(0, path);
        cpu.setReg(A1, CODE + 0xfb);
        assertEquals(3, cpu.run(3));
        assertEquals(CODE + 4, cpu.reg(RA));
        assertEquals(CODE + 16, cpu.reg(T0));
        assertEquals(CODE + 0x104, cpu.reg(A1));
        assertEquals(CODE, cpu.pc());
        Rv64Cpu zero = Rv64Harness.run(new long[14], jal(ZERO, 8));
        assertEquals(0, zero.reg(ZERO));
        assertEquals(CODE + 8, zero.pc());
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void loadReservedAndStoreConditional(MemoryPath path) {
        Rv64Harness h = new Rv64Harness();
        h.storeQuad(DATA, 0xffff_ffff_8000_0001L);
        h.code(CODE,
                amo(0x02, 2, T0, A1, ZERO), // lr.w t0, (a1): sign-extended
                amo(0x03, 2, T1, A1, A2), // sc.w t1, a2, (a1): succeeds, t1 = 0
                amo(0x03, 2, T2, A1, A2), // sc.w again without a reservation: fails, t2 = 1
                amo(0x02, 3, A3, A1, ZERO), // lr.d a3, (a1)
                store(3, ZERO, A1, 0), // sd zero: the value changes under the reservation
                amo(0x03, 3, A0, A1, A2)); // sc.d a0, a2, (a1): fails, a0 = 1
        Rv64Cpu cpu = h.hart(0, path);
        cpu.setReg(A1, DATA);
        cpu.setReg(A2, 0x1234_5678_9abc_def0L);
        assertEquals(6, cpu.run(6));
        assertNull(cpu.fault());
        assertEquals(0xffff_ffff_8000_0001L, cpu.reg(T0));
        assertEquals(0, cpu.reg(T1));
        assertEquals(1, cpu.reg(T2));
        assertEquals(0xffff_ffff_9abc_def0L, cpu.reg(A3));
        assertEquals(1, cpu.reg(A0));
        assertEquals(0, h.loadQuad(DATA));
    }

    @Test
    void everyAmoOnWordsAndDoublewords() {
        long mem = 0xffff_ffff_ffff_fff0L; // -16 as a doubleword and as a word
        long operand = 5;
        // funct5, expected new value as doubleword, as word (sign-extended low 32 bits)
        long[][] cases = {
                {0x01, 5, 5}, // amoswap
                {0x00, -11, -11}, // amoadd
                {0x04, -16 ^ 5, -16 ^ 5}, // amoxor
                {0x0c, 0, 0}, // amoand
                {0x08, -11, -11}, // amoor: 0xfff0 | 5
                {0x10, -16, -16}, // amomin
                {0x14, 5, 5}, // amomax
                {0x18, 5, 5}, // amominu
                {0x1c, -16, -16}, // amomaxu
        };
        for (long[] c : cases) {
            for (int f3 : new int[] {2, 3}) {
                for (MemoryPath path : MemoryPath.values()) {
                    Rv64Harness h = new Rv64Harness();
                    h.storeQuad(DATA, f3 == 3 ? mem : 0x7777_7777_0000_0000L | (mem & 0xffff_ffffL));
                    h.code(CODE, amo((int) c[0], f3, A0, A1, A2));
                    Rv64Cpu cpu = h.hart(0, path);
                    cpu.setReg(A1, DATA);
                    // the word forms must ignore the upper half of the operand
                    cpu.setReg(A2, f3 == 3 ? operand : 0x1_0000_0000L | operand);
                    assertEquals(1, cpu.run(1));
                    String what = "funct5=0x" + Long.toHexString(c[0]) + " funct3=" + f3 + " path=" + path;
                    assertNull(cpu.fault(), what);
                    assertEquals(-16, cpu.reg(A0), what + ": the old value");
                    long expected = f3 == 3 ? c[1] : 0x7777_7777_0000_0000L | (c[2] & 0xffff_ffffL);
                    assertEquals(expected, h.loadQuad(DATA), what + ": memory");
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void anAtomicTheLibraryRefusesIsDoneUnderTheMachinesExclusiveLock(MemoryPath path) {
        // The BAR's scratch register is MMIO: no atomic instruction can reach it, so the hart loads and stores it.
        Rv64Harness h = new Rv64Harness();
        long scratch = 0x4100_0004L;
        assertEquals(MemTxResult.OK, h.machine.memory().stlLe(scratch, 40, MemTxAttrs.UNSPECIFIED));
        h.code(CODE,
                amo(0x00, 2, A0, A1, A2), // amoadd.w a0, a2, (a1)
                amo(0x02, 2, A3, A1, ZERO), // lr.w a3, (a1)
                amo(0x03, 2, T0, A1, A2)); // sc.w t0, a2, (a1): the register still holds what lr read
        Rv64Cpu cpu = h.hart(0, path);
        cpu.setReg(A1, scratch);
        cpu.setReg(A2, 2);
        assertEquals(3, cpu.run(3));
        assertNull(cpu.fault());
        assertEquals(40, cpu.reg(A0));
        assertEquals(42, cpu.reg(A3));
        assertEquals(0, cpu.reg(T0), "sc.w succeeded");
        assertEquals(2, h.machine.memory().ldlLe(scratch, MemTxAttrs.UNSPECIFIED, null));
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void controlAndStatusRegisters(MemoryPath path) {
        Rv64Harness h = new Rv64Harness();
        h.code(CODE,
                csr(2, A0, 0xf14, ZERO), // csrr a0, mhartid
                csr(1, ZERO, 0x340, A1), // csrw mscratch, a1
                csr(2, A2, 0x340, A2), // csrrs a2, mscratch, a2 (a2 = 0b0110)
                csr(3, A3, 0x340, A1), // csrrc a3, mscratch, a1 (a1 = 0b1001)
                csr(5, T0, 0x340, 31), // csrrwi t0, mscratch, 31
                csr(6, T1, 0x340, 0), // csrrsi t1, mscratch, 0: reads only
                csr(7, T2, 0x340, 3), // csrrci t2, mscratch, 3
                csr(2, A1, 0xc02, ZERO), // rdinstret: 7 retired before it
                csr(2, SP, 0x340, ZERO)); // csrr sp, mscratch
        Rv64Cpu cpu = h.hart(3, path);
        cpu.setReg(A1, 0b1001);
        cpu.setReg(A2, 0b0110);
        assertEquals(9, cpu.run(9));
        assertNull(cpu.fault());
        assertEquals(3, cpu.reg(A0));
        assertEquals(0b1001, cpu.reg(A2));
        assertEquals(0b1111, cpu.reg(A3));
        assertEquals(0b0110, cpu.reg(T0));
        assertEquals(31, cpu.reg(T1));
        assertEquals(31, cpu.reg(T2));
        assertEquals(7, cpu.reg(A1));
        assertEquals(28, cpu.reg(SP));
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void unknownOrReadOnlyCsrsAndIllegalWordsStopTheHartNamingPcAndWord(MemoryPath path) {
        int[] words = {
                csr(1, ZERO, 0xf14, A1), // csrw mhartid: read-only
                csr(2, A0, 0x7c0, ZERO), // a custom CSR this hart does not have
                0x0000_0000, // all zeros: illegal by definition
                0x0200_0033 | 0x1000_0000, // OP with funct7 0x11
        };
        for (int word : words) {
            Rv64Harness h = new Rv64Harness();
            h.code(CODE, addi(A0, ZERO, 1), word, addi(A0, ZERO, 2));
            Rv64Cpu cpu = h.hart(0, path);
            assertEquals(1, cpu.run(10));
            assertEquals(String.format("hart 0: illegal instruction pc=0x%x word=0x%08x", CODE + 4, word), cpu.fault());
            assertEquals(CODE + 4, cpu.pc());
            assertEquals(1, cpu.reg(A0));
            assertEquals(0, cpu.run(10), "a stopped hart stays stopped");
        }
        Rv64Harness h = new Rv64Harness();
        h.code(CODE, ECALL);
        Rv64Cpu cpu = h.hart(0, path);
        assertEquals(0, cpu.run(1));
        assertEquals("hart 0: ecall pc=0x" + Long.toHexString(CODE) + ": no trap handler in this machine", cpu.fault());
    }
}
