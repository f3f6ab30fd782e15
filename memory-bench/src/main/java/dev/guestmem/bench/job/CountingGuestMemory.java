package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.GuestMemory;
import dev.guestmem.bench.riscv.TlbGuestMemory;
import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.SoftTlb;
import org.HdrHistogram.Histogram;

/**
 * A vCPU's {@link TlbGuestMemory} with its accesses counted by kind and one access in {@value #SAMPLE_EVERY} timed:
 * a timed access that left the TLB's fast path ({@link SoftTlb#missCount()} moved) goes into the slow-path
 * histogram, any other into the hit histogram. The times include two reads of the clock (tens of nanoseconds).
 *
 * <p>Threading: confined to its vCPU thread; the histograms are read once the thread is done.
 */
final class CountingGuestMemory implements GuestMemory {
    static final int SAMPLE_EVERY = 64;

    private final TlbGuestMemory inner;
    private final SoftTlb tlb;
    final Histogram slowNanos = new Histogram(3);
    final Histogram hitNanos = new Histogram(3);
    long loads;
    long stores;
    long fetches;
    /** Atomics: AMOs, and the compare-and-exchange of each store-conditional. */
    long atomics;
    private int countdown = SAMPLE_EVERY;
    private long sampleMisses;

    CountingGuestMemory(SoftTlb tlb) {
        this.inner = new TlbGuestMemory(tlb);
        this.tlb = tlb;
    }

    /** Accesses that went through the TLB: loads, stores, fetches and atomics. */
    long tlbAccesses() {
        return loads + stores + fetches + atomics;
    }

    SoftTlb tlb() {
        return tlb;
    }

    /** Starts timing this access if it is the sampled one: the start time, or 0. */
    private long begin() {
        if (--countdown != 0) {
            return 0;
        }
        countdown = SAMPLE_EVERY;
        sampleMisses = tlb.missCount();
        return System.nanoTime();
    }

    private void end(long start) {
        if (start != 0) {
            long nanos = System.nanoTime() - start;
            (tlb.missCount() != sampleMisses ? slowNanos : hitNanos).recordValue(Math.max(0, nanos));
        }
    }

    @Override
    public int ldub(long addr) {
        loads++;
        long t = begin();
        int v = tlb.ldub(addr);
        end(t);
        return v;
    }

    @Override
    public int lduw(long addr) {
        loads++;
        long t = begin();
        int v = tlb.lduwLe(addr);
        end(t);
        return v;
    }

    @Override
    public int ldl(long addr) {
        loads++;
        long t = begin();
        int v = tlb.ldlLe(addr);
        end(t);
        return v;
    }

    @Override
    public long ldq(long addr) {
        loads++;
        long t = begin();
        long v = tlb.ldqLe(addr);
        end(t);
        return v;
    }

    @Override
    public void stb(long addr, int val) {
        stores++;
        long t = begin();
        tlb.stb(addr, val);
        end(t);
    }

    @Override
    public void stw(long addr, int val) {
        stores++;
        long t = begin();
        tlb.stwLe(addr, val);
        end(t);
    }

    @Override
    public void stl(long addr, int val) {
        stores++;
        long t = begin();
        tlb.stlLe(addr, val);
        end(t);
    }

    @Override
    public void stq(long addr, long val) {
        stores++;
        long t = begin();
        tlb.stqLe(addr, val);
        end(t);
    }

    @Override
    public long atomicFetchOp(AtomicOp op, long addr, long operand, int size) {
        atomics++;
        long t = begin();
        long v = tlb.atomicFetchOp(op, addr, operand, size, false);
        end(t);
        return v;
    }

    @Override
    public long atomicCmpxchg(long addr, long expected, long desired, int size) {
        atomics++;
        long t = begin();
        long v = tlb.atomicCmpxchg(addr, expected, desired, size, false);
        end(t);
        return v;
    }

    @Override
    public int fetch(long addr) {
        fetches++;
        long t = begin();
        int v = tlb.ldlCode(addr);
        end(t);
        return v;
    }

    @Override
    public long protectCode(long pageAddr) {
        return inner.protectCode(pageAddr);
    }

    @Override
    public CodeProtection codeProtection() {
        return inner.codeProtection();
    }

    @Override
    public long mapGeneration() {
        return inner.mapGeneration();
    }

    @Override
    public int takeResult() {
        return inner.takeResult();
    }
}
