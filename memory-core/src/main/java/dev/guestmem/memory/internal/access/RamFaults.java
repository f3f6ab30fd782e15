package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.U64;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Collections;
import java.util.Set;
import java.util.WeakHashMap;

import static dev.guestmem.memory.internal.access.ValueLayouts.U16_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U16_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U32_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U32_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U64_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U64_LE;

/**
 * Accesses to guest RAM that may fault, and what a fault becomes. A file (or an unsealed memfd) that another process
 * truncates under a shared or private mapping makes the kernel raise SIGBUS on the pages past the new end (QEMU
 * leaves that to the user: its vCPU dies). Through a {@link MemorySegment} access the JVM survives it and raises
 * {@code InternalError("a fault occurred in an unsafe memory access operation")}; here that becomes
 * {@link MemTxResult#ERROR} for the access (a load reads 0, a store or a copy's bytes are dropped), plus one
 * {@link System.Logger.Level#WARNING} per block naming the block and the guest-physical address. Never an exception
 * in the accessing thread.
 *
 * <p>Which RAM goes through here: blocks whose {@link AbstractRamBlock#mayFault()} is true, as
 * the region caches it (RAM over a {@code FileChannel} mapping, and backends that don't say
 * otherwise). Anonymous memory never faults and keeps the plain accesses of each access family.
 *
 * <h2>Why every access goes through one out-of-line method</h2>
 * HotSpot raises that {@code InternalError} synchronously only where the fault is met outside compiled code. In
 * compiled code the faulting instruction is skipped (a load yields garbage) and the error is installed as an
 * asynchronous exception, thrown at the thread's next safepoint poll: a loop back-edge or a method return, which
 * after inlining can lie anywhere in the caller, past any {@code catch} written around the access (measured on JDK
 * 25: a {@code try}/{@code catch} around a hot {@code get} inlined into a loop catches none of the errors; they
 * surface at the loop's back-edge). A return poll delivers it in the caller, at the call. So {@link #access} does
 * the access in a method of its own that the JIT does not inline (its bytecode is larger than HotSpot's
 * {@code FreqInlineSize}, 325 bytes; {@code RamFaultsTest} checks that it stays so), and each caller's {@code catch}
 * is around that call: whether the error is thrown synchronously inside {@link #access} or at its return poll, it
 * is thrown inside the caller's {@code try}.
 *
 * <p>{@link IllegalStateException} (RAM freed under the access, see {@link MemoryRegion#destroy()}) is not caught
 * here: it reaches the caller's own recovery unchanged.
 *
 * <p>Threading: any thread, without locks; the once-per-block warning is decided under a lock, on the fault path only.
 */
public final class RamFaults {
    private static final System.Logger LOG = System.getLogger("dev.guestmem.memory.RamFaults");

    // What access() does. Loads are LOAD + loadOp(size, bigEndian), stores STORE + the same.
    private static final int LOAD = 0;
    private static final int STORE = 7;
    /** Guest RAM into a buffer. */
    private static final int READ = 14;
    /** A buffer into guest RAM. */
    private static final int WRITE = 15;
    /** A 64-bit pattern repeated (the bytes past the last whole word take its low byte). */
    private static final int FILL = 16;

    /** The host page size a truncation cuts at (the smallest Linux has). */
    private static final long PAGE = 4096;

    /** Blocks whose fault was logged; weak, so that a freed block is forgotten. Guarded by itself. */
    private static final Set<RamBlock> REPORTED = Collections.newSetFromMap(new WeakHashMap<>());

    private RamFaults() {
    }

    // ---------------------------------------------------------------- the access families' entry points

    /**
     * A load of {@code size} bytes (1, 2, 4 or 8) at offset {@code off} of {@code ram}, {@code block}'s memory (or a
     * slice of it), standing for guest-physical {@code addr}.
     *
     * @param result null, or an array whose element 0 receives {@link MemTxResult#OK} or {@link MemTxResult#ERROR}
     * @return the value, zero-extended; 0 when the access faulted
     */
    public static long load(MemorySegment ram, long off, int size, boolean bigEndian, RamBlock block, long addr,
                     int[] result) {
        long v;
        int r = MemTxResult.OK;
        try {
            v = access(LOAD + op(size, bigEndian), ram, off, 0, null, null, 0, 0);
        } catch (InternalError e) {
            v = 0;
            r = fault(block, addr, e);
        }
        if (result != null) {
            result[0] = r;
        }
        return v;
    }

    /** A store of the low {@code size} bytes of {@code value}; see {@link #load}. Returns the result. */
    public static int store(MemorySegment ram, long off, long value, int size, boolean bigEndian, RamBlock block,
                     long addr) {
        try {
            access(STORE + op(size, bigEndian), ram, off, value, null, null, 0, 0);
            return MemTxResult.OK;
        } catch (InternalError e) {
            return fault(block, addr, e);
        }
    }

    /**
     * Copies {@code n} bytes from offset {@code off} of {@code ram} into {@code dstArray}, or else {@code dst}, at
     * {@code dstOff}. When the copy faults it is redone page by page, so that the pages still there are read and
     * only the missing ones read as zeros.
     */
    public static int read(MemorySegment ram, long off, MemorySegment dst, byte[] dstArray, long dstOff, long n,
                    RamBlock block, long addr) {
        return bulk(READ, ram, off, 0, dst, dstArray, dstOff, n, block, addr);
    }

    /**
     * Copies {@code n} bytes from {@code srcArray}, or else {@code src}, into {@code ram}; when the copy faults, the
     * pages still there are written and the bytes of the missing ones dropped.
     */
    public static int write(MemorySegment ram, long off, MemorySegment src, byte[] srcArray, long srcOff, long n,
                     RamBlock block, long addr) {
        return bulk(WRITE, ram, off, 0, src, srcArray, srcOff, n, block, addr);
    }

