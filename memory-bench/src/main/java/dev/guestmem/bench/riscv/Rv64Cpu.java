package dev.guestmem.bench.riscv;

import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.RamList;

import java.lang.invoke.VarHandle;
import java.util.concurrent.ConcurrentHashMap;

import static dev.guestmem.bench.riscv.Rv64Decoder.*;

/**
 * One RISC-V hart: an RV64IMA interpreter in machine mode without MMU, traps or interrupts, with the Zicsr and
 * Zifencei instructions the guest programs use; the CPU of QEMU's {@code target/riscv} reduced to a workload for
 * guestmem. Every load, store, atomic and instruction fetch goes through the vCPU's {@link GuestMemory}.
 *
 * <h2>Decoded code</h2>
 * Instructions are decoded once and kept per 4 KiB page ({@link DecodedPage}), 64 pages direct-mapped. A page is
 * protected through {@link GuestMemory#protectCode} before anything is decoded from it and held in the machine's
 * {@link CodePages} while the hart keeps it; when its memory reports code writes
 * ({@link GuestMemory#codeProtection()}), a {@link CodeProtection.Listener} marks the page stale on the storing thread
 * once the store landed and releases it, and the hart drops it before its next instruction, also when the store was
 * its own. A page the hart drops for any
 * other reason (evicted by another page, another memory after a map change, the hart closed) is released too; the last
 * hart to release a page unprotects it, so stores to memory that no hart executes from any more are not reported and
 * take the TLBs' fast path again. Without reports the hart drops all its pages at {@code fence.i}. A page is keyed by
 * its guest-physical address, which a change of the memory map can point at other memory (a ROM device leaving romd
 * mode, a region moved or removed): at every check point that finds the map changed ({@link GuestMemory#checkpoint()}),
 * each page is looked up again before its next use and kept only if it is still the same memory (QEMU finds its
 * translation blocks through the TLB by physical address, which a map change flushes).
 *
 * <h2>Check points and the read-side section</h2>
 * A {@link #run} call is a series of blocks: the hart reaches a check point ({@link GuestMemory#checkpoint()}) at its
 * start and then every {@value #CHECK_INTERVAL} instructions, as QEMU's vCPU sees TLB flushes between translation
 * blocks. A memory that needs a read-side
 * section ({@link HostTlbGuestMemory}) is used inside one: a caller that keeps the section open across calls (the main
 * job's vCPU loop) enters it itself; a call made outside one enters and leaves a section of its own.
 *
 * <h2>What is not modelled</h2>
 * Traps: an illegal instruction, {@code ecall}, {@code ebreak}, a misaligned fetch or atomic, or a failed
 * instruction fetch stops the hart with a message naming pc ({@link #fault()}). A data access that fails (a hole)
 * reads 0, as through the TLB, and stops the hart at the end of the {@link #run} call that made it. {@code wfi} ends
 * the {@code run} call. CSRs: {@code mhartid}, {@code mscratch}, and {@code cycle}/{@code mcycle} and
 * {@code instret}/{@code minstret} (both count retired instructions, read-only).
 *
 * <h2>Atomics</h2>
 * AMOs are the library's atomics ({@link GuestMemory#atomicFetchOp}, one atomic instruction on guest RAM). LR/SC as
 * QEMU's TCG does it: LR is a plain load that remembers the address and the value; SC is a compare-and-exchange of
 * that value ({@link GuestMemory#atomicCmpxchg}), so it succeeds when the word still holds what LR read (another
 * hart's store of the same value in between goes unnoticed, which the ISA allows for an LR/SC loop that makes
 * progress). Both are ordered (volatile) accesses, which gives every {@code aq} and {@code rl} bit what it asks for.
 * Plain stores of other harts are atomic against them. What the library refuses (an atomic on MMIO, or on RAM that
 * may fault) is done by {@link ExclusiveAtomics} under the machine's {@code exclusive} lock.
 *
 * <p>Threading: {@link #run} on the thread its {@link GuestMemory} belongs to (the vCPU thread); {@link #close()}
 * from it when done.
 */
