package dev.guestmem.jcstress;

import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.AsymmetricFence;
import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.DirtySnapshot;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;

/**
 * The RAM of the dirty-memory tests: one region logged by MIGRATION, mapped at guest-physical 0, lazily zeroed
 * anonymous memory (memory-offheap's {@code memory-backend-ram}) so that the pages no test touches cost nothing. Slot
 * {@code k} is the first page of the k-th run of 64 pages: a take swaps whole 64-page bitmap words (as QEMU's
 * {@code cpu_physical_memory_snapshot_and_clear_dirty} does), so each slot owns a word and one state's take never
 * takes another's bit.
 *
 * <p>The system property {@code guestmem.jcstress.fence}, when set, names the fence the run must have installed (the
 * start of {@link AsymmetricFence#name()}: {@code membarrier} or {@code fence}); a run under the other one fails when
 * the rig is first used instead of passing for the wrong reason.
 *
 * <p>Threading: every method from any thread; one slot's methods from one thread at a time (its state's actors and
 * arbiter, which jcstress orders).
 */
final class DirtyRig {
    static final long PAGE = 4096;
    /** Pages between slots: one bitmap word's worth. */
    private static final long PAGES_PER_SLOT = 64;
    private static final DirtyMemoryClient MIGRATION = DirtyMemoryClient.MIGRATION;

    static final DirtyRig INSTANCE = new DirtyRig();

    final AddressSpace as;
    private final MemoryRegion ram;
    private final DirtyBitmap bitmap;
    private final long ramAddr0;
    final Slots slots = new Slots();
    /** Each vCPU thread's TLB, with an entry for every page of the RAM so that no slot evicts another's. */
    private final ThreadLocal<SoftTlb> tlbs;

    /**
     * Throws when {@code guestmem.jcstress.fence} names another fence than the installed one; every test whose claim
     * depends on the fence calls it before its first trial.
     */
    static void checkFence() {
        String expected = System.getProperty("guestmem.jcstress.fence");
        String installed = AsymmetricFence.installed().name();
        if (expected != null && !installed.startsWith(expected)) {
            throw new IllegalStateException("guestmem.jcstress.fence=" + expected + " installed=" + installed);
        }
    }

    private DirtyRig() {
        checkFence();
        MemorySystem m = new MemorySystem(HostMemoryBackend.anonymous().build());
        MemoryRegion root = m.container("root", U64.SIZE_2_64);
        ram = m.ram("ram", Slots.COUNT * PAGES_PER_SLOT * PAGE);
        ram.setLog(true, MIGRATION);
        root.addSubregion(0, ram);
        as = m.addressSpace("memory", root);
        ramAddr0 = ram.ramBlock().offset();
        bitmap = m.dirtyBitmap(MIGRATION);
        tlbs = ThreadLocal.withInitial(
                () -> new SoftTlb(as, (int) (Slots.COUNT * PAGES_PER_SLOT), MemTxAttrs.UNSPECIFIED));
    }

    /** The calling thread's soft TLB over the rig's address space. */
    SoftTlb tlb() {
        return tlbs.get();
    }

    /** The guest-physical address (and region offset) of {@code slot}'s page. */
    static long address(int slot) {
        return slot * PAGES_PER_SLOT * PAGE;
    }

    /**
     * Takes and clears the MIGRATION bits of the slot's page into {@code into} ({@link DirtyBitmap#snapshotAndClear},
     * with its heavy fence); whether the page's bit was set. The bitmap's own take rather than the region's
     * ({@code MemoryRegion.snapshotAndClearDirty}, which wraps it in listener calls): the copy then reads the page
     * right after the fence, as a migration's copy loop does, so a missing fence leaves the race open long enough to
     * be seen.
     */
    boolean take(long addr, DirtySnapshot into) {
        DirtySnapshot s = bitmap.snapshotAndClear(ramAddr0 + addr, PAGE, into);
        return s.getDirty(ramAddr0 + addr, PAGE);
    }

    /** The word at {@code addr} as whoever copies the page after a take reads it: straight from the RAM. */
    long read(long addr) {
        return ram.ramSegment().get(JAVA_LONG_UNALIGNED, addr);
    }

    /** Writes {@code value} at {@code addr} behind the dirty log's back (no mark): for setting a trial up. */
    void writeUnlogged(long addr, long value) {
        ram.ramSegment().set(JAVA_LONG_UNALIGNED, addr, value);
    }

    /** Marks the slot's page dirty, as a store before the trial would have. */
    void markDirty(long addr) {
        ram.setDirty(addr, PAGE);
    }
}