    /** Fills {@code n} bytes at {@code off} with byte pattern {@code pattern} (8 copies of a byte); see {@link #write}. */
    public static int fill(MemorySegment ram, long off, long pattern, long n, RamBlock block, long addr) {
        return bulk(FILL, ram, off, pattern, null, null, 0, n, block, addr);
    }

    private static int bulk(int op, MemorySegment ram, long off, long value, MemorySegment other, byte[] otherArray,
                            long otherOff, long n, RamBlock block, long addr) {
        try {
            access(op, ram, off, value, other, otherArray, otherOff, n);
            return MemTxResult.OK;
        } catch (InternalError e) {
            return byPage(op, ram, off, value, other, otherArray, otherOff, n, block, addr, e);
        }
    }

    /** A bulk access that faulted, again in host pages: each page that faults again is skipped (read: zeroed). */
    private static int byPage(int op, MemorySegment ram, long off, long value, MemorySegment other,
                              byte[] otherArray, long otherOff, long n, RamBlock block, long addr, InternalError e) {
        long done = 0;
        while (done < n) {
            long piece = Math.min(n - done, PAGE - ((ram.address() + off + done) & (PAGE - 1)));
            try {
                access(op, ram, off + done, value, other, otherArray, otherOff + done, piece);
            } catch (InternalError again) {
                if (op == READ) {
                    if (otherArray != null) {
                        Arrays.fill(otherArray, (int) (otherOff + done), (int) (otherOff + done + piece), (byte) 0);
                    } else {
                        other.asSlice(otherOff + done, piece).fill((byte) 0);
                    }
                }
            }
            done += piece;
        }
        return fault(block, addr, e);
    }

    // ---------------------------------------------------------------- the access

    /** {@code 0} for bytes, then little- and big-endian 16, 32 and 64 bits. */
    private static int op(int size, boolean bigEndian) {
        return size == 1 ? 0 : 2 * Integer.numberOfTrailingZeros(size) - (bigEndian ? 0 : 1);
    }

    /**
     * Every access to RAM that may fault, in one method that stays out of line (see the class comment); the caller
     * catches around the call. Loads return the value zero-extended, everything else 0.
     *
     * @param other      the buffer of a {@link #READ} or {@link #WRITE}, when {@code otherArray} is null
     * @param otherArray the array buffer of a {@link #READ} or {@link #WRITE}, or null
     */
    private static long access(int op, MemorySegment ram, long off, long value, MemorySegment other,
                               byte[] otherArray, long otherOff, long len) {
        switch (op) {
            case LOAD -> {
                return ram.get(ValueLayout.JAVA_BYTE, off) & 0xffL;
            }
            case LOAD + 1 -> {
                return ram.get(U16_LE, off) & 0xffffL;
            }
            case LOAD + 2 -> {
                return ram.get(U16_BE, off) & 0xffffL;
            }
            case LOAD + 3 -> {
                return ram.get(U32_LE, off) & 0xffff_ffffL;
            }
            case LOAD + 4 -> {
                return ram.get(U32_BE, off) & 0xffff_ffffL;
            }
            case LOAD + 5 -> {
                return ram.get(U64_LE, off);
            }
            case LOAD + 6 -> {
                return ram.get(U64_BE, off);
            }
            case STORE -> ram.set(ValueLayout.JAVA_BYTE, off, (byte) value);
            case STORE + 1 -> ram.set(U16_LE, off, (short) value);
            case STORE + 2 -> ram.set(U16_BE, off, (short) value);
            case STORE + 3 -> ram.set(U32_LE, off, (int) value);
            case STORE + 4 -> ram.set(U32_BE, off, (int) value);
            case STORE + 5 -> ram.set(U64_LE, off, value);
            case STORE + 6 -> ram.set(U64_BE, off, value);
            case READ -> {
                if (otherArray != null) {
                    MemorySegment.copy(ram, ValueLayout.JAVA_BYTE, off, otherArray, (int) otherOff, (int) len);
                } else {
                    MemorySegment.copy(ram, off, other, otherOff, len);
                }
            }
            case WRITE -> {
                if (otherArray != null) {
                    MemorySegment.copy(otherArray, (int) otherOff, ram, ValueLayout.JAVA_BYTE, off, (int) len);
                } else {
                    MemorySegment.copy(other, otherOff, ram, off, len);
                }
            }
            case FILL -> {
                long i = 0;
                for (; i + 8 <= len; i += 8) {
                    ram.set(U64_LE, off + i, value);
                }
                for (; i < len; i++) {
                    ram.set(ValueLayout.JAVA_BYTE, off + i, (byte) value);
                }
            }
            default -> throw new IllegalArgumentException("op=" + op);
        }
        return 0;
    }

    // ---------------------------------------------------------------- the fault

    /**
     * What a fault touching {@code block} at guest-physical {@code addr} becomes: {@link MemTxResult#ERROR}, and a
     * warning the first time the block faults.
     */
    public static int fault(RamBlock block, long addr, InternalError e) {
        boolean first;
        synchronized (REPORTED) {
            first = REPORTED.add(block);
        }
        if (first) {
            LOG.log(System.Logger.Level.WARNING, "block=" + block.idstr() + " addr=" + U64.hex(addr)
                    + ": guest RAM faulted (" + e.getMessage() + "); its file was probably truncated by another"
                    + " process. Accesses to the missing pages read 0, drop writes and return MemTxResult.ERROR;"
                    + " further faults of this block are not logged");
        }
        return MemTxResult.ERROR;
    }

    /** Whether a fault of {@code block} was logged (for tests). */
    public static boolean reported(RamBlock block) {
        synchronized (REPORTED) {
            return REPORTED.contains(block);
        }
    }
}
