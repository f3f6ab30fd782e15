package dev.guestmem.bench.riscv;

import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.SoftTlb;

/**
 * Guest memory through a per-vCPU {@link SoftTlb}: data accesses and atomics through its data paths, instruction fetches through
 * its code path ({@link SoftTlb#ldlCode}), pages protected with {@link SoftTlb#protectCode} before their instructions
 * are cached. What a QEMU TCG vCPU does through {@code cputlb.c}.
 *
 * <p>Threading: confined to the vCPU thread that owns the TLB.
 */
public final class TlbGuestMemory implements GuestMemory {
    private final SoftTlb tlb;
    private final CodeProtection codeProtection;

    public TlbGuestMemory(SoftTlb tlb) {
        this.tlb = tlb;
        this.codeProtection = CodeProtection.of(tlb.addressSpace().system());
    }

    /** The TLB every access goes through. */
    public SoftTlb tlb() {
        return tlb;
    }

    @Override
    public int ldub(long addr) {
        return tlb.ldub(addr);
    }

    @Override
    public int lduw(long addr) {
        return tlb.lduwLe(addr);
    }

    @Override
    public int ldl(long addr) {
        return tlb.ldlLe(addr);
    }

    @Override
    public long ldq(long addr) {
        return tlb.ldqLe(addr);
    }

    @Override
    public void stb(long addr, int val) {
        tlb.stb(addr, val);
    }

    @Override
    public void stw(long addr, int val) {
        tlb.stwLe(addr, val);
    }

    @Override
    public void stl(long addr, int val) {
        tlb.stlLe(addr, val);
    }

    @Override
    public void stq(long addr, long val) {
        tlb.stqLe(addr, val);
    }

    @Override
    public long atomicFetchOp(AtomicOp op, long addr, long operand, int size) {
        return tlb.atomicFetchOp(op, addr, operand, size, false);
    }

    @Override
    public long atomicCmpxchg(long addr, long expected, long desired, int size) {
        return tlb.atomicCmpxchg(addr, expected, desired, size, false);
    }

    @Override
    public int fetch(long addr) {
        return tlb.ldlCode(addr);
    }

    @Override
    public long protectCode(long pageAddr) {
        return tlb.protectCode(pageAddr);
    }

    @Override
    public CodeProtection codeProtection() {
        return codeProtection;
    }

    /** Nothing to honour: the TLB checks the view on every access. */
    @Override
    public long checkpoint() {
        return tlb.addressSpace().generation();
    }

    @Override
    public long missCount() {
        return tlb.missCount();
    }

    @Override
    public int takeResult() {
        return tlb.takeResult();
    }
}
