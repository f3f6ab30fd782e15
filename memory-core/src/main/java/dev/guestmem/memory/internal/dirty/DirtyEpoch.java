package dev.guestmem.memory.internal.dirty;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The dirty epoch: a count, one for the JVM, of the takes of dirty bits that took something (every test-and-clear
 * or snapshot-and-clear of every {@link dev.guestmem.memory.DirtyBitmap}, whatever its client or system), advanced
 * by each such take after its swaps and before its heavy fence. It is how a take re-arms the soft TLBs' fast write
 * entries of logged pages, QEMU's {@code tlb_reset_dirty} with {@code TLB_NOTDIRTY}, without writing to them: a TLB
 * makes a store to a VGA- or MIGRATION-logged page fast only after marking the page in the epoch it read before the
 * mark, and every fast store to such a page reads the epoch again <em>after</em> storing (the entry's tag says it is
 * one; stores to other pages never read it); when it moved, the TLB's owner marks the page it just stored to and sets
 * {@code NOTDIRTY} on all of its logged entries again, on its own thread.
 *
 * <p>Why that loses no store: a take swaps a page's bit, advances the epoch, then calls
 * {@link dev.guestmem.memory.AsymmetricFence#heavy()}, whose barrier lands on the storing thread somewhere in its
 * program order. If the store's epoch read comes after that barrier it sees the new epoch, and the page is marked
 * again after the store; if it comes before, the store came before the barrier too, so it is visible to whoever reads
 * the page once the take returned. This needs the read after the store in the compiled code (a plain read of native
 * memory, see {@link #current()}) and the process-wide barrier: where only the fallback fence is installed
 * ({@link #REARMING} false), the TLBs keep no write entry for logged pages, as before, and fold the read away.
 *
 * <p>Threading: any thread; {@link #advance()} is an atomic increment, the reads are plain or acquire.
 */
public final class DirtyEpoch {
    /**
     * Whether TLBs may keep fast write entries for logged pages: an asymmetric fence with a process-wide heavy half is
     * installed. A constant the JIT folds.
     */
    public static final boolean REARMING = !MarkFence.FENCE_PER_MARK;

    /**
     * The epoch's cell: one 64-bit word of native memory, on a cache line of its own. Native, not a field, so that the
     * fast store's plain read of it is a raw-memory load like the guest store before it: HotSpot keeps a raw load
     * after a raw store it cannot tell apart (the store's address is computed), and never hoists it out of a loop
     * that stores to raw memory, with no compiler barrier that would make the rest of the hit path reload its fields.
     */
    private static final MemorySegment CELL = Arena.global().allocate(64, 64);
    private static final VarHandle EPOCH = MethodHandles.insertCoordinates(ValueLayout.JAVA_LONG.varHandle(), 1, 0L);

    private DirtyEpoch() {
    }

    /**
     * The epoch, read plainly from native memory: the fast store's check, after its store to guest RAM (native memory
     * too, so the JIT keeps this read after it; the reason is at the cell, in the source). The take's heavy fence,
     * not this read, orders it against the take. Callers must have stored to a native segment just before.
     */
    public static long current() {
        return CELL.get(ValueLayout.JAVA_LONG, 0);
    }

    /**
     * The epoch, read with acquire: before a TLB marks a page and makes its entry fast. A take that advanced the epoch
     * to the value read here swapped its bits before: the marks that follow see the swapped words, not older ones.
     */
    public static long acquire() {
        return (long) EPOCH.getAcquire(CELL);
    }

    /** Advances the epoch: a take that took bits, after its swaps and before its heavy fence. */
    static void advance() {
        // Volatile read-modify-write: ordered after the take's swaps and before its heavy fence's barriers.
        EPOCH.getAndAdd(CELL, 1L);
    }
}
