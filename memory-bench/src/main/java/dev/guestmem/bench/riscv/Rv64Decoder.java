package dev.guestmem.bench.riscv;

import dev.guestmem.memory.AtomicOp;

/**
 * Decodes 32-bit RV64IMA, Zicsr and Zifencei instruction words into a kind (one of the constants here) and an
 * immediate, the form {@link Rv64Cpu} caches per page. Register fields stay in the word: {@link #rd}, {@link #rs1},
 * {@link #rs2}. Formats and encodings are those of the RISC-V unprivileged ISA manual (version 20191213), chapters 2
 * (RV32I), 5 (RV64I), 7 (M), 8 (A), 9 (Zicsr) and 3 (Zifencei); {@code wfi} and {@code mret}'s neighbours from the
 * privileged manual. Compressed instructions are not decoded: the guest programs are built without C.
 */
final class Rv64Decoder {
    /** Not decoded yet (in a page's cache). */
    static final int UNDECODED = 0;
    static final int ILLEGAL = 1;
    static final int LUI = 2, AUIPC = 3, JAL = 4, JALR = 5;
    static final int BEQ = 6, BNE = 7, BLT = 8, BGE = 9, BLTU = 10, BGEU = 11;
    static final int LB = 12, LH = 13, LW = 14, LD = 15, LBU = 16, LHU = 17, LWU = 18;
    static final int SB = 19, SH = 20, SW = 21, SD = 22;
    static final int ADDI = 23, SLTI = 24, SLTIU = 25, XORI = 26, ORI = 27, ANDI = 28, SLLI = 29, SRLI = 30, SRAI = 31;
    static final int ADDIW = 32, SLLIW = 33, SRLIW = 34, SRAIW = 35;
    static final int ADD = 36, SUB = 37, SLL = 38, SLT = 39, SLTU = 40, XOR = 41, SRL = 42, SRA = 43, OR = 44, AND = 45;
    static final int ADDW = 46, SUBW = 47, SLLW = 48, SRLW = 49, SRAW = 50;
    static final int MUL = 51, MULH = 52, MULHSU = 53, MULHU = 54, DIV = 55, DIVU = 56, REM = 57, REMU = 58;
    static final int MULW = 59, DIVW = 60, DIVUW = 61, REMW = 62, REMUW = 63;
    static final int FENCE = 64, FENCE_I = 65, ECALL = 66, EBREAK = 67, WFI = 68;
    static final int CSRRW = 69, CSRRS = 70, CSRRC = 71, CSRRWI = 72, CSRRSI = 73, CSRRCI = 74;
    /** Immediate: the {@link AtomicOp} ordinal. */
    static final int AMO_W = 75, AMO_D = 76;
    static final int LR_W = 77, LR_D = 78, SC_W = 79, SC_D = 80;

    private static final AtomicOp[] AMO_BY_FUNCT5 = new AtomicOp[32];

    static {
        AMO_BY_FUNCT5[0x00] = AtomicOp.FETCH_ADD;
        AMO_BY_FUNCT5[0x01] = AtomicOp.XCHG;
        AMO_BY_FUNCT5[0x04] = AtomicOp.FETCH_XOR;
        AMO_BY_FUNCT5[0x08] = AtomicOp.FETCH_OR;
        AMO_BY_FUNCT5[0x0c] = AtomicOp.FETCH_AND;
        AMO_BY_FUNCT5[0x10] = AtomicOp.FETCH_SMIN;
        AMO_BY_FUNCT5[0x14] = AtomicOp.FETCH_SMAX;
        AMO_BY_FUNCT5[0x18] = AtomicOp.FETCH_UMIN;
        AMO_BY_FUNCT5[0x1c] = AtomicOp.FETCH_UMAX;
    }

    private Rv64Decoder() {
    }

    static int rd(int w) {
        return (w >>> 7) & 31;
    }

    static int rs1(int w) {
        return (w >>> 15) & 31;
    }

    static int rs2(int w) {
        return (w >>> 20) & 31;
    }

    /** The instruction's kind, {@link #ILLEGAL} for anything the CPU does not implement. */
    static int kind(int w) {
        final int f3 = (w >>> 12) & 7;
        final int f7 = w >>> 25;
        return switch (w & 0x7f) {
            case 0x37 -> LUI;
            case 0x17 -> AUIPC;
            case 0x6f -> JAL;
            case 0x67 -> f3 == 0 ? JALR : ILLEGAL;
            case 0x63 -> switch (f3) {
                case 0 -> BEQ;
                case 1 -> BNE;
                case 4 -> BLT;
                case 5 -> BGE;
                case 6 -> BLTU;
                case 7 -> BGEU;
                default -> ILLEGAL;
            };
            case 0x03 -> f3 == 7 ? ILLEGAL : LB + f3;
            case 0x23 -> f3 > 3 ? ILLEGAL : SB + f3;
            case 0x13 -> opImm(f3, w >>> 26);
            case 0x1b -> opImm32(f3, f7);
            case 0x33 -> op(f3, f7);
            case 0x3b -> op32(f3, f7);
            case 0x0f -> f3 == 0 ? FENCE : f3 == 1 ? FENCE_I : ILLEGAL;
            case 0x73 -> system(w, f3);
            case 0x2f -> amo(w, f3);
            default -> ILLEGAL;
        };
    }

