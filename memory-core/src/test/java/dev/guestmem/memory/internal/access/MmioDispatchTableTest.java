package dev.guestmem.memory.internal.access;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MMIO splitting tables: every combination of {@code valid} sizes and alignment, {@code impl} sizes (defaults
 * included), device byte order (little, big, native on a little- and a big-endian target), plain and with-attributes
 * callbacks, access sizes 1, 2, 4 and 8 in both byte orders, at aligned and unaligned offsets, driven through the
 * address space's ld/st methods. Each access's callback calls (offset, size, value) and its result are compared with
 * what the model below predicts.
 *
 * <p>The model is stated in bytes, not in the shifts and masks of an implementation. The device under test is a
 * row of byte registers {@code regs[0..64)}; a read callback of n bytes at offset a returns {@code regs[a..a+n)}
 * composed in the device's byte order. QEMU's rules (softmmu/memory.c of QEMU 7.2: memory_region_access_valid,
 * access_with_adjusted_size, adjust_endianness) then say:
 * <ol>
 *   <li>Allowed: the accepts callback (if any) says yes; the offset is a multiple of the size unless
 *   valid.unaligned; and, only when valid.max is given (non-zero), valid.min <= size <= valid.max. Otherwise no
 *   callback runs, a read gives 0, and the result is DECODE_ERROR.</li>
 *   <li>Unit: each callback gets {@code u = clamp(size, impl.min or 1, impl.max or 4)} bytes.</li>
 *   <li>Split ({@code u < size}): calls at offsets a, a+u, ... in that order, and the guest sees exactly the
 *   device's bytes {@code regs[a..a+size)}: whatever the two byte orders, a guest load of n bytes returns those
 *   bytes composed in the load's order; a store of value v hands the device the bytes of v (in the store's order)
 *   cut into u-byte pieces, each composed in the device's order.</li>
 *   <li>Widen ({@code u > size}): one call of u bytes at offset a itself (not aligned down). A load keeps the
 *   guest's bytes {@code regs[a..a+size)}; a store hands the device the guest's bytes followed by zero bytes, composed
 *   in the device's order.</li>
 *   <li>With-attributes callbacks: the results of the calls are OR-ed (here the device answers ERROR for calls at
 *   offsets 4..7, OK elsewhere).</li>
 * </ol>
 */
class MmioDispatchTableTest {
    private static final long BASE = 0x1000;
    private static final int[] SIZES = {0, 1, 2, 4, 8};
    private static final int[] ACCESS_SIZES = {1, 2, 4, 8};
    private static final long[] OFFSETS = {0, 1, 2, 3, 4, 5, 6, 8};

    record Call(boolean write, long addr, int size, long value) {
        @Override
        public String toString() {
            return (write ? "W" : "R") + "(" + addr + "," + size + "," + Long.toHexString(value) + ")";
        }
    }

    /** The byte-register device: records its calls. */
    static final class Device {
        final byte[] regs = new byte[64];
        final List<Call> calls = new ArrayList<>();
        final boolean big;

        Device(boolean big) {
            this.big = big;
            for (int i = 0; i < regs.length; i++) {
                regs[i] = (byte) (0x10 + i);
            }
        }

        long readValue(long addr, int size) {
            byte[] b = new byte[size];
            System.arraycopy(regs, (int) addr, b, 0, size);
            return compose(b, big);
        }

        MemoryRegionOps ops(DeviceEndian endian, MemoryRegionOps.AccessSizes valid, MemoryRegionOps.AccessSizes impl,
                            boolean withAttrs, MemoryRegionOps.Accepts accepts) {
            MemoryRegionOps.Builder b = MemoryRegionOps.builder().endianness(endian)
                    .valid(valid.minAccessSize(), valid.maxAccessSize(), valid.unaligned())
                    .impl(impl.minAccessSize(), impl.maxAccessSize(), impl.unaligned());
            if (accepts != null) {
                b.accepts(accepts);
            }
            if (withAttrs) {
                b.readWithAttrs((addr, data, size, attrs) -> {
                    data[0] = readValue(addr, size);
                    calls.add(new Call(false, addr, size, data[0]));
                    return errorAt(addr);
                });
                b.writeWithAttrs((addr, data, size, attrs) -> {
                    calls.add(new Call(true, addr, size, data));
                    return errorAt(addr);
                });
            } else {
                b.read((addr, size) -> {
                    long v = readValue(addr, size);
                    calls.add(new Call(false, addr, size, v));
                    return v;
                });
                b.write((addr, data, size) -> calls.add(new Call(true, addr, size, data)));
            }
            return b.build();
        }
    }