public final class Rv64Cpu implements AutoCloseable {
    /** The most instructions between two check points of a {@link #run} call. */
    public static final long CHECK_INTERVAL = 1024;
    private static final int PAGES = 64;
    private static final long PAGE_MASK = ~(DecodedPage.PAGE_SIZE - 1);
    private static final int CSR_MSCRATCH = 0x340;
    private static final int CSR_MCYCLE = 0xb00;
    private static final int CSR_MINSTRET = 0xb02;
    private static final int CSR_CYCLE = 0xc00;
    private static final int CSR_INSTRET = 0xc02;
    private static final int CSR_MHARTID = 0xf14;
    private static final AtomicOp[] AMO_OPS = AtomicOp.values();

    private final int hartId;
    private final GuestMemory memory;
    private final Object exclusive;
    private final CodeProtection codeProtection;
    /** The machine's holders of decoded pages; null without code reports. */
    private final CodePages codePages;
    private final CodeProtection.Listener codeListener;
    private final DecodedPage[] pages = new DecodedPage[PAGES];
    /** The cached pages by key, for the code-write listener, which may run on any thread. */
    private final ConcurrentHashMap<Long, DecodedPage> pagesByKey = new ConcurrentHashMap<>();

    private final long[] x = new long[32];
    private long pc;
    private long retired;
    private long mscratch;
    /** LR/SC reservation: address, or -1 when none; the value loaded. */
    private long reservedAddr = -1;
    private long reservedValue;
    /** The map generation at the start of the current {@link #run}. */
    private long mapGeneration;
    /** Results of accesses that {@link #atomicResult} took from the memory, for the end of {@link #run}. */
    private int pendingResult = MemTxResult.OK;
    /** Set by an instruction that ends the current {@link #run}: a fault, {@code wfi}, a cache flush. */
    private boolean leave;
    private String fault;

    /**
     * A hart with all registers 0 and pc 0.
     *
     * @param hartId    what {@code mhartid} reads
     * @param memory    this hart's own view of guest memory
     * @param exclusive the lock all the harts of one machine hold for an atomic the library refuses
     * @param codePages the pages the machine's harts hold decoded code from, over the memory's code protection
     *                  (ignored when the memory reports no code writes)
     * @throws IllegalArgumentException if {@code codePages} is over another code protection than the memory's
     */
    public Rv64Cpu(int hartId, GuestMemory memory, Object exclusive, CodePages codePages) {
        this.hartId = hartId;
        this.memory = memory;
        this.exclusive = exclusive;
        this.codeProtection = memory.codeProtection();
        if (codeProtection != null && codePages.codeProtection() != codeProtection) {
            throw new IllegalArgumentException("codePages=" + codePages + " codeProtection=" + codeProtection
                    + ": the pages must be over the memory's code protection");
        }
        this.codePages = codeProtection == null ? null : codePages;
        this.codeListener = codeProtection == null ? null : this::codeWritten;
        if (codeProtection != null) {
            codeProtection.addListener(codeListener);
        }
    }

    public int hartId() {
        return hartId;
    }

    public long pc() {
        return pc;
    }

    public void setPc(long pc) {
        this.pc = pc;
    }

    /** Register {@code x<i>}; x0 reads 0. */
    public long reg(int i) {
        return x[i];
    }

    /** Sets {@code x<i>}; writes to x0 are ignored. */
    public void setReg(int i, long value) {
        if (i != 0) {
            x[i] = value;
        }
    }

    /** Instructions retired since the hart was made. */
    public long retired() {
        return retired;
    }

    /** Why the hart stopped for good, or {@code null} while it can run. */
    public String fault() {
        return fault;
    }

    /** Pages of decoded instructions this hart holds now. */
    public int cachedPages() {
        return pagesByKey.size();
    }

