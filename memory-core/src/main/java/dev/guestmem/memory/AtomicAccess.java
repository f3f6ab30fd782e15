package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.AccessPath;
import dev.guestmem.memory.internal.access.DirectWrites;
import dev.guestmem.memory.internal.access.RamFaults;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

import static dev.guestmem.memory.internal.access.DirectAccess.rangeWritesDirect;
import static dev.guestmem.memory.internal.access.DirectAccess.regionWritesDirect;

/**
 * Atomic read-modify-writes of guest RAM, behind {@link AddressSpace#atomicFetchOp}, {@link AddressSpace#atomicCmpxchg}
 * and the same methods of {@link SoftTlb} and {@link HostTlb}: QEMU's {@code atomic_mmu_lookup} (find the host memory
 * of a naturally aligned word that a store may write directly, or give up) followed by one of its {@code cpu_atomic_*}
 * operations on that memory.
 *
 * <h2>What is done atomically, and what is refused</h2>
 * An atomic of 4 or 8 bytes at a naturally aligned guest-physical address whose flat range is RAM that a store would
 * write directly (for the address space: the region is RAM not itself read-only, or a RAM device; for a soft TLB: the
 * same, and not read-only through the mapping either) is one atomic instruction on the RAM block's segment, through a
 * {@link VarHandle} of {@link ValueLayout#JAVA_INT} or {@link ValueLayout#JAVA_LONG} (compare-and-exchange, get-and-set,
 * get-and-add, get-and-bitwise-and/or/xor; minimum and maximum, and additions in the byte order that is not the
 * host's, as a compare-and-exchange loop). Every access mode is volatile: an atomic is ordered with every other atomic
 * and with the volatile and synchronized accesses of the threads involved, which is what acquire and release
 * semantics of a guest's atomics need.
 *
 * <p>Everything else is refused with {@link MemTxResult#ATOMIC_REFUSED}, nothing read, nothing written, no device
 * called: a misaligned address (which is also the only way a 4- or 8-byte access can cross a page), MMIO, ROM, a ROM
 * device, RAM read-only through the mapping (for the TLB), a hole, an IOMMU region (not followed), RAM whose host
 * address is not aligned for the size (an alias at an odd offset into its target), and RAM that may fault
 * ({@link RamFaults}: a file another process may truncate). The last is the JVM's limit, not QEMU's: HotSpot guards
 * its plain unsafe loads and stores against SIGBUS (which {@link RamFaults} turns into results) but not its atomics:
 * a compare-and-exchange that is not compiled runs as a call into the VM that dies of the signal (seen here: SIGBUS in
 * {@code Unsafe_CompareAndExchangeLong} on a truncated file mapping), and a get-and-bitwise-or throws
 * {@link InternalError} out of the access (JDK 25.0.3). QEMU cannot do the others atomically
 * either: its TCG leaves the translated block ({@code cpu_loop_exit_atomic}) and executes the instruction again as a
 * plain load and store with every other vCPU stopped; an emulator does the same, or raises the guest's own fault (a
 * misaligned atomic is an exception on most architectures). The refusal is a result code, not an exception, because
 * it is a guest-visible outcome the emulator handles.
 *
 * <h2>Dirty memory and translated code</h2>
 * An atomic that wrote (every fetch-and-op and exchange, a compare-and-exchange that matched) is marked dirty for
 * every client that logs its flat range and reported to {@link CodeProtection} if its page is protected, exactly as a
 * store of the same bytes through the same path, and after the bytes landed (see {@link CodeProtection} for why
 * reports follow the store). A compare-and-exchange that did not match wrote nothing and marks nothing.
 *
 * <h2>Plain stores are atomic against these</h2>
 * The plain loads and stores of every access path (the TLBs' hits, the address space's ld/st) of an aligned 4-
 * or 8-byte word are one memory access of that width on the host (x86-64, where memory-offheap runs, and every 64-bit
 * host the JVM supports), so an atomic sees such a store entirely or not at all, and a store that lands between an
 * atomic's load and its store is never lost: the atomic instruction (or the compare-and-exchange ending a loop) fails
 * and retries on the stored value. Unlike a lock around a load and a store, plain stores need no discipline.
 *
 * <p>Threading: any thread, without locks; nothing is allocated.
 */
final class AtomicAccess {
    /** The operation code of compare-and-exchange; the fetch-and-ops use their {@link AtomicOp#ordinal()}. */
    static final int CMPXCHG = -1;
    // The fetch-and-ops with an instruction of their own, by ordinal (checked by the static initializer).
    private static final int XCHG = 0;
    private static final int FETCH_ADD = 1;
    private static final int FETCH_AND = 2;
    private static final int FETCH_OR = 3;
    private static final int FETCH_XOR = 4;

