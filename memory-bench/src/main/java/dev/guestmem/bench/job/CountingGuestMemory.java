package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.GuestMemory;
import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.CodeProtection;
import org.HdrHistogram.Histogram;

/**
 * A vCPU's {@link GuestMemory} (through a {@code SoftTlb} or a {@code HostTlb}) with its accesses counted by kind and
 * one access in {@value #SAMPLE_EVERY} timed: a timed access that left the fast path ({@link GuestMemory#missCount()}
 * moved) goes into the slow-path histogram, any other into the hit histogram. The times include two reads of the
 * clock (tens of nanoseconds).
 *
 * <p>Threading: confined to its vCPU thread; the histograms are read once the thread is done.
 */
final class CountingGuestMemory implements GuestMemory {
    static final int SAMPLE_EVERY = 64;

    private final GuestMemory inner;
    final Histogram slowNanos = new Histogram(3);
    final Histogram hitNanos = new Histogram(3);
    long loads;
    long stores;
    long fetches;
    /** Atomics: AMOs, and the compare-and-exchange of each store-conditional. */
    long atomics;
    private int countdown = SAMPLE_EVERY;
    private long sampleMisses;

    CountingGuestMemory(GuestMemory inner) {
        this.inner = inner;
    }

    /** Accesses that went through the memory: loads, stores, fetches and atomics. */
    long accesses() {
        return loads + stores + fetches + atomics;
    }

    /** Starts timing this access if it is the sampled one: the start time, or 0. */
    private long begin() {
        if (--countdown != 0) {
            return 0;
        }
        countdown = SAMPLE_EVERY;
        sampleMisses = inner.missCount();
        return System.nanoTime();
    }

    private void end(long start) {
        if (start != 0) {
            long nanos = System.nanoTime() - start;
            (inner.missCount() != sampleMisses ? slowNanos : hitNanos).recordValue(Math.max(0, nanos));
        }
    }

    @Override
    public int ldub(long addr) {
        loads++;
        long t = begin();
        int v = inner.ldub(addr);
        end(t);
        return v;
    }

    @Override
    public int lduw(long addr) {
        loads++;
        long t = begin();
        int v = inner.lduw(addr);
        end(t);
        return v;
    }

    @Override
    public int ldl(long addr) {
        loads++;
        long t = begin();
        int v = inner.ldl(addr);
        end(t);
        return v;
    }

    @Override
    public long ldq(long addr) {
        loads++;
        long t = begin();
        long v = inner.ldq(addr);
        end(t);
        return v;
    }

    @Override
    public void stb(long addr, int val) {
        stores++;
        long t = begin();
        inner.stb(addr, val);
        end(t);
    }

    @Override
    public void stw(long addr, int val) {
        stores++;
        long t = begin();
        inner.stw(addr, val);
        end(t);
    }

    @Override
    public void stl(long addr, int val) {
        stores++;
        long t = begin();
        inner.stl(addr, val);
        end(t);
    }

    @Override
    public void stq(long addr, long val) {
        stores++;
        long t = begin();
        inner.stq(addr, val);
        end(t);
    }

    @Override
    public long atomicFetchOp(AtomicOp op, long addr, long operand, int size) {
        atomics++;
        long t = begin();
        long v = inner.atomicFetchOp(op, addr, operand, size);
        end(t);
        return v;
    }

    @Override
    public long atomicCmpxchg(long addr, long expected, long desired, int size) {
        atomics++;
        long t = begin();
        long v = inner.atomicCmpxchg(addr, expected, desired, size);
        end(t);
        return v;
    }

    @Override
    public int fetch(long addr) {
        fetches++;
        long t = begin();
        int v = inner.fetch(addr);
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
    public long checkpoint() {
        return inner.checkpoint();
    }

    @Override
    public long missCount() {
        return inner.missCount();
    }

    @Override
    public boolean enterSection() {
        return inner.enterSection();
    }

    @Override
    public void leaveSection() {
        inner.leaveSection();
    }

    @Override
    public int takeResult() {
        return inner.takeResult();
    }

    @Override
    public void close() {
        inner.close();
    }
}