    /**
     * Executes up to {@code budget} instructions; returns early at {@code wfi}, at a {@code fence.i} that dropped the
     * decoded code, and at a fault. Does nothing once {@link #fault()} is set.
     *
     * @return instructions retired by this call
     */
    public long run(long budget) {
        final boolean ownSection = memory.enterSection();
        try {
            return runBlocks(budget);
        } finally {
            if (ownSection) {
                memory.leaveSection();
            }
        }
    }

    private long runBlocks(long budget) {
        final long start = retired;
        final long end = start + budget;
        mapGeneration = memory.checkpoint();
        long nextCheck = start + CHECK_INTERVAL;
        while (fault == null && retired < end) {
            if (retired >= nextCheck) {
                mapGeneration = memory.checkpoint();
                nextCheck = retired + CHECK_INTERVAL;
            }
            if ((pc & 3) != 0) {
                stop("instruction address misaligned pc=0x%x", pc);
                break;
            }
            final DecodedPage page = page(pc & PAGE_MASK);
            if (runInPage(page, Math.min(end, nextCheck))) {
                break;
            }
        }
        int result = memory.takeResult() | pendingResult;
        pendingResult = MemTxResult.OK;
        if (result != MemTxResult.OK && fault == null) {
            stop("memory transaction failed (result=0x%x) before pc=0x%x", result, pc);
        }
        return retired - start;
    }

    /**
     * Runs while pc stays in {@code page}, the page is valid and fewer than {@code end} instructions have retired;
     * returns whether {@link #run} must return at once (a fault, {@code wfi}, dropped code).
     */
    private boolean runInPage(DecodedPage page, long end) {
        final long pageAddr = page.pageAddr;
        final boolean cacheable = page.cacheable();
        while (retired < end) {
            final long at = pc;
            if ((at & (PAGE_MASK | 3)) != pageAddr || page.stale) {
                return false;
            }
            final int slot = (int) (at & ~PAGE_MASK) >>> 2;
            int kind = cacheable ? page.kinds[slot] : UNDECODED;
            final int word;
            final int imm;
            if (kind != UNDECODED) {
                word = page.words[slot];
                imm = page.imms[slot];
            } else {
                word = memory.fetch(at);
                int result = memory.takeResult();
                if (result != MemTxResult.OK) {
                    stop("instruction fetch failed (result=0x%x) pc=0x%x", result, at);
                    return true;
                }
                kind = Rv64Decoder.kind(word);
                imm = Rv64Decoder.imm(kind, word);
                if (cacheable) {
                    page.words[slot] = word;
                    page.imms[slot] = imm;
                    page.kinds[slot] = kind;
                }
            }
            execute(kind, word, imm, at);
            if (leave) {
                leave = false;
                return true;
            }
        }
        return false;
    }

    private DecodedPage page(long pageAddr) {
        final int index = (int) (pageAddr >>> DecodedPage.PAGE_BITS) & (PAGES - 1);
        final DecodedPage cached = pages[index];
        if (cached != null && cached.pageAddr == pageAddr && !cached.stale) {
            if (cached.generation == mapGeneration) {
                return cached;
            }
            if (cached.cacheable()) {
                // The map changed since the page was found: keep it only if its address is still the same memory (the
                // lookup protects it again, as a new page's would).
                final long seen = unprotects();
                final long key = memory.protectCode(pageAddr);
                if (key == cached.key) {
                    cached.generation = mapGeneration;
                    return cached;
                }
                drop(cached);
                return newPage(index, pageAddr, key, seen);
            }
        }
        if (cached != null) {
            drop(cached);
        }
        // Protect first, then decode (lazily, later): a store the decoding does not see is reported.
        final long seen = unprotects();
        return newPage(index, pageAddr, memory.protectCode(pageAddr), seen);
    }

