package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.guestmem.memory.internal.access.Accesses;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The three ld/st families written out by hand ({@link AddressSpace}'s, {@link MemoryRegionCache}'s and
 * {@link SoftTlb}'s {@code ldub} ... {@code stqBe}) agree with the generic {@code read}/{@code write} of the same
 * bytes, for every size (1, 2, 4, 8), both byte orders and every alignment within 8 bytes, on RAM and on an MMIO
 * region that takes every size unaligned: a load returns the bytes {@code read} sees, assembled in the load's byte
 * order and zero-extended; a store leaves the bytes {@code write} of the same encoding would.
 */
class LdStFamiliesTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final int[] SIZES = {1, 2, 4, 8};
    private static final long RAM_BASE = 0x1000;
    private static final long MMIO_BASE = 0x10_0000;

    /** One family's loads and stores by size and byte order, at guest-physical addresses. */
    private interface Family {
        long load(long addr, int size, boolean bigEndian);

        void store(long addr, long value, int size, boolean bigEndian);
    }

    private final MemorySystem system = new MemorySystem();
    private final MemoryRegion root = system.container("system", U64.SIZE_2_64);
    private final byte[] device = new byte[0x100];
    private final AddressSpace as;

    LdStFamiliesTest() {
        root.addSubregion(RAM_BASE, system.ram("ram", 0x1000));
        root.addSubregion(MMIO_BASE, system.io("regs", device.length, MemoryRegionOps.builder()
                .read((addr, size) -> littleEndian(device, (int) addr, size))
                .write((addr, data, size) -> {
                    for (int i = 0; i < size; i++) {
                        device[(int) addr + i] = (byte) (data >>> (8 * i));
                    }
                })
                .endianness(DeviceEndian.LITTLE)
                .valid(1, 8, true)
                .impl(1, 8, true)
                .build()));
        as = system.addressSpace("memory", root);
    }

    @Test
    void everyFamilyLoadsWhatReadSees() {
        Random rnd = new Random(9);
        for (long base : new long[] {RAM_BASE, MMIO_BASE}) {
            for (Family f : families(base)) {
                for (int size : SIZES) {
                    for (boolean bigEndian : new boolean[] {false, true}) {
                        for (int align = 0; align < 8; align++) {
                            long addr = base + 0x40 + align;
                            byte[] bytes = new byte[size];
                            rnd.nextBytes(bytes);
                            assertEquals(MemTxResult.OK, as.write(addr, U, bytes, 0, size));
                            byte[] seen = new byte[size];
                            assertEquals(MemTxResult.OK, as.read(addr, U, seen, 0, size));
                            assertEquals(encode(seen, bigEndian), f.load(addr, size, bigEndian) & mask(size),
                                    () -> what(f, base, size, bigEndian, addr) + " load");
                        }
                    }
                }
            }
        }
    }

    @Test
    void everyFamilyStoresWhatWriteWould() {
        Random rnd = new Random(10);
        for (long base : new long[] {RAM_BASE, MMIO_BASE}) {
            for (Family f : families(base)) {
                for (int size : SIZES) {
                    for (boolean bigEndian : new boolean[] {false, true}) {
                        for (int align = 0; align < 8; align++) {
                            long addr = base + 0x80 + align;
                            long value = rnd.nextLong() & mask(size);
                            f.store(addr, value, size, bigEndian);
                            byte[] seen = new byte[size];
                            assertEquals(MemTxResult.OK, as.read(addr, U, seen, 0, size));
                            assertArrayEquals(decode(value, size, bigEndian), seen,
                                    () -> what(f, base, size, bigEndian, addr) + " store of " + Long.toHexString(value));
                        }
                    }
                }
            }
        }
    }

    private List<Family> families(long base) {
        List<Family> out = new ArrayList<>();
        out.add(addressSpace());
        out.add(cache(base));
        out.add(softTlb(new SoftTlb(as)));
        return out;
    }

    private static String what(Family f, long base, int size, boolean bigEndian, long addr) {
        return f + (base == RAM_BASE ? " RAM" : " MMIO") + " size=" + size + (bigEndian ? " be" : " le")
                + " addr=" + U64.hex(addr);
    }

    // ---------------------------------------------------------------- the families

    private Family addressSpace() {
        return new Family() {
            @Override
            public long load(long addr, int size, boolean be) {
                int[] r = {-1};
                long v = Accesses.ld(as, addr, size, order(be), r);
                assertEquals(MemTxResult.OK, r[0]);
                return v;
            }

            @Override
            public void store(long addr, long v, int size, boolean be) {
                assertEquals(MemTxResult.OK, Accesses.st(as, addr, size, order(be), v));
            }

            @Override
            public String toString() {
                return "AddressSpace";
            }
        };
    }

    /** A write cache over the 0x100 bytes at {@code base}; addresses are turned into cache offsets. */
    private Family cache(long base) {
        MemoryRegionCache c = MemoryRegionCache.init(as, base, 0x100, true);
        return new Family() {
            @Override
            public long load(long addr, int size, boolean be) {
                int[] r = {-1};
                long v = Accesses.ld(c, addr - base, size, order(be), r);
                assertEquals(MemTxResult.OK, r[0]);
                return v;
            }

            @Override
            public void store(long addr, long v, int size, boolean be) {
                long o = addr - base;
                assertEquals(MemTxResult.OK, Accesses.st(c, o, size, order(be), v));
                c.invalidate(o, size); // QEMU's rule for a write cache: the stores are complete once invalidated
            }

            @Override
            public String toString() {
                return "MemoryRegionCache";
            }
        };
    }

    /** The soft TLB's loads and stores, through {@link TlbAccess}. */
    private static Family softTlb(SoftTlb soft) {
        TlbAccess tlb = TlbAccess.of(soft);
        return new Family() {
            @Override
            public long load(long addr, int size, boolean be) {
                long v = tlb.ld(addr, size, order(be));
                assertEquals(MemTxResult.OK, tlb.takeResult());
                return v;
            }

            @Override
            public void store(long addr, long v, int size, boolean be) {
                tlb.st(addr, size, order(be), v);
                assertEquals(MemTxResult.OK, tlb.takeResult());
            }

            @Override
            public String toString() {
                return "SoftTlb";
            }
        };
    }

    private static ByteOrder order(boolean bigEndian) {
        return bigEndian ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
    }

    // ---------------------------------------------------------------- byte orders, written out independently

    private static long mask(int size) {
        return size == 8 ? -1L : (1L << (8 * size)) - 1;
    }

    private static long encode(byte[] bytes, boolean bigEndian) {
        long v = 0;
        for (int i = 0; i < bytes.length; i++) {
            int from = bigEndian ? i : bytes.length - 1 - i;
            v = (v << 8) | (bytes[from] & 0xffL);
        }
        return v;
    }

    private static byte[] decode(long value, int size, boolean bigEndian) {
        byte[] b = new byte[size];
        for (int i = 0; i < size; i++) {
            byte lowByte = (byte) (value >>> (8 * i));
            b[bigEndian ? size - 1 - i : i] = lowByte;
        }
        return b;
    }

    private static long littleEndian(byte[] a, int off, int size) {
        long v = 0;
        for (int i = size - 1; i >= 0; i--) {
            v = (v << 8) | (a[off + i] & 0xffL);
        }
        return v;
    }
}