    static int errorAt(long addr) {
        return addr >= 4 && addr < 8 ? MemTxResult.ERROR : MemTxResult.OK;
    }

    /** Bytes composed into a value: b[0] least significant when little-endian, most significant when big. */
    static long compose(byte[] b, boolean big) {
        long v = 0;
        for (int i = 0; i < b.length; i++) {
            int shift = big ? 8 * (b.length - 1 - i) : 8 * i;
            v |= (b[i] & 0xffL) << shift;
        }
        return v;
    }

    static byte[] decompose(long v, int size, boolean big) {
        byte[] b = new byte[size];
        for (int i = 0; i < size; i++) {
            int shift = big ? 8 * (size - 1 - i) : 8 * i;
            b[i] = (byte) (v >>> shift);
        }
        return b;
    }

    /** The model's verdict for one access. */
    record Expected(List<Call> calls, long value, int result) {
    }

    static Expected model(Device dev, MemoryRegionOps.AccessSizes valid, MemoryRegionOps.AccessSizes impl,
                          boolean withAttrs, boolean acceptsAll, boolean write, long a, int size, boolean opBig,
                          long storeValue) {
        boolean allowed = acceptsAll
                && (valid.unaligned() || a % size == 0)
                && (valid.maxAccessSize() == 0 || (size >= valid.minAccessSize() && size <= valid.maxAccessSize()));
        if (!allowed) {
            return new Expected(List.of(), 0, MemTxResult.DECODE_ERROR);
        }
        int implMin = impl.minAccessSize() == 0 ? 1 : impl.minAccessSize();
        int implMax = impl.maxAccessSize() == 0 ? 4 : impl.maxAccessSize();
        int u = Math.max(implMin, Math.min(size, implMax));
        List<Call> calls = new ArrayList<>();
        int result = MemTxResult.OK;
        if (!write) {
            if (u <= size) {
                for (int k = 0; k < size / u; k++) {
                    long at = a + (long) k * u;
                    calls.add(new Call(false, at, u, dev.readValue(at, u)));
                    result |= withAttrs ? errorAt(at) : MemTxResult.OK;
                }
            } else {
                calls.add(new Call(false, a, u, dev.readValue(a, u)));
                result |= withAttrs ? errorAt(a) : MemTxResult.OK;
            }
            byte[] guestBytes = new byte[size];
            System.arraycopy(dev.regs, (int) a, guestBytes, 0, size);
            return new Expected(calls, compose(guestBytes, opBig), result);
        }
        byte[] bytes = decompose(storeValue, size, opBig);
        if (u <= size) {
            for (int k = 0; k < size / u; k++) {
                byte[] piece = new byte[u];
                System.arraycopy(bytes, k * u, piece, 0, u);
                long at = a + (long) k * u;
                calls.add(new Call(true, at, u, compose(piece, dev.big)));
                result |= withAttrs ? errorAt(at) : MemTxResult.OK;
            }
        } else {
            byte[] padded = new byte[u];
            System.arraycopy(bytes, 0, padded, 0, size);
            calls.add(new Call(true, a, u, compose(padded, dev.big)));
            result |= withAttrs ? errorAt(a) : MemTxResult.OK;
        }
        return new Expected(calls, 0, result);
    }