    /** {@link CodePages#unprotects()}, or 0 without code reports. */
    private long unprotects() {
        return codePages == null ? 0 : codePages.unprotects();
    }

    /**
     * A page of no decoded instructions yet at {@code pageAddr}, which {@link GuestMemory#protectCode} just protected
     * as {@code key} after {@link CodePages#unprotects()} read {@code unprotectsBefore}; held before the code-write
     * listener can find it.
     */
    private DecodedPage newPage(int index, long pageAddr, long key, long unprotectsBefore) {
        final DecodedPage page = new DecodedPage(pageAddr, key, key != RamList.INVALID_RAM_ADDR);
        page.generation = mapGeneration;
        if (page.cacheable()) {
            if (codePages != null) {
                codePages.hold(codePage(key), unprotectsBefore);
            }
            final DecodedPage replaced = pagesByKey.put(key >>> DecodedPage.PAGE_BITS, page);
            if (replaced != null) {
                replaced.stale = true; // the same memory seen at two addresses: keep one page per key
                if (codePages != null) {
                    codePages.release(codePage(key)); // the hart held this memory already
                }
            }
        }
        pages[index] = page;
        return page;
    }

    /** Forgets {@code page} if the hart still keeps it under its key, and releases it then (exactly once). */
    private void drop(DecodedPage page) {
        if (page.cacheable() && pagesByKey.remove(page.key >>> DecodedPage.PAGE_BITS, page) && codePages != null) {
            codePages.release(codePage(page.key));
        }
    }

    /** The ram_addr of the first byte of the page holding ram_addr {@code key}: its name in {@link CodePages}. */
    private static long codePage(long key) {
        return key & PAGE_MASK;
    }

    /** The {@link CodeProtection.Listener}: any thread, after the store landed. */
    private void codeWritten(long ramAddr, long length) {
        final DecodedPage page = pagesByKey.get(ramAddr >>> DecodedPage.PAGE_BITS);
        if (page != null) {
            page.stale = true; // volatile: the owner sees it before its next instruction, and drops the page
            drop(page);
        }
    }

    private void dropDecodedCode() {
        for (int i = 0; i < PAGES; i++) {
            if (pages[i] != null) {
                pages[i].stale = true;
                drop(pages[i]);
                pages[i] = null;
            }
        }
        leave = true;
    }

    private void set(int rd, long value) {
        if (rd != 0) {
            x[rd] = value;
        }
    }

    private void stop(String format, Object... args) {
        fault = "hart " + hartId + ": " + String.format(format, args);
        leave = true;
    }

    private void illegal(long at, int word) {
        stop("illegal instruction pc=0x%x word=0x%08x", at, word);
    }