    private static int opImm(int f3, int f6) {
        return switch (f3) {
            case 0 -> ADDI;
            case 1 -> f6 == 0 ? SLLI : ILLEGAL;
            case 2 -> SLTI;
            case 3 -> SLTIU;
            case 4 -> XORI;
            case 5 -> f6 == 0 ? SRLI : f6 == 0x10 ? SRAI : ILLEGAL;
            case 6 -> ORI;
            default -> ANDI;
        };
    }

    private static int opImm32(int f3, int f7) {
        return switch (f3) {
            case 0 -> ADDIW;
            case 1 -> f7 == 0 ? SLLIW : ILLEGAL;
            case 5 -> f7 == 0 ? SRLIW : f7 == 0x20 ? SRAIW : ILLEGAL;
            default -> ILLEGAL;
        };
    }

    private static int op(int f3, int f7) {
        if (f7 == 1) {
            return MUL + f3;
        }
        if (f7 == 0x20) {
            return f3 == 0 ? SUB : f3 == 5 ? SRA : ILLEGAL;
        }
        if (f7 != 0) {
            return ILLEGAL;
        }
        return switch (f3) {
            case 0 -> ADD;
            case 1 -> SLL;
            case 2 -> SLT;
            case 3 -> SLTU;
            case 4 -> XOR;
            case 5 -> SRL;
            case 6 -> OR;
            default -> AND;
        };
    }

    private static int op32(int f3, int f7) {
        if (f7 == 1) {
            return switch (f3) {
                case 0 -> MULW;
                case 4 -> DIVW;
                case 5 -> DIVUW;
                case 6 -> REMW;
                case 7 -> REMUW;
                default -> ILLEGAL;
            };
        }
        return switch (f3) {
            case 0 -> f7 == 0 ? ADDW : f7 == 0x20 ? SUBW : ILLEGAL;
            case 1 -> f7 == 0 ? SLLW : ILLEGAL;
            case 5 -> f7 == 0 ? SRLW : f7 == 0x20 ? SRAW : ILLEGAL;
            default -> ILLEGAL;
        };
    }

    private static int system(int w, int f3) {
        return switch (f3) {
            case 0 -> switch (w) {
                case 0x0000_0073 -> ECALL;
                case 0x0010_0073 -> EBREAK;
                case 0x1050_0073 -> WFI;
                default -> ILLEGAL;
            };
            case 1 -> CSRRW;
            case 2 -> CSRRS;
            case 3 -> CSRRC;
            case 5 -> CSRRWI;
            case 6 -> CSRRSI;
            case 7 -> CSRRCI;
            default -> ILLEGAL;
        };
    }

    private static int amo(int w, int f3) {
        if (f3 != 2 && f3 != 3) {
            return ILLEGAL;
        }
        final boolean d = f3 == 3;
        final int f5 = w >>> 27;
        if (f5 == 0x02) {
            return rs2(w) != 0 ? ILLEGAL : d ? LR_D : LR_W;
        }
        if (f5 == 0x03) {
            return d ? SC_D : SC_W;
        }
        return AMO_BY_FUNCT5[f5] == null ? ILLEGAL : d ? AMO_D : AMO_W;
    }

    /** The immediate of a word of kind {@code kind}, sign-extended where the format says so. */
    static int imm(int kind, int w) {
        if (kind == LUI || kind == AUIPC) {
            return w & 0xffff_f000;
        }
        if (kind == JAL) {
            return (w >> 31) << 20 | ((w >>> 12) & 0xff) << 12 | ((w >>> 20) & 1) << 11 | ((w >>> 21) & 0x3ff) << 1;
        }
        if (kind >= BEQ && kind <= BGEU) {
            return (w >> 31) << 12 | ((w >>> 7) & 1) << 11 | ((w >>> 25) & 0x3f) << 5 | ((w >>> 8) & 0xf) << 1;
        }
        if (kind >= SB && kind <= SD) {
            return (w >> 25) << 5 | ((w >>> 7) & 31);
        }
        if (kind == SLLI || kind == SRLI || kind == SRAI) {
            return (w >>> 20) & 63;
        }
        if (kind == SLLIW || kind == SRLIW || kind == SRAIW) {
            return (w >>> 20) & 31;
        }
        if (kind >= CSRRW && kind <= CSRRCI) {
            return w >>> 20; // the CSR number, unsigned
        }
        if (kind == AMO_W || kind == AMO_D) {
            return AMO_BY_FUNCT5[w >>> 27].ordinal();
        }
        return w >> 20; // I-type
    }
}