    private static final VarHandle I32 = ValueLayout.JAVA_INT.varHandle();
    private static final VarHandle I64 = ValueLayout.JAVA_LONG.varHandle();
    /** Whether big-endian guest values are in the host's order (then little-endian ones are swapped). */
    private static final boolean HOST_BIG_ENDIAN = ByteOrder.nativeOrder() == ByteOrder.BIG_ENDIAN;
    private static final AtomicOp[] OPS = AtomicOp.values();

    static {
        if (AtomicOp.XCHG.ordinal() != XCHG || AtomicOp.FETCH_ADD.ordinal() != FETCH_ADD
                || AtomicOp.FETCH_AND.ordinal() != FETCH_AND || AtomicOp.FETCH_OR.ordinal() != FETCH_OR
                || AtomicOp.FETCH_XOR.ordinal() != FETCH_XOR) {
            throw new ExceptionInInitializerError("AtomicOp's order changed: update AtomicAccess's codes");
        }
    }

    private AtomicAccess() {
    }

    /** Throws unless {@code size} is 4 or 8: a programming error of the caller. */
    static void checkSize(long addr, int size) {
        if (size != 4 && size != 8) {
            throw new IllegalArgumentException("addr=" + U64.hex(addr) + " size=" + size
                    + ": atomics are of 4 or 8 bytes");
        }
    }

    /**
     * One atomic through address-space dispatch {@code d} of {@code as} (the view the caller loaded): operation
     * {@code op} ({@link #CMPXCHG} or an {@link AtomicOp}'s ordinal) at guest-physical {@code addr}.
     *
     * @param a        the operand, or the expected value of a compare-and-exchange
     * @param b        the desired value of a compare-and-exchange, else unused
     * @param cpuStore whether a soft TLB asks: RAM read-only through the mapping is then refused, as a CPU store to it
     *                 is discarded
     * @param result   null, or an array whose element 0 receives the {@link MemTxResult}
     * @return the old value, zero-extended; 0 when refused
     */
    static long atomic(AddressSpace as, AddressSpaceDispatch d, int op, long addr, long a, long b, int size,
                       boolean bigEndian, boolean cpuStore, int[] result) {
        checkSize(addr, size);
        if ((addr & (size - 1)) != 0) {
            return done(result, MemTxResult.ATOMIC_REFUSED, 0);
        }
        while (true) {
            final FlatRange fr = d.flatRange(d.sectionIndex(addr));
            // Aligned and at most 8 bytes: it stays in one page. A range may still end inside the word.
            if (fr == null || !(cpuStore ? rangeWritesDirect(fr) : regionWritesDirect(fr)) || fr.region().ramMayFault
                    || Long.compareUnsigned(size - 1, fr.last() - addr) > 0) {
                return done(result, MemTxResult.ATOMIC_REFUSED, 0);
            }
            final MemoryRegion mr = fr.region();
            final MemorySegment ram = mr.ramBlock.hostSegment();
            final long off = fr.offsetInRegion() + (addr - fr.start());
            if (!hostAligned(ram, off, size)) {
                return done(result, MemTxResult.ATOMIC_REFUSED, 0);
            }
            final long old;
            try {
                old = access(op, ram, off, a, b, size, bigEndian);
            } catch (IllegalStateException e) {
                d = AccessPath.afterRelease(as, d, fr, e); // freed under the access: again, on the current view
                continue;
            }
            if (fr.dirtyLogMask() != 0 && wrote(op, old, a, size)) {
                DirectWrites.invalidateAndSetDirty(mr, fr.dirtyLogMask(), off, size);
            }
            return done(result, MemTxResult.OK, old);
        }
    }

    private static long done(int[] result, int r, long value) {
        if (result != null) {
            result[0] = r;
        }
        return value;
    }

    /** Whether an atomic that returned {@code old} stored: all but a compare-and-exchange that did not match. */
    static boolean wrote(int op, long old, long expected, int size) {
        return op != CMPXCHG || old == (size == 4 ? expected & 0xffff_ffffL : expected);
    }

    /**
     * Whether {@code size} bytes at {@code off} of {@code ram} may be accessed atomically: the host address is a
     * multiple of the size (native memory), or the heap array behind the segment is aligned for it.
     */
    static boolean hostAligned(MemorySegment ram, long off, int size) {
        return ((ram.address() + off) & (size - 1)) == 0 && (ram.isNative() || ram.maxByteAlignment() >= size);
    }

