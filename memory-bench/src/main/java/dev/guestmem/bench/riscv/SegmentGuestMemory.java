package dev.guestmem.bench.riscv;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Guest memory as an emulator without guestmem would have it: one {@link MemorySegment} of RAM at a fixed
 * guest-physical base, accessed directly, and everything outside it (MMIO, the boot flash) handed to an
 * {@link AddressSpace}. The limit the {@link TlbGuestMemory} is measured against: no view check, no TLB, no dirty
 * tracking; atomics are {@link VarHandle} operations on the segment (a host on which little-endian is the native
 * order, as the interpreter's guests are). Code writes are not reported ({@link #codeProtection()} is {@code null}), so the CPU drops its decoded
 * instructions at {@code fence.i}; another hart's code writes are not seen, which the guest programs never do.
 *
 * <p>Threading: confined to one vCPU thread; the segment may be shared with other vCPUs.
 */
public final class SegmentGuestMemory implements GuestMemory {
    private static final ValueLayout.OfShort U16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final VarHandle I32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final VarHandle I64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final MemorySegment ram;
    /** Guest-physical address of the segment's first byte. */
    private final long base;
    /** The segment's size in bytes minus 8: an offset at or below it can be accessed with any size. */
    private final long lastFullOffset;
    private final AddressSpace others;
    private final int[] slowResult = new int[1];
    private int result = MemTxResult.OK;
    private long slowAccesses;

    public SegmentGuestMemory(MemorySegment ram, long base, AddressSpace others) {
        if (ram.byteSize() < 8) {
            throw new IllegalArgumentException("size=" + ram.byteSize() + ": RAM of at least 8 bytes");
        }
        this.ram = ram;
        this.base = base;
        this.lastFullOffset = ram.byteSize() - 8;
        this.others = others;
    }

    /** Whether {@code addr} is in the segment with 8 bytes to spare: the fast case for every access size. */
    private boolean inRam(long addr) {
        return Long.compareUnsigned(addr - base, lastFullOffset) <= 0;
    }

    private long slowLoad(long value) {
        slowAccesses++;
        result |= slowResult[0];
        return value;
    }

    private void slowStore(int storeResult) {
        slowAccesses++;
        result |= storeResult;
    }

    @Override
    public int ldub(long addr) {
        return inRam(addr) ? ram.get(ValueLayout.JAVA_BYTE, addr - base) & 0xff
                : (int) slowLoad(others.ldub(addr, MemTxAttrs.UNSPECIFIED, slowResult));
    }

    @Override
    public int lduw(long addr) {
        return inRam(addr) ? ram.get(U16, addr - base) & 0xffff
                : (int) slowLoad(others.lduwLe(addr, MemTxAttrs.UNSPECIFIED, slowResult));
    }

    @Override
    public int ldl(long addr) {
        return inRam(addr) ? ram.get(U32, addr - base)
                : (int) slowLoad(others.ldlLe(addr, MemTxAttrs.UNSPECIFIED, slowResult));
    }

    @Override
    public long ldq(long addr) {
        return inRam(addr) ? ram.get(U64, addr - base)
                : slowLoad(others.ldqLe(addr, MemTxAttrs.UNSPECIFIED, slowResult));
    }

    @Override
    public void stb(long addr, int val) {
        if (inRam(addr)) {
            ram.set(ValueLayout.JAVA_BYTE, addr - base, (byte) val);
        } else {
            slowStore(others.stb(addr, val, MemTxAttrs.UNSPECIFIED));
        }
    }

    @Override
    public void stw(long addr, int val) {
        if (inRam(addr)) {
            ram.set(U16, addr - base, (short) val);
        } else {
            slowStore(others.stwLe(addr, val, MemTxAttrs.UNSPECIFIED));
        }
    }

    @Override
    public void stl(long addr, int val) {
        if (inRam(addr)) {
            ram.set(U32, addr - base, val);
        } else {
            slowStore(others.stlLe(addr, val, MemTxAttrs.UNSPECIFIED));
        }
    }

    @Override
    public void stq(long addr, long val) {
        if (inRam(addr)) {
            ram.set(U64, addr - base, val);
        } else {
            slowStore(others.stqLe(addr, val, MemTxAttrs.UNSPECIFIED));
        }
    }

    @Override
    public long atomicFetchOp(AtomicOp op, long addr, long operand, int size) {
        if (!inRam(addr) || (addr & (size - 1)) != 0) {
            return slowLoad(others.atomicFetchOp(op, addr, operand, size, false, slowResult));
        }
        final long off = addr - base;
        if (size == 4) {
            final int x = (int) operand;
            return switch (op) {
                case XCHG -> (int) I32.getAndSet(ram, off, x);
                case FETCH_ADD -> (int) I32.getAndAdd(ram, off, x);
                case FETCH_AND -> (int) I32.getAndBitwiseAnd(ram, off, x);
                case FETCH_OR -> (int) I32.getAndBitwiseOr(ram, off, x);
                case FETCH_XOR -> (int) I32.getAndBitwiseXor(ram, off, x);
                default -> {
                    int old = (int) I32.getVolatile(ram, off);
                    while (!I32.compareAndSet(ram, off, old, (int) op.apply(old, x, 4))) {
                        old = (int) I32.getVolatile(ram, off);
                    }
                    yield old;
                }
            } & 0xffff_ffffL;
        }
        return switch (op) {
            case XCHG -> (long) I64.getAndSet(ram, off, operand);
            case FETCH_ADD -> (long) I64.getAndAdd(ram, off, operand);
            case FETCH_AND -> (long) I64.getAndBitwiseAnd(ram, off, operand);
            case FETCH_OR -> (long) I64.getAndBitwiseOr(ram, off, operand);
            case FETCH_XOR -> (long) I64.getAndBitwiseXor(ram, off, operand);
            default -> {
                long old = (long) I64.getVolatile(ram, off);
                while (!I64.compareAndSet(ram, off, old, op.apply(old, operand, 8))) {
                    old = (long) I64.getVolatile(ram, off);
                }
                yield old;
            }
        };
    }

    @Override
    public long atomicCmpxchg(long addr, long expected, long desired, int size) {
        if (!inRam(addr) || (addr & (size - 1)) != 0) {
            return slowLoad(others.atomicCmpxchg(addr, expected, desired, size, false, slowResult));
        }
        return size == 4 ? (int) I32.compareAndExchange(ram, addr - base, (int) expected, (int) desired) & 0xffff_ffffL
                : (long) I64.compareAndExchange(ram, addr - base, expected, desired);
    }

    @Override
    public int fetch(long addr) {
        return ldl(addr);
    }

    /** Every page may be cached: the page's guest-physical address is its key (no reports ever name it). */
    @Override
    public long protectCode(long pageAddr) {
        return pageAddr;
    }

    @Override
    public CodeProtection codeProtection() {
        return null;
    }

    /** The RAM segment never moves; what is outside it is the address space's. */
    @Override
    public long checkpoint() {
        return others.generation();
    }

    /** Accesses outside the RAM segment, which went to the address space. */
    @Override
    public long missCount() {
        return slowAccesses;
    }

    @Override
    public int takeResult() {
        int r = result;
        result = MemTxResult.OK;
        return r;
    }
}