    static List<MemoryRegionOps.AccessSizes> allAccessSizes() {
        List<MemoryRegionOps.AccessSizes> l = new ArrayList<>();
        for (int min : SIZES) {
            for (int max : SIZES) {
                for (boolean unaligned : new boolean[] {false, true}) {
                    int effMin = min == 0 ? 1 : min;
                    int effMax = max == 0 ? 4 : max;
                    if (effMin <= effMax) {
                        l.add(new MemoryRegionOps.AccessSizes(min, max, unaligned));
                    }
                }
            }
        }
        return l;
    }

    /** One device mapped at {@link #BASE} in a fresh system with the given target byte order. */
    record Rig(AddressSpace as, Device dev) {
        static Rig of(boolean targetBig, DeviceEndian endian, MemoryRegionOps.AccessSizes valid,
                      MemoryRegionOps.AccessSizes impl, boolean withAttrs, MemoryRegionOps.Accepts accepts) {
            boolean devBig = endian == DeviceEndian.BIG || (endian == DeviceEndian.NATIVE && targetBig);
            Device dev = new Device(devBig);
            MemorySystem system = new MemorySystem(MemorySystem.ANONYMOUS_RAM, targetBig);
            MemoryRegion root = system.container("root", U64.SIZE_2_64);
            root.addSubregion(BASE, system.io("dev", 0x40, dev.ops(endian, valid, impl, withAttrs, accepts)));
            return new Rig(system.addressSpace("as", root), dev);
        }
    }

    private static ByteOrder order(boolean big) {
        return big ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
    }

    /** A store value whose bytes all differ, so a misplaced byte shows. */
    static long storeValue(int size) {
        return 0xA1B2C3D4E5F60718L & MmioDispatch.mask(size);
    }