    /**
     * The atomic itself on {@code size} bytes at {@code off} of {@code ram}, an aligned offset of memory that does not
     * fault: returns the old value zero-extended.
     */
    static long access(int op, MemorySegment ram, long off, long a, long b, int size, boolean bigEndian) {
        final boolean swap = bigEndian != HOST_BIG_ENDIAN;
        return size == 8 ? access64(op, ram, off, a, b, swap) : access32(op, ram, off, (int) a, (int) b, swap);
    }

    private static long access64(int op, MemorySegment ram, long off, long a, long b, boolean swap) {
        final long x = swap ? Long.reverseBytes(a) : a;
        switch (op) {
            case CMPXCHG -> {
                final long y = swap ? Long.reverseBytes(b) : b;
                final long w = (long) I64.compareAndExchange(ram, off, x, y);
                return swap ? Long.reverseBytes(w) : w;
            }
            case XCHG -> {
                final long w = (long) I64.getAndSet(ram, off, x);
                return swap ? Long.reverseBytes(w) : w;
            }
            case FETCH_ADD -> { // carries run the other way in the swapped order: the loop below
                if (!swap) {
                    return (long) I64.getAndAdd(ram, off, x);
                }
            }
            case FETCH_AND -> { // and, or, xor: byte swapping commutes with them
                final long w = (long) I64.getAndBitwiseAnd(ram, off, x);
                return swap ? Long.reverseBytes(w) : w;
            }
            case FETCH_OR -> {
                final long w = (long) I64.getAndBitwiseOr(ram, off, x);
                return swap ? Long.reverseBytes(w) : w;
            }
            case FETCH_XOR -> {
                final long w = (long) I64.getAndBitwiseXor(ram, off, x);
                return swap ? Long.reverseBytes(w) : w;
            }
            default -> {
                // the minimums and maximums: the loop below
            }
        }
        final AtomicOp f = OPS[op];
        long raw = (long) I64.getVolatile(ram, off);
        while (true) {
            final long old = swap ? Long.reverseBytes(raw) : raw;
            final long v = f.apply(old, a, 8);
            // Fails, and is retried on the value found, when anyone stored in between (an atomic or a plain store).
            final long w = (long) I64.compareAndExchange(ram, off, raw, swap ? Long.reverseBytes(v) : v);
            if (w == raw) {
                return old;
            }
            raw = w;
        }
    }

    private static long access32(int op, MemorySegment ram, long off, int a, int b, boolean swap) {
        final int x = swap ? Integer.reverseBytes(a) : a;
        switch (op) {
            case CMPXCHG -> {
                final int y = swap ? Integer.reverseBytes(b) : b;
                final int w = (int) I32.compareAndExchange(ram, off, x, y);
                return (swap ? Integer.reverseBytes(w) : w) & 0xffff_ffffL;
            }
            case XCHG -> {
                final int w = (int) I32.getAndSet(ram, off, x);
                return (swap ? Integer.reverseBytes(w) : w) & 0xffff_ffffL;
            }
            case FETCH_ADD -> {
                if (!swap) {
                    return (int) I32.getAndAdd(ram, off, x) & 0xffff_ffffL;
                }
            }
            case FETCH_AND -> {
                final int w = (int) I32.getAndBitwiseAnd(ram, off, x);
                return (swap ? Integer.reverseBytes(w) : w) & 0xffff_ffffL;
            }
            case FETCH_OR -> {
                final int w = (int) I32.getAndBitwiseOr(ram, off, x);
                return (swap ? Integer.reverseBytes(w) : w) & 0xffff_ffffL;
            }
            case FETCH_XOR -> {
                final int w = (int) I32.getAndBitwiseXor(ram, off, x);
                return (swap ? Integer.reverseBytes(w) : w) & 0xffff_ffffL;
            }
            default -> {
                // the minimums and maximums: the loop below
            }
        }
        final AtomicOp f = OPS[op];
        int raw = (int) I32.getVolatile(ram, off);
        while (true) {
            final int old = swap ? Integer.reverseBytes(raw) : raw;
            final int v = (int) f.apply(old, a, 4);
            final int w = (int) I32.compareAndExchange(ram, off, raw, swap ? Integer.reverseBytes(v) : v);
            if (w == raw) {
                return old & 0xffff_ffffL;
            }
            raw = w;
        }
    }
}