    /** Executes one decoded instruction at {@code at}; sets pc, and retires it unless it faulted. */
    private void execute(int kind, int w, int imm, long at) {
        final long[] r = x;
        final int rd = rd(w);
        final long a = r[rs1(w)];
        final long b = r[rs2(w)];
        long next = at + 4;
        switch (kind) {
            case LUI -> set(rd, imm);
            case AUIPC -> set(rd, at + imm);
            case JAL -> {
                set(rd, next);
                next = at + imm;
            }
            case JALR -> {
                next = (a + imm) & ~1L;
                set(rd, at + 4);
            }
            case BEQ -> next = a == b ? at + imm : next;
            case BNE -> next = a != b ? at + imm : next;
            case BLT -> next = a < b ? at + imm : next;
            case BGE -> next = a >= b ? at + imm : next;
            case BLTU -> next = Long.compareUnsigned(a, b) < 0 ? at + imm : next;
            case BGEU -> next = Long.compareUnsigned(a, b) >= 0 ? at + imm : next;
            case LB -> set(rd, (byte) memory.ldub(a + imm));
            case LH -> set(rd, (short) memory.lduw(a + imm));
            case LW -> set(rd, memory.ldl(a + imm));
            case LD -> set(rd, memory.ldq(a + imm));
            case LBU -> set(rd, memory.ldub(a + imm));
            case LHU -> set(rd, memory.lduw(a + imm));
            case LWU -> set(rd, memory.ldl(a + imm) & 0xffff_ffffL);
            case SB -> memory.stb(a + imm, (int) b);
            case SH -> memory.stw(a + imm, (int) b);
            case SW -> memory.stl(a + imm, (int) b);
            case SD -> memory.stq(a + imm, b);
            case ADDI -> set(rd, a + imm);
            case SLTI -> set(rd, a < imm ? 1 : 0);
            case SLTIU -> set(rd, Long.compareUnsigned(a, imm) < 0 ? 1 : 0);
            case XORI -> set(rd, a ^ imm);
            case ORI -> set(rd, a | imm);
            case ANDI -> set(rd, a & imm);
            case SLLI -> set(rd, a << imm);
            case SRLI -> set(rd, a >>> imm);
            case SRAI -> set(rd, a >> imm);
            case ADDIW -> set(rd, (int) a + imm);
            case SLLIW -> set(rd, (int) a << imm);
            case SRLIW -> set(rd, (int) a >>> imm);
            case SRAIW -> set(rd, (int) a >> imm);
            case ADD -> set(rd, a + b);
            case SUB -> set(rd, a - b);
            case SLL -> set(rd, a << b);
            case SLT -> set(rd, a < b ? 1 : 0);
            case SLTU -> set(rd, Long.compareUnsigned(a, b) < 0 ? 1 : 0);
            case XOR -> set(rd, a ^ b);
            case SRL -> set(rd, a >>> b);
            case SRA -> set(rd, a >> b);
            case OR -> set(rd, a | b);
            case AND -> set(rd, a & b);
            case ADDW -> set(rd, (int) a + (int) b);
            case SUBW -> set(rd, (int) a - (int) b);
            case SLLW -> set(rd, (int) a << b);
            case SRLW -> set(rd, (int) a >>> b);
            case SRAW -> set(rd, (int) a >> b);
            case MUL -> set(rd, a * b);
            case MULH -> set(rd, Math.multiplyHigh(a, b));
            case MULHSU -> set(rd, Math.multiplyHigh(a, b) + (b < 0 ? a : 0));
            case MULHU -> set(rd, Math.unsignedMultiplyHigh(a, b));
            // Division by zero and overflow give the ISA's values; Java's MIN_VALUE / -1 already is MIN_VALUE.
            case DIV -> set(rd, b == 0 ? -1 : a / b);
            case DIVU -> set(rd, b == 0 ? -1 : Long.divideUnsigned(a, b));
            case REM -> set(rd, b == 0 ? a : a % b);
            case REMU -> set(rd, b == 0 ? a : Long.remainderUnsigned(a, b));
            case MULW -> set(rd, (int) a * (int) b);
            case DIVW -> set(rd, (int) b == 0 ? -1 : (int) a / (int) b);
            case DIVUW -> set(rd, (int) b == 0 ? -1 : Integer.divideUnsigned((int) a, (int) b));
            case REMW -> set(rd, (int) b == 0 ? (int) a : (int) a % (int) b);
            case REMUW -> set(rd, (int) b == 0 ? (int) a : Integer.remainderUnsigned((int) a, (int) b));
            case FENCE -> VarHandle.fullFence();
            case FENCE_I -> {
                if (codeProtection == null) {
                    dropDecodedCode();
                }
            }
            case WFI -> leave = true;
            case CSRRW, CSRRS, CSRRC, CSRRWI, CSRRSI, CSRRCI -> {
                if (!csr(kind, imm, rd, kind >= CSRRWI ? rs1(w) : a, rs1(w) != 0)) {
                    illegal(at, w);
                    return;
                }
            }
            case AMO_W, AMO_D -> {
                final int size = kind == AMO_W ? 4 : 8;
                if (!aligned(a, size, at)) {
                    return;
                }
                final AtomicOp op = AMO_OPS[imm];
                long old = memory.atomicFetchOp(op, a, b, size);
                if (atomicRefused()) {
                    old = ExclusiveAtomics.fetchOp(exclusive, memory, op, a, b, size);
                }
                set(rd, size == 4 ? (int) old : old);
            }
            case LR_W, LR_D -> {
                final int size = kind == LR_W ? 4 : 8;
                if (!aligned(a, size, at)) {
                    return;
                }
                final long v = size == 4 ? memory.ldl(a) : memory.ldq(a);
                reservedAddr = a;
                reservedValue = v;
                set(rd, v);
            }
            case SC_W, SC_D -> {
                final int size = kind == SC_W ? 4 : 8;
                if (!aligned(a, size, at)) {
                    return;
                }
                boolean stored = reservedAddr == a && storeConditional(a, b, size);
                reservedAddr = -1;
                set(rd, stored ? 0 : 1);
            }
            case ECALL -> {
                stop("ecall pc=0x%x: no trap handler in this machine", at);
                return;
            }
            case EBREAK -> {
                stop("ebreak pc=0x%x", at);
                return;
            }
            default -> {
                illegal(at, w);
                return;
            }
        }
        pc = next;
        retired++;
    }