    @Test
    void everyCombinationMatchesTheModel() {
        List<MemoryRegionOps.AccessSizes> sizes = allAccessSizes();
        DeviceEndian[] endians = DeviceEndian.values();
        int[] r = new int[1];
        long checked = 0;
        for (boolean targetBig : new boolean[] {false, true}) {
            for (DeviceEndian endian : endians) {
                for (MemoryRegionOps.AccessSizes valid : sizes) {
                    for (MemoryRegionOps.AccessSizes impl : sizes) {
                        for (boolean withAttrs : new boolean[] {false, true}) {
                            Rig rig = Rig.of(targetBig, endian, valid, impl, withAttrs, null);
                            for (int size : ACCESS_SIZES) {
                                for (boolean opBig : new boolean[] {false, true}) {
                                    for (long off : OFFSETS) {
                                        String where = "target=" + (targetBig ? "BE" : "LE") + " dev=" + endian
                                                + " valid=" + valid + " impl=" + impl + " attrs=" + withAttrs
                                                + " size=" + size + " op=" + (opBig ? "BE" : "LE") + " off=" + off;
                                        Expected re = model(rig.dev, valid, impl, withAttrs, true, false, off, size,
                                                opBig, 0);
                                        rig.dev.calls.clear();
                                        r[0] = -1;
                                        long got = Accesses.ld(rig.as, BASE + off, size, order(opBig), r);
                                        assertEquals(re.calls, rig.dev.calls, "read calls " + where);
                                        assertEquals(Long.toHexString(re.value), Long.toHexString(got),
                                                "read value " + where);
                                        assertEquals(MemTxResult.toString(re.result), MemTxResult.toString(r[0]),
                                                "read result " + where);

                                        long v = storeValue(size);
                                        Expected we = model(rig.dev, valid, impl, withAttrs, true, true, off, size,
                                                opBig, v);
                                        rig.dev.calls.clear();
                                        int wr = Accesses.st(rig.as, BASE + off, size, order(opBig), v);
                                        assertEquals(we.calls, rig.dev.calls, "write calls " + where);
                                        assertEquals(MemTxResult.toString(we.result), MemTxResult.toString(wr),
                                                "write result " + where);
                                        checked += 2;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assertTrue(checked > 1_000_000, "checked=" + checked);
    }

    @Test
    void acceptsIsAskedFirstAndCanRefuseOneDirection() {
        // Refuses writes at offset 4 only; the model's acceptsAll is false exactly there.
        MemoryRegionOps.Accepts accepts = (addr, size, isWrite, attrs) -> !(isWrite && addr == 4);
        List<MemoryRegionOps.AccessSizes> sizes = allAccessSizes();
        int[] r = new int[1];
        for (MemoryRegionOps.AccessSizes valid : sizes) {
            Rig rig = Rig.of(false, DeviceEndian.LITTLE, valid, MemoryRegionOps.AccessSizes.DEFAULT, false, accepts);
            for (int size : ACCESS_SIZES) {
                for (long off : OFFSETS) {
                    Expected re = model(rig.dev, valid, MemoryRegionOps.AccessSizes.DEFAULT, false, true, false, off,
                            size, false, 0);
                    rig.dev.calls.clear();
                    long got = Accesses.ld(rig.as, BASE + off, size, ByteOrder.LITTLE_ENDIAN, r);
                    assertEquals(re.calls, rig.dev.calls);
                    assertEquals(re.value, got);
                    assertEquals(re.result, r[0]);

                    long v = storeValue(size);
                    Expected we = model(rig.dev, valid, MemoryRegionOps.AccessSizes.DEFAULT, false, off != 4, true,
                            off, size, false, v);
                    rig.dev.calls.clear();
                    assertEquals(we.result, Accesses.st(rig.as, BASE + off, size, ByteOrder.LITTLE_ENDIAN, v), "valid=" + valid + " off=" + off);
                    assertEquals(we.calls, rig.dev.calls);
                }
            }
        }
    }

    // ---------------------------------------------------------------- hand-derived examples

    private static final MemoryRegionOps.AccessSizes DEFAULT = MemoryRegionOps.AccessSizes.DEFAULT;

    @Test
    void eightBytesToADefaultDeviceArriveAsTwoFourByteCallsInAddressOrder() {
        int[] r = new int[1];
        // Little-endian device: regs 10 11 12 13 | 14 15 16 17. Call at 0 returns 0x13121110, at 4 0x17161514;
        // the first call is the low half.
        Rig le = Rig.of(false, DeviceEndian.LITTLE, DEFAULT, DEFAULT, false, null);
        assertEquals(0x1716151413121110L, le.as.ldqLe(BASE, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(List.of(new Call(false, 0, 4, 0x13121110L), new Call(false, 4, 4, 0x17161514L)), le.dev.calls);
        // Big-endian device: the calls come in the same order, but the first is the high half.
        Rig be = Rig.of(false, DeviceEndian.BIG, DEFAULT, DEFAULT, false, null);
        assertEquals(0x1011121314151617L, be.as.ldqBe(BASE, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(List.of(new Call(false, 0, 4, 0x10111213L), new Call(false, 4, 4, 0x14151617L)), be.dev.calls);
        // A little-endian load from it sees the same bytes in the other order.
        assertEquals(0x1716151413121110L, be.as.ldqLe(BASE, MemTxAttrs.UNSPECIFIED, r));
        // Stores: stq_le 0x8877665544332211 to the BE device writes bytes 11 22 .. 88; the call at 0 carries
        // 11 22 33 44 composed big-endian.
        be.dev.calls.clear();
        be.as.stqLe(BASE, 0x8877665544332211L, MemTxAttrs.UNSPECIFIED);
        assertEquals(List.of(new Call(true, 0, 4, 0x11223344L), new Call(true, 4, 4, 0x55667788L)), be.dev.calls);
    }

    @Test
    void aByteToAFourByteOnlyDeviceIsAFourByteCallAtTheSameOffset() {
        MemoryRegionOps.AccessSizes implFour = new MemoryRegionOps.AccessSizes(4, 4, false);
        MemoryRegionOps.AccessSizes validAny = new MemoryRegionOps.AccessSizes(1, 8, true);
        int[] r = new int[1];
        // LE: the call at offset 1 (not aligned down) returns regs 11 12 13 14 as 0x14131211; the guest gets its
        // low byte, 0x11.
        Rig le = Rig.of(false, DeviceEndian.LITTLE, validAny, implFour, false, null);
        assertEquals(0x11, le.as.ldub(BASE + 1, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(List.of(new Call(false, 1, 4, 0x14131211L)), le.dev.calls);
        // BE: the same call returns 0x11121314; the guest's byte is the top one, 0x11 again.
        Rig be = Rig.of(false, DeviceEndian.BIG, validAny, implFour, false, null);
        assertEquals(0x11, be.as.ldub(BASE + 1, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(List.of(new Call(false, 1, 4, 0x11121314L)), be.dev.calls);
        // Stores put the guest's byte where the device keeps offset 2 and zeros elsewhere.
        le.dev.calls.clear();
        be.dev.calls.clear();
        le.as.stb(BASE + 2, 0xAB, MemTxAttrs.UNSPECIFIED);
        be.as.stb(BASE + 2, 0xAB, MemTxAttrs.UNSPECIFIED);
        assertEquals(List.of(new Call(true, 2, 4, 0xABL)), le.dev.calls);
        assertEquals(List.of(new Call(true, 2, 4, 0xAB00_0000L)), be.dev.calls);
    }

    @Test
    void validMaxZeroAllowsEverySizeButNotMisalignment() {
        int[] r = new int[1];
        MemoryRegionOps.AccessSizes minTwo = new MemoryRegionOps.AccessSizes(2, 0, false);
        Rig rig = Rig.of(false, DeviceEndian.LITTLE, minTwo, DEFAULT, false, null);
        // valid.min is ignored when valid.max is 0: a byte access is allowed.
        assertEquals(0x10, rig.as.ldub(BASE, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(MemTxResult.OK, r[0]);
        // An unaligned 4-byte access is refused: DECODE_ERROR, 0, no call.
        rig.dev.calls.clear();
        assertEquals(0, rig.as.ldlLe(BASE + 2, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(MemTxResult.DECODE_ERROR, r[0]);
        assertEquals(List.of(), rig.dev.calls);
    }

    @Test
    void refusedSizesAreDecodeErrors() {
        int[] r = new int[1];
        Rig rig = Rig.of(false, DeviceEndian.LITTLE, new MemoryRegionOps.AccessSizes(4, 4, false), DEFAULT, false,
                null);
        assertEquals(0, rig.as.lduwLe(BASE, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(MemTxResult.DECODE_ERROR, r[0]);
        assertEquals(MemTxResult.DECODE_ERROR, rig.as.stqLe(BASE, -1L, MemTxAttrs.UNSPECIFIED));
        assertEquals(List.of(), rig.dev.calls);
    }

    @Test
    void nativeFollowsTheTarget() {
        int[] r = new int[1];
        // On a big-endian target a native device is big-endian: its 4-byte call returns 0x10111213 and an ldl_be
        // gives that value unchanged.
        Rig be = Rig.of(true, DeviceEndian.NATIVE, DEFAULT, DEFAULT, false, null);
        assertEquals(0x10111213, be.as.ldlBe(BASE, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(List.of(new Call(false, 0, 4, 0x10111213L)), be.dev.calls);
        Rig le = Rig.of(false, DeviceEndian.NATIVE, DEFAULT, DEFAULT, false, null);
        assertEquals(0x13121110, le.as.ldlLe(BASE, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(List.of(new Call(false, 0, 4, 0x13121110L)), le.dev.calls);
    }

    @Test
    void resultsOfThePiecesAreOred() {
        int[] r = new int[1];
        // The device answers ERROR for calls at offsets 4..7 only: an 8-byte access split in two is ERROR overall,
        // with both halves still read.
        Rig rig = Rig.of(false, DeviceEndian.LITTLE, DEFAULT, DEFAULT, true, null);
        assertEquals(0x1716151413121110L, rig.as.ldqLe(BASE, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(MemTxResult.ERROR, r[0]);
        assertEquals(MemTxResult.OK, rig.as.stlLe(BASE, 1, MemTxAttrs.UNSPECIFIED));
        assertEquals(MemTxResult.ERROR, rig.as.stqLe(BASE, 1, MemTxAttrs.UNSPECIFIED));
    }
}
