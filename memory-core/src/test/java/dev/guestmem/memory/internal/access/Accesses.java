package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegionCache;
import dev.guestmem.memory.MemoryRegionOps;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The tests' loads and stores by width (1, 2, 4 or 8 bytes) and byte order: through an {@link AddressSpace}, through a
 * {@link MemoryRegionCache}, and on a {@link ByteBuffer} model, the oracle for RAM byte order. A 4-byte load is
 * returned zero-extended, as the model returns it. Shared by the tests of the API and of the access path, hence here,
 * in a package that is not exported.
 */
public final class Accesses {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    public static final int[] WIDTHS = {1, 2, 4, 8};
    public static final ByteOrder[] ORDERS = {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN};

    private Accesses() {
    }

    /** A load through the address space at guest-physical {@code addr}; its result in {@code r[0]} if non-null. */
    public static long ld(AddressSpace as, long addr, int size, ByteOrder order, int[] r) {
        boolean big = order == ByteOrder.BIG_ENDIAN;
        return switch (size) {
            case 1 -> as.ldub(addr, U, r);
            case 2 -> big ? as.lduwBe(addr, U, r) : as.lduwLe(addr, U, r);
            case 4 -> (big ? as.ldlBe(addr, U, r) : as.ldlLe(addr, U, r)) & 0xffff_ffffL;
            default -> big ? as.ldqBe(addr, U, r) : as.ldqLe(addr, U, r);
        };
    }

    /** A store through the address space at guest-physical {@code addr}; returns its result. */
    public static int st(AddressSpace as, long addr, int size, ByteOrder order, long v) {
        boolean big = order == ByteOrder.BIG_ENDIAN;
        return switch (size) {
            case 1 -> as.stb(addr, (int) v, U);
            case 2 -> big ? as.stwBe(addr, (int) v, U) : as.stwLe(addr, (int) v, U);
            case 4 -> big ? as.stlBe(addr, (int) v, U) : as.stlLe(addr, (int) v, U);
            default -> big ? as.stqBe(addr, v, U) : as.stqLe(addr, v, U);
        };
    }

    /** A load through the cache at cache-relative {@code off}; its result in {@code r[0]} if non-null. */
    public static long ld(MemoryRegionCache c, long off, int size, ByteOrder order, int[] r) {
        boolean big = order == ByteOrder.BIG_ENDIAN;
        return switch (size) {
            case 1 -> c.ldub(off, U, r);
            case 2 -> big ? c.lduwBe(off, U, r) : c.lduwLe(off, U, r);
            case 4 -> (big ? c.ldlBe(off, U, r) : c.ldlLe(off, U, r)) & 0xffff_ffffL;
            default -> big ? c.ldqBe(off, U, r) : c.ldqLe(off, U, r);
        };
    }

    /** A store through the cache at cache-relative {@code off}; returns its result. */
    public static int st(MemoryRegionCache c, long off, int size, ByteOrder order, long v) {
        boolean big = order == ByteOrder.BIG_ENDIAN;
        return switch (size) {
            case 1 -> c.stb(off, (int) v, U);
            case 2 -> big ? c.stwBe(off, (int) v, U) : c.stwLe(off, (int) v, U);
            case 4 -> big ? c.stlBe(off, (int) v, U) : c.stlLe(off, (int) v, U);
            default -> big ? c.stqBe(off, v, U) : c.stqLe(off, v, U);
        };
    }

    /** What the model holds at byte {@code off}, in the model's byte order, zero-extended. */
    public static long modelLd(ByteBuffer model, int off, int size) {
        return switch (size) {
            case 1 -> model.get(off) & 0xffL;
            case 2 -> model.getShort(off) & 0xffffL;
            case 4 -> model.getInt(off) & 0xffff_ffffL;
            default -> model.getLong(off);
        };
    }

    /** Stores the low {@code size} bytes of {@code v} into the model at byte {@code off}, in its byte order. */
    public static void modelSt(ByteBuffer model, int off, int size, long v) {
        switch (size) {
            case 1 -> model.put(off, (byte) v);
            case 2 -> model.putShort(off, (short) v);
            case 4 -> model.putInt(off, (int) v);
            default -> model.putLong(off, v);
        }
    }

    /** What {@link ByteBuffer} reads from {@code mem} at {@code off} in {@code order}. */
    public static long expectedLoad(byte[] mem, int off, int size, ByteOrder order) {
        return modelLd(ByteBuffer.wrap(mem).order(order), off, size);
    }

    /** Fills the segment with a pattern that differs at every byte of a window and between seeds. */
    public static void fillPattern(MemorySegment seg, int seed) {
        for (long i = 0; i < seg.byteSize(); i++) {
            seg.set(ValueLayout.JAVA_BYTE, i, (byte) (seed + i * 7));
        }
    }

    /** A copy of {@code len} bytes of the segment from {@code off}. */
    public static byte[] bytes(MemorySegment seg, long off, int len) {
        return seg.asSlice(off, len).toArray(ValueLayout.JAVA_BYTE);
    }

    /** A device that is a row of byte registers, little-endian, recording its calls. */
    public static final class ByteDevice {
        public final byte[] regs;
        public final List<String> calls = new ArrayList<>();

        public ByteDevice(int size) {
            regs = new byte[size];
            reset();
        }

        public void reset() {
            for (int i = 0; i < regs.length; i++) {
                regs[i] = (byte) (0x80 + i);
            }
            calls.clear();
        }

        public MemoryRegionOps ops() {
            return MemoryRegionOps.builder()
                    .endianness(DeviceEndian.LITTLE)
                    .read((addr, size) -> {
                        calls.add("R" + addr + "/" + size);
                        long v = 0;
                        for (int i = 0; i < size; i++) {
                            v |= (regs[(int) addr + i] & 0xffL) << (8 * i);
                        }
                        return v;
                    })
                    .write((addr, data, size) -> {
                        calls.add("W" + addr + "/" + size);
                        for (int i = 0; i < size; i++) {
                            regs[(int) addr + i] = (byte) (data >>> (8 * i));
                        }
                    })
                    .build();
        }
    }
}