    /** SC's compare-and-exchange of the reserved value; whether it stored. */
    private boolean storeConditional(long addr, long value, int size) {
        final long expected = size == 4 ? reservedValue & 0xffff_ffffL : reservedValue;
        long found = memory.atomicCmpxchg(addr, reservedValue, value, size);
        if (atomicRefused()) {
            found = ExclusiveAtomics.cmpxchg(exclusive, memory, addr, expected, value, size);
        }
        return found == expected;
    }

    /**
     * Whether the atomic just made was refused by the library; any other result of the accesses since the last look
     * is kept for the end of {@link #run}.
     */
    private boolean atomicRefused() {
        final int r = memory.takeResult();
        pendingResult |= r & ~MemTxResult.ATOMIC_REFUSED;
        return (r & MemTxResult.ATOMIC_REFUSED) != 0;
    }

    private boolean aligned(long addr, int size, long at) {
        if ((addr & (size - 1)) != 0) {
            stop("misaligned atomic addr=0x%x size=%d pc=0x%x", addr, size, at);
            return false;
        }
        return true;
    }

    /**
     * A CSR instruction: reads {@code csr} into {@code rd} and writes it as {@code kind} says with {@code operand} (a
     * register's value or the zero-extended immediate). Returns false for an unknown CSR or a write to a read-only one.
     */
    private boolean csr(int kind, int csr, int rd, long operand, boolean operandNonZero) {
        final boolean write = kind == CSRRW || kind == CSRRWI || operandNonZero;
        final long old;
        switch (csr) {
            case CSR_MHARTID -> old = hartId;
            case CSR_CYCLE, CSR_INSTRET, CSR_MCYCLE, CSR_MINSTRET -> old = retired;
            case CSR_MSCRATCH -> old = mscratch;
            default -> {
                return false;
            }
        }
        if (write) {
            if (csr != CSR_MSCRATCH) {
                return false;
            }
            mscratch = switch (kind) {
                case CSRRW, CSRRWI -> operand;
                case CSRRS, CSRRSI -> old | operand;
                default -> old & ~operand;
            };
        }
        set(rd, old);
        return true;
    }

    /** Stops hearing code-write reports and releases every page it holds; the hart must not run afterwards. */
    @Override
    public void close() {
        if (codeProtection != null) {
            codeProtection.removeListener(codeListener);
        }
        for (DecodedPage page : pagesByKey.values()) {
            drop(page);
        }
    }

    @Override
    public String toString() {
        return "Rv64Cpu[hart=" + hartId + " pc=0x" + Long.toHexString(pc) + " retired=" + retired + "]";
    }
}
