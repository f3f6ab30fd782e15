package dev.guestmem.bench.riscv;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.Rcu;

/**
 * Guest memory through a per-vCPU {@link HostTlb}, the fast TLB: data accesses and instruction fetches through its
 * paths, pages protected with {@link HostTlb#protectCode} before their instructions are cached. The vCPU follows the
 * TLB's discipline, as QEMU's {@code cpu_exec} does under {@code rcu_read_lock}:
 * <ul>
 *   <li>every access is made inside the read-side section of the thread's own {@link Rcu.Reader} (registered when
 *   this object is made): {@link #enterSection()} begins it, {@link #leaveSection()} ends it (and empties the TLB),
 *   which the vCPU does before anything that can block: waiting to be let in while the machine is paused, sleeping
 *   after {@code wfi}, waiting for the next program;</li>
 *   <li>{@link #checkpoint()} is the TLB's check point (a quiescent state, where map changes and flush requests are
 *   honoured), which {@link Rv64Cpu} reaches at least every {@value Rv64Cpu#CHECK_INTERVAL} instructions;</li>
 *   <li>after a store that left the fast path (MMIO among others) the map may have changed under the vCPU (a device
 *   remapped on the write): if the address space's generation moved, a check point follows at once, so the guest's
 *   next access sees the new map, as it would on hardware.</li>
 * </ul>
 * AMOs and store-conditionals are the TLB's atomics ({@link HostTlb#atomicFetchOp}, {@link HostTlb#atomicCmpxchg}):
 * a hit is one atomic instruction on the page's RAM, and what the TLB refuses (MMIO, RAM that may fault) comes back
 * as {@link MemTxResult#ATOMIC_REFUSED} for the CPU's exclusive path, as with the checked TLB.
 *
 * <p>Threading: made on, and confined to, the vCPU thread that uses it (the TLB's and the reader's owner).
 */
public final class HostTlbGuestMemory implements GuestMemory, AutoCloseable {
    private final AddressSpace as;
    private final Rcu.Reader reader;
    private final HostTlb tlb;
    private final CodeProtection codeProtection;
    private boolean inSection;
    /** The address space's generation read at the last check point, before the TLB loaded its view. */
    private long generation;

    /**
     * Registers the calling thread with the RCU domain of {@code as}'s system and makes its TLB.
     *
     * @throws IllegalCallerException if native access is not enabled for guestmem's core (the TLB needs it)
     */
    public HostTlbGuestMemory(AddressSpace as) {
        this.as = as;
        this.reader = as.system().rcu().register();
        try {
            this.tlb = new HostTlb(as, reader);
        } catch (RuntimeException e) {
            reader.close();
            throw e;
        }
        this.codeProtection = CodeProtection.of(as.system());
    }

    /** The TLB the loads, stores and fetches go through. */
    public HostTlb tlb() {
        return tlb;
    }

    @Override
    public boolean enterSection() {
        if (inSection) {
            return false;
        }
        generation = as.generation();
        tlb.begin();
        inSection = true;
        return true;
    }

    @Override
    public void leaveSection() {
        if (inSection) {
            inSection = false;
            tlb.end();
        }
    }

    /** Whether the thread is inside the section now. */
    public boolean inSection() {
        return inSection;
    }

    @Override
    public long checkpoint() {
        // Read first: the view the TLB then loads is this generation's or a newer one, so a page checked against it
        // is checked again when the generation next moves.
        generation = as.generation();
        tlb.checkpoint();
        return generation;
    }

    /** A store left the fast path; if it changed the map (a device remapped on an MMIO write), honour it now. */
    private void afterSlowStore() {
        if (as.generation() != generation) {
            checkpoint();
        }
    }

    @Override
    public long missCount() {
        return tlb.missCount();
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
        final long misses = tlb.missCount();
        tlb.stb(addr, val);
        if (tlb.missCount() != misses) {
            afterSlowStore();
        }
    }

    @Override
    public void stw(long addr, int val) {
        final long misses = tlb.missCount();
        tlb.stwLe(addr, val);
        if (tlb.missCount() != misses) {
            afterSlowStore();
        }
    }

    @Override
    public void stl(long addr, int val) {
        final long misses = tlb.missCount();
        tlb.stlLe(addr, val);
        if (tlb.missCount() != misses) {
            afterSlowStore();
        }
    }

    @Override
    public void stq(long addr, long val) {
        final long misses = tlb.missCount();
        tlb.stqLe(addr, val);
        if (tlb.missCount() != misses) {
            afterSlowStore();
        }
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

    @Override
    public int takeResult() {
        return tlb.takeResult();
    }

    /** Leaves the section if the thread is in it, and unregisters the reader; on the owning thread. */
    @Override
    public void close() {
        leaveSection();
        reader.close();
    }
}
