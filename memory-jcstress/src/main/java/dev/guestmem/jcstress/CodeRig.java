package dev.guestmem.jcstress;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * RAM that the CODE client logs (a JIT emulator's), mapped at 0 in an address space of its own, with a soft TLB per
 * vCPU thread, for the tests of a TLB's stores against {@link CodeProtection#protect}: each slot owns
 * {@code pagesPerSlot} pages, and a store reported at byte {@code reportedOffset} of a slot's pages marks the slot in
 * {@link #reported}. Where membarrier is installed (the default run), those TLBs fill entries of this RAM without
 * their entry locks; the fence the run expects is checked first ({@link DirtyRig#checkFence}).
 *
 * <p>Threading: every method from any thread; one slot's state from one thread at a time.
 */
final class CodeRig {
    static final long PAGE = 4096;

    final MemoryRegion ram;
    /** The RAM's bytes, read and reset directly (no mark, no report). */
    final MemorySegment bytes;
    final CodeProtection code;
    /** The ram_addr of guest-physical 0. */
    final long ramAddr0;
    /** Per slot: 1 once its store at {@code reportedOffset} was reported. */
    final AtomicIntegerArray reported = new AtomicIntegerArray(Slots.COUNT);
    /** Each vCPU thread's TLB, as each QEMU vCPU has its own. */
    final ThreadLocal<SoftTlb> tlbs;

    /**
     * @param pagesPerSlot   pages each slot owns, from guest-physical {@code slot * pagesPerSlot * PAGE}
     * @param reportedOffset the byte of a slot's pages whose report counts
     * @param tlbEntries     entries of each thread's TLB, 0 for the default
     */
    CodeRig(int pagesPerSlot, long reportedOffset, int tlbEntries) {
        DirtyRig.checkFence();
        MemorySystem system = new MemorySystem();
        long slotBytes = pagesPerSlot * PAGE;
        ram = system.ram("ram", Slots.COUNT * slotBytes);
        bytes = ram.ramSegment();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        ram.setLog(true, DirtyMemoryClient.CODE);
        root.addSubregion(0, ram);
        AddressSpace as = system.addressSpace("memory", root);
        code = CodeProtection.of(system);
        ramAddr0 = ram.ramBlock().offset();
        tlbs = ThreadLocal.withInitial(() -> tlbEntries == 0 ? new SoftTlb(as)
                : new SoftTlb(as, tlbEntries, MemTxAttrs.UNSPECIFIED));
        code.addListener((ramAddr, length) -> {
            long offset = ramAddr - ramAddr0;
            if (offset % slotBytes == reportedOffset) {
                reported.set((int) (offset / slotBytes), 1);
            }
        });
    }
}
