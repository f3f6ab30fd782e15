package dev.guestmem.bench.riscv;

/** Encodes the RV64IMA instructions the interpreter tests use (the ISA manual's formats), registers by number. */
final class Rv64Asm {
    static final int ZERO = 0, RA = 1, SP = 2, T0 = 5, T1 = 6, T2 = 7, A0 = 10, A1 = 11, A2 = 12, A3 = 13;

    private Rv64Asm() {
    }

    static int r(int f7, int rs2, int rs1, int f3, int rd, int opcode) {
        return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opcode;
    }

    static int i(int imm, int rs1, int f3, int rd, int opcode) {
        return (imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opcode;
    }

    static int s(int imm, int rs2, int rs1, int f3) {
        return ((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (imm & 31) << 7 | 0x23;
    }

    static int b(int f3, int rs1, int rs2, int imm) {
        return ((imm >> 12) & 1) << 31 | ((imm >> 5) & 0x3f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12
                | ((imm >> 1) & 0xf) << 8 | ((imm >> 11) & 1) << 7 | 0x63;
    }

    static int lui(int rd, int imm) {
        return (imm & 0xffff_f000) | rd << 7 | 0x37;
    }

    static int auipc(int rd, int imm) {
        return (imm & 0xffff_f000) | rd << 7 | 0x17;
    }

    static int jal(int rd, int imm) {
        return ((imm >> 20) & 1) << 31 | ((imm >> 1) & 0x3ff) << 21 | ((imm >> 11) & 1) << 20
                | ((imm >> 12) & 0xff) << 12 | rd << 7 | 0x6f;
    }

    static int jalr(int rd, int rs1, int imm) {
        return i(imm, rs1, 0, rd, 0x67);
    }

    static int addi(int rd, int rs1, int imm) {
        return i(imm, rs1, 0, rd, 0x13);
    }

    /** OP-IMM with funct3 {@code f3} (shifts: {@code imm} holds the shift amount and the funct6/funct7 bits). */
    static int opImm(int f3, int rd, int rs1, int imm) {
        return i(imm, rs1, f3, rd, 0x13);
    }

    static int opImm32(int f3, int rd, int rs1, int imm) {
        return i(imm, rs1, f3, rd, 0x1b);
    }

    /** OP (0x33) with funct7 and funct3: ADD..AND, SUB/SRA (0x20), MUL..REMU (1). */
    static int op(int f7, int f3, int rd, int rs1, int rs2) {
        return r(f7, rs2, rs1, f3, rd, 0x33);
    }

    static int op32(int f7, int f3, int rd, int rs1, int rs2) {
        return r(f7, rs2, rs1, f3, rd, 0x3b);
    }

    /** A load with funct3 {@code f3}: 0 lb, 1 lh, 2 lw, 3 ld, 4 lbu, 5 lhu, 6 lwu. */
    static int load(int f3, int rd, int rs1, int imm) {
        return i(imm, rs1, f3, rd, 0x03);
    }

    /** A store with funct3 {@code f3}: 0 sb, 1 sh, 2 sw, 3 sd. */
    static int store(int f3, int rs2, int rs1, int imm) {
        return s(imm, rs2, rs1, f3);
    }

    /** An A-extension instruction: funct5, 2 for .w and 3 for .d, aq and rl set. */
    static int amo(int f5, int f3, int rd, int rs1, int rs2) {
        return f5 << 27 | 3 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | 0x2f;
    }

    static int csr(int f3, int rd, int csr, int rs1OrUimm) {
        return csr << 20 | rs1OrUimm << 15 | f3 << 12 | rd << 7 | 0x73;
    }

    static final int EBREAK = 0x0010_0073;
    static final int ECALL = 0x0000_0073;
    static final int FENCE_I = 0x0000_100f;
}
