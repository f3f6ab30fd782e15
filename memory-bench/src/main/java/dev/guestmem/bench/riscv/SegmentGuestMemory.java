package dev.guestmem.bench.riscv;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Guest memory as an emulator without guestmem would have it: one {@link MemorySegment} of RAM at a fixed
 * guest-physical base, accessed directly, and everything outside it (MMIO, the boot flash) handed to an
 * {@link AddressSpace}. The limit the {@link TlbGuestMemory} is measured against: no view check, no TLB, no dirty
 * tracking. Code writes are not reported ({@link #codeProtection()} is {@code null}), so the CPU drops its decoded
 * instructions at {@code fence.i}; another hart's code writes are not seen, which the guest programs never do.
 *
 * <p>Threading: confined to one vCPU thread; the segment may be shared with other vCPUs.
 */
public final class SegmentGuestMemory implements GuestMemory {
    private static final ValueLayout.OfShort U16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment ram;
    /** Guest-physical address of the segment's first byte. */
    private final long base;
    /** The segment's size in bytes minus 8: an offset at or below it can be accessed with any size. */
    private final long lastFullOffset;
    private final AddressSpace others;
    private final int[] slowResult = new int[1];
    private int result = MemTxResult.OK;

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
        result |= slowResult[0];
        return value;
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
            result |= others.stb(addr, val, MemTxAttrs.UNSPECIFIED);
        }
    }

    @Override
    public void stw(long addr, int val) {
        if (inRam(addr)) {
            ram.set(U16, addr - base, (short) val);
        } else {
            result |= others.stwLe(addr, val, MemTxAttrs.UNSPECIFIED);
        }
    }

    @Override
    public void stl(long addr, int val) {
        if (inRam(addr)) {
            ram.set(U32, addr - base, val);
        } else {
            result |= others.stlLe(addr, val, MemTxAttrs.UNSPECIFIED);
        }
    }

    @Override
    public void stq(long addr, long val) {
        if (inRam(addr)) {
            ram.set(U64, addr - base, val);
        } else {
            result |= others.stqLe(addr, val, MemTxAttrs.UNSPECIFIED);
        }
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

    @Override
    public int takeResult() {
        int r = result;
        result = MemTxResult.OK;
        return r;
    }
}
