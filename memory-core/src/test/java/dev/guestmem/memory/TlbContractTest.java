package dev.guestmem.memory;

import static dev.guestmem.memory.internal.access.Accesses.ORDERS;
import static dev.guestmem.memory.internal.access.Accesses.WIDTHS;
import static dev.guestmem.memory.internal.access.Accesses.fillPattern;
import static dev.guestmem.memory.internal.access.Accesses.modelLd;
import static dev.guestmem.memory.internal.access.Accesses.modelSt;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.access.Accesses.ByteDevice;
import dev.guestmem.memory.internal.access.Accesses;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * What both soft TLBs promise, written once and run against each ({@link SoftTlbTest}, {@link HostTlbTest}), as
 * {@code RamBlockContractTest} is for RAM backends: RAM at every width, byte order and alignment against the address
 * space's own ld/st and a {@link ByteBuffer} model, page-crossing accesses included; aligned accesses hitting after one
 * miss per page; MMIO, holes and pages shared by sections never cached and behaving as through the address space;
 * ROM and read-only mappings, where a CPU store never writes; a one-entry TLB staying right.
 *
 * <p>A subclass opens its TLB over an address space whose map is built ({@link #open}), with the discipline the TLB
 * needs; where a case changes the map afterwards it passes a check point ({@link TlbAccess#checkpoint}), which the
 * fast TLB needs to see the change and the checked TLB, which checks the view on every access, does not.
 */
abstract class TlbContractTest {
    static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    /** The TLB under test over {@code as}, with its default size, ready for accesses. */
    abstract TlbAccess open(AddressSpace as);

    /** The TLB under test over {@code as} with exactly {@code entries} entries, ready for accesses. */
    abstract TlbAccess open(AddressSpace as, int entries);

    // ---------------------------------------------------------------- RAM

    /**
     * A guest loop of loads and stores through a TLB of 8 entries (so pages evict each other) over 16 pages of RAM,
     * at 1 KiB, 4 KiB and 64 KiB pages, with a check point every 1,000 accesses: every value agrees with the address
     * space's ld and with a ByteBuffer holding what the stores wrote, at aligned, unaligned and page-crossing
     * addresses; every result is OK.
     */
    @Test
    void guestLoopOverRamAgreesWithAddressSpaceAndByteBuffer() {
        for (int pageBits : new int[] {10, 12, 16}) {
            int pageSize = 1 << pageBits;
            int size = 16 * pageSize;
            long base = 0x1_0000_0000L;
            MemorySystem system = new MemorySystem();
            MemoryRegion root = system.container("root", U64.SIZE_2_64);
            MemoryRegion ram = system.ram("ram", size);
            root.addSubregion(base, ram);
            AddressSpace as = system.addressSpace("as", root, pageBits);
            TlbAccess tlb = open(as, 8);
            byte[] bytes = new byte[size];
            ByteBuffer le = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer be = ByteBuffer.wrap(bytes).order(ByteOrder.BIG_ENDIAN);
            Random rnd = new Random(pageBits);
            int[] r = new int[1];
            long accesses = 0;
            for (int i = 0; i < 200_000; i++) {
                int width = WIDTHS[rnd.nextInt(4)];
                ByteOrder order = ORDERS[rnd.nextInt(2)];
                ByteBuffer model = order == ByteOrder.LITTLE_ENDIAN ? le : be;
                int off = switch (rnd.nextInt(4)) {
                    case 0, 1 -> rnd.nextInt(size / width) * width;                           // aligned
                    case 2 -> rnd.nextInt(size - width + 1);                                 // anywhere
                    default -> (1 + rnd.nextInt(15)) * pageSize - 1 - rnd.nextInt(width);    // near a page end
                };
                off = Math.min(off, size - width);
                long addr = base + off;
                String where = "pageBits=" + pageBits + " off=0x" + Integer.toHexString(off) + " width=" + width
                        + " " + order;
                if (rnd.nextBoolean()) {
                    long v = rnd.nextLong();
                    tlb.st(addr, width, order, v);
                    modelSt(model, off, width, v);
                } else {
                    long want = modelLd(model, off, width);
                    assertEquals(want, tlb.ld(addr, width, order), where);
                    assertEquals(want, Accesses.ld(as, addr, width, order, r), where);
                }
                accesses++;
                assertEquals(MemTxResult.OK, tlb.takeResult(), where);
                if (i % 1000 == 0) {
                    tlb.checkpoint();
                }
            }
            assertArrayEquals(bytes, ram.ramSegment().toArray(ValueLayout.JAVA_BYTE), "pageBits=" + pageBits);
            // Half the accesses are aligned, and half of those find their page among the 8 cached.
            assertTrue(tlb.missCount() < accesses * 9 / 10, "misses=" + tlb.missCount() + " of " + accesses);
        }
    }

    /** Every width, order and start offset across one page boundary, loads and stores, against the model. */
    @Test
    void everyOffsetAcrossAPageBoundary() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x2000);
        root.addSubregion(0x7000, ram);
        AddressSpace as = system.addressSpace("as", root);
        TlbAccess tlb = open(as);
        byte[] bytes = new byte[0x2000];
        for (int size : WIDTHS) {
            for (ByteOrder order : ORDERS) {
                ByteBuffer model = ByteBuffer.wrap(bytes).order(order);
                for (int off = 0xff0; off <= 0x1008; off++) {
                    fillPattern(ram.ramSegment(), off + size);
                    MemorySegment.copy(ram.ramSegment(), ValueLayout.JAVA_BYTE, 0, bytes, 0, bytes.length);
                    String where = "off=0x" + Integer.toHexString(off) + " size=" + size + " " + order;
                    assertEquals(modelLd(model, off, size), tlb.ld(0x7000 + off, size, order), where);
                    long v = 0x0123_4567_89ab_cdefL * (off + 1);
                    tlb.st(0x7000 + off, size, order, v);
                    modelSt(model, off, size, v);
                    assertArrayEquals(bytes, ram.ramSegment().toArray(ValueLayout.JAVA_BYTE), where);
                    assertEquals(MemTxResult.OK, tlb.takeResult(), where);
                }
            }
        }
    }

    /** Aligned accesses to a cached page are hits: one miss per page and kind, then none. */
    @Test
    void alignedAccessesToCachedPagesHit() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.ram("ram", 0x4000));
        TlbAccess tlb = open(system.addressSpace("as", root));
        long sum = 0;
        for (int round = 0; round < 3; round++) {
            for (long a = 0; a < 0x4000; a += 8) {
                tlb.stqLe(a, a);
                sum += tlb.ldqLe(a) + tlb.ld(a, 4, ByteOrder.BIG_ENDIAN) + tlb.ld(a, 2, ByteOrder.LITTLE_ENDIAN)
                        + tlb.ld(a, 1, ByteOrder.LITTLE_ENDIAN);
            }
        }
        assertTrue(sum != 0);
        // The first store of each page fills its read and write parts together.
        assertEquals(4, tlb.missCount());
    }

    /** A one-entry TLB: every page evicts the last; values stay right. */
    @Test
    void oneEntryThrashesButStaysRight() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.ram("ram", 0x3000));
        TlbAccess tlb = open(system.addressSpace("as", root), 1);
        List<Long> seen = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            for (long a = 0; a < 0x3000; a += 0x1000) {
                tlb.stqLe(a + 8, a + i);
                seen.add(tlb.ldqLe(a + 8));
            }
        }
        assertEquals(Arrays.asList(0L, 0x1000L, 0x2000L, 1L, 0x1001L, 0x2001L, 2L, 0x1002L, 0x2002L), seen);
        assertEquals(9, tlb.missCount());
    }

    // ---------------------------------------------------------------- what is never cached

    /**
     * MMIO through the TLB reaches the device on every access (values, results and the calls the device sees are the
     * address space's), at every width, order and offset, including ones the device refuses.
     */
    @Test
    void mmioReachesTheDeviceEveryTimeWithTheAddressSpacesResults() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        ByteDevice viaTlb = new ByteDevice(0x40);
        ByteDevice viaAs = new ByteDevice(0x40);
        // Two identical devices, one per path: 2- and 4-byte accesses only, aligned, implemented as 1..4 bytes.
        root.addSubregion(0x1000, system.io("dev-tlb", 0x40, opsOf(viaTlb)));
        root.addSubregion(0x2000, system.io("dev-as", 0x40, opsOf(viaAs)));
        AddressSpace as = system.addressSpace("as", root);
        TlbAccess tlb = open(as);
        int[] r = new int[1];
        int calls = 0;
        for (int round = 0; round < 2; round++) {
            for (int size : WIDTHS) {
                for (ByteOrder order : ORDERS) {
                    for (int off = 0; off < 12; off++) {
                        String where = "off=" + off + " size=" + size + " " + order;
                        long misses = tlb.missCount();
                        assertEquals(Accesses.ld(as, 0x2000 + off, size, order, r), tlb.ld(0x1000 + off, size, order),
                                where);
                        assertEquals(r[0], tlb.takeResult(), where);
                        long v = 0x1122_3344_5566_7788L + off;
                        int want = Accesses.st(as, 0x2000 + off, size, order, v);
                        tlb.st(0x1000 + off, size, order, v);
                        assertEquals(want, tlb.takeResult(), where);
                        assertEquals(misses + 2, tlb.missCount(), "MMIO is never cached: " + where);
                        assertEquals(viaAs.calls, viaTlb.calls, where);
                        assertArrayEquals(viaAs.regs, viaTlb.regs, where);
                        calls += viaTlb.calls.size();
                        viaAs.calls.clear();
                        viaTlb.calls.clear();
                    }
                }
            }
        }
        assertTrue(calls > 60, "calls=" + calls);
    }

    private static MemoryRegionOps opsOf(ByteDevice dev) {
        MemoryRegionOps plain = dev.ops();
        return MemoryRegionOps.builder()
                .endianness(DeviceEndian.LITTLE)
                .read(plain.read())
                .write(plain.write())
                .valid(2, 4, false)
                .build();
    }

    /** Holes read 0 with DECODE_ERROR and drop stores, as through the address space; never cached. */
    @Test
    void holesAreDecodeErrorsEveryTime() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.ram("ram", 0x1000));
        TlbAccess tlb = open(system.addressSpace("as", root));
        for (long addr : new long[] {0x1000, 0x5000_0000L, -8L}) {
            assertEquals(0, tlb.ldqLe(addr));
            assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
            tlb.st(addr, 4, ByteOrder.LITTLE_ENDIAN, 1);
            assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
            assertEquals(0, tlb.ldlCode(addr));
            assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
        }
        assertEquals(9, tlb.missCount());
        // Results are sticky until taken, OR-ed over accesses.
        tlb.ld(0x2000, 1, ByteOrder.LITTLE_ENDIAN);
        tlb.ld(0, 1, ByteOrder.LITTLE_ENDIAN);
        assertEquals(MemTxResult.DECODE_ERROR, tlb.result());
        assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
        assertEquals(MemTxResult.OK, tlb.takeResult());
    }

    /** A page shared by RAM and a device (QEMU's subpage) is never cached; its RAM part is still read right. */
    @Test
    void pagesSharedBySectionsAreNeverCached() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x1000);
        root.addSubregion(0, ram);
        root.addSubregionOverlap(0x800, system.io("dev", 0x100, MemoryRegionOps.builder()
                .read((addr, size) -> 0x5a5a_5a5a_5a5a_5a5aL)
                .write((addr, data, size) -> { })
                .build()), 1);
        AddressSpace as = system.addressSpace("as", root);
        TlbAccess tlb = open(as);
        ram.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x10, 0x1234_5678_9abc_def0L);
        for (int i = 0; i < 5; i++) {
            assertEquals(0x1234_5678_9abc_def0L, tlb.ldqLe(0x10));
            tlb.stqLe(0x18, i);
            assertEquals(i, ram.ramSegment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x18));
            assertEquals(0x5a5a_5a5aL, tlb.ldlLe(0x800) & 0xffff_ffffL);
        }
        assertEquals(MemTxResult.OK, tlb.takeResult());
        assertEquals(15, tlb.missCount());
    }

    // ---------------------------------------------------------------- read-only memory

    /**
     * ROM: reads are cached (one miss per page); stores take the slow path every time and are dropped with the
     * address space's result, DECODE_ERROR. Fetches from ROM are cached too.
     */
    @Test
    void romReadsAreCachedAndStoresDroppedLikeTheAddressSpace() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion rom = system.rom("rom", 0x2000);
        root.addSubregion(0xf_e000, rom);
        AddressSpace as = system.addressSpace("as", root);
        byte[] image = new byte[0x2000];
        new Random(7).nextBytes(image);
        as.writeRom(0xf_e000, U, image, 0, image.length);
        TlbAccess tlb = open(as);
        ByteBuffer model = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
        for (int off = 0; off < 0x2000; off += 8) {
            assertEquals(model.getLong(off), tlb.ldqLe(0xf_e000 + off));
            assertEquals(model.getInt(off), tlb.ldlCode(0xf_e000 + off));
        }
        assertEquals(4, tlb.missCount(), "two pages, read and code parts");
        int stores = 0;
        for (int size : WIDTHS) {
            for (ByteOrder order : ORDERS) {
                for (int off = 0; off < 8; off++) {
                    int want = Accesses.st(as, 0xf_e000 + off, size, order, -1L);
                    tlb.st(0xf_e000 + off, size, order, -1L);
                    assertEquals(want, tlb.takeResult());
                    assertEquals(MemTxResult.DECODE_ERROR, want);
                    stores++;
                }
            }
        }
        assertEquals(4 + stores, tlb.missCount(), "every ROM store leaves the fast path");
        assertArrayEquals(image, rom.ramSegment().toArray(ValueLayout.JAVA_BYTE));
    }

    /**
     * A read-only alias of writable RAM (QEMU's PAM pam-rom windows): the address space writes through it, as QEMU's
     * address_space_st* do, but the TLB discards the store (QEMU's TLB_DISCARD_WRITE) and reports DECODE_ERROR.
     * Reads through the alias are cached; the RAM itself stays writable at its own address.
     */
    @Test
    void readOnlyAliasOfRamDiscardsTlbStores() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x4000);
        MemoryRegion alias = system.alias("ram-ro", ram, 0x1000, 0x2000);
        alias.setReadonly(true);
        root.addSubregion(0, ram);
        root.addSubregion(0x10_0000, alias);
        AddressSpace as = system.addressSpace("as", root);
        TlbAccess tlb = open(as);
        ram.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x1008, 0x1122_3344_5566_7788L);
        assertEquals(0x1122_3344_5566_7788L, tlb.ldqLe(0x10_0008));
        for (int size : WIDTHS) {
            for (ByteOrder order : ORDERS) {
                for (int off = 0; off < 16; off++) {
                    tlb.st(0x10_0000 + off, size, order, 0);
                    assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
                }
            }
        }
        assertEquals(0x1122_3344_5566_7788L, tlb.ldqLe(0x10_0008), "TLB stores through the alias are discarded");
        assertEquals(1 + 4 * 2 * 16, tlb.missCount());

        tlb.stqLe(0x1008, 42);
        assertEquals(MemTxResult.OK, tlb.takeResult());
        assertEquals(42, tlb.ldqLe(0x10_0008), "the RAM is writable at its own address");
        // The address space, unlike a CPU, writes through the alias.
        assertEquals(MemTxResult.OK, as.stqLe(0x10_0008, 43, U));
        assertEquals(43, tlb.ldqLe(0x1008));
    }

    /**
     * RAM made read-only itself: TLB stores are dropped with DECODE_ERROR, exactly as through the address space; made
     * writable again, they land. Each change is seen from the TLB's next check point.
     */
    @Test
    void readOnlyRamDropsStoresWithTheAddressSpacesResult() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x1000);
        root.addSubregion(0, ram);
        AddressSpace as = system.addressSpace("as", root);
        TlbAccess tlb = open(as);
        tlb.st(0x10, 4, ByteOrder.LITTLE_ENDIAN, 1);
        ram.setReadonly(true);
        tlb.checkpoint();
        assertEquals(MemTxResult.DECODE_ERROR, as.stlLe(0x10, 2, U));
        tlb.st(0x10, 4, ByteOrder.LITTLE_ENDIAN, 3);
        assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
        assertEquals(1, tlb.ldlLe(0x10));
        ram.setReadonly(false);
        tlb.checkpoint();
        tlb.st(0x10, 4, ByteOrder.LITTLE_ENDIAN, 4);
        assertEquals(MemTxResult.OK, tlb.takeResult());
        assertEquals(4, tlb.ldlLe(0x10));
    }

    // ---------------------------------------------------------------- atomics

    private static final int[] ATOMIC_SIZES = {4, 8};
    private static final boolean[] BIG = {false, true};

    private static long atomicMask(int size) {
        return size == 8 ? -1L : 0xffff_ffffL;
    }

    /** One operation through the TLB: an {@link AtomicOp}, or compare-and-exchange when {@code op} is null. */
    private static long atomic(TlbAccess tlb, AtomicOp op, long addr, long a, long b, int size, boolean big) {
        return op == null ? tlb.atomicCmpxchg(addr, a, b, size, big) : tlb.atomicFetchOp(op, addr, a, size, big);
    }

    /**
     * Every operation and compare-and-exchange of {@code size} bytes at {@code addr}, in both byte orders, is refused:
     * 0 returned, ATOMIC_REFUSED in the result, one miss each (never a hit). Returns the atomics made.
     */
    private static int assertRefused(TlbAccess tlb, long addr, int size) {
        int n = 0;
        for (boolean big : BIG) {
            for (AtomicOp op : AtomicOp.values()) {
                String what = op + " addr=0x" + Long.toHexString(addr) + " size=" + size + " big=" + big;
                long misses = tlb.missCount();
                assertEquals(0, atomic(tlb, op, addr, 0xff, 0, size, big), what);
                assertEquals(MemTxResult.ATOMIC_REFUSED, tlb.takeResult(), what);
                assertEquals(misses + 1, tlb.missCount(), "never a hit: " + what);
                n++;
            }
            assertEquals(0, atomic(tlb, null, addr, 0, 1, size, big));
            assertEquals(MemTxResult.ATOMIC_REFUSED, tlb.takeResult());
            n++;
        }
        return n;
    }

    private static long ldAs(AddressSpace as, long addr, int size, boolean big) {
        int[] r = {-1};
        long v = Accesses.ld(as, addr, size, big ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN, r);
        assertEquals(MemTxResult.OK, r[0]);
        return v;
    }

    private static void stAs(AddressSpace as, long addr, long v, int size, boolean big) {
        assertEquals(MemTxResult.OK, Accesses.st(as, addr, size, big ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN,
                v));
    }

    /**
     * Every operation at both sizes and byte orders, against {@link AtomicAccessTest#reference}: through a TLB whose
     * entry is cached (every atomic after the page's first a hit: no miss counted) and through a one-entry TLB whose
     * entry a store to another page evicts before each atomic (every atomic a miss and a refill); the next word stays
     * as it was, every result is OK.
     */
    @Test
    void atomicsMatchTheReferenceOnHitsAndMisses() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0x10_0000, system.ram("ram", 0x4000));
        AddressSpace as = system.addressSpace("as", root);
        TlbAccess hits = open(as);
        TlbAccess misses = open(as, 1);
        Random rnd = new Random(17);
        long[] edges = {0, 1, -1, Long.MIN_VALUE, Long.MAX_VALUE, 0x8000_0000L, 0x7fff_ffffL, 0xffff_ffffL};
        List<long[]> pairs = new ArrayList<>();
        for (long a : edges) {
            for (long b : edges) {
                pairs.add(new long[] {a, b});
            }
        }
        for (int i = 0; i < 40; i++) {
            pairs.add(new long[] {rnd.nextLong(), rnd.nextLong()});
        }
        long guard = 0x0123_4567_89ab_cdefL;
        hits.stqLe(0x10_0000, 0); // fills the page's entry: the hits below miss nothing
        long hitMisses = hits.missCount();
        int n = 0;
        for (AtomicOp op : AtomicOp.values()) {
            for (int size : ATOMIC_SIZES) {
                for (boolean big : BIG) {
                    for (boolean hit : BIG) {
                        TlbAccess tlb = hit ? hits : misses;
                        long addr = 0x10_0000 + (hit ? 0x100 : 0x1100) + 16L * rnd.nextInt(8);
                        for (long[] p : pairs) {
                            stAs(as, addr, p[0], size, big);
                            stAs(as, addr + size, guard, size, big);
                            long before = tlb.missCount();
                            if (!hit) {
                                tlb.stqLe(0x10_3000, 0); // the same entry of a one-entry TLB
                            }
                            String what = op + " size=" + size + " big=" + big + " hit=" + hit + " old="
                                    + Long.toHexString(p[0]) + " operand=" + Long.toHexString(p[1]);
                            assertEquals(p[0] & atomicMask(size), atomic(tlb, op, addr, p[1], 0, size, big), what);
                            assertEquals(AtomicAccessTest.reference(op, p[0], p[1], size), ldAs(as, addr, size, big),
                                    what);
                            assertEquals(guard & atomicMask(size), ldAs(as, addr + size, size, big), what);
                            assertEquals(hit ? before : before + 2, tlb.missCount(), what);
                            assertEquals(MemTxResult.OK, tlb.takeResult(), what);
                            n++;
                        }
                    }
                }
            }
        }
        assertEquals(hitMisses, hits.missCount(), "every atomic through the cached entry hit");
        // Compare-and-exchange: stores only when the low size bytes match; the high half of a 4-byte operand is ignored.
        for (int size : ATOMIC_SIZES) {
            for (boolean big : BIG) {
                for (boolean hit : BIG) {
                    TlbAccess tlb = hit ? hits : misses;
                    long addr = 0x10_0000 + (hit ? 0x200 : 0x1200);
                    long v = 0x8765_4321_fedc_ba98L & atomicMask(size);
                    stAs(as, addr, v, size, big);
                    if (!hit) {
                        tlb.stqLe(0x10_3000, 0);
                    }
                    assertEquals(v, atomic(tlb, null, addr, v ^ 1, 7, size, big));
                    assertEquals(v, ldAs(as, addr, size, big), "no match: nothing stored");
                    long expected = size == 4 ? v | 0xdead_0000_0000_0000L : v;
                    if (!hit) {
                        tlb.stqLe(0x10_3000, 0);
                    }
                    assertEquals(v, atomic(tlb, null, addr, expected, 0x1122_3344_5566_7788L, size, big));
                    assertEquals(0x1122_3344_5566_7788L & atomicMask(size), ldAs(as, addr, size, big));
                    assertEquals(MemTxResult.OK, tlb.takeResult());
                }
            }
        }
        assertEquals(hitMisses, hits.missCount());
        assertTrue(n > 1000, "n=" + n);
    }

    /**
     * A misaligned atomic is refused even inside a cached page (QEMU raises the guest's alignment fault; the TLB
     * reports ATOMIC_REFUSED, as the address space does): 0 returned, nothing written, one miss each.
     */
    @Test
    void misalignedAtomicsAreRefusedAndWriteNothing() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x2000);
        root.addSubregion(0x4000, ram);
        AddressSpace as = system.addressSpace("as", root);
        TlbAccess tlb = open(as);
        fillPattern(ram.ramSegment(), 0x2000);
        byte[] before = ram.ramSegment().toArray(ValueLayout.JAVA_BYTE);
        tlb.ldqLe(0x4000); // the page is cached
        tlb.stqLe(0x4ff8, tlb.ldqLe(0x4ff8));
        int refused = 0;
        for (int size : ATOMIC_SIZES) {
            for (long addr : new long[] {0x4011, 0x4012, 0x4013, 0x4014, 0x4ffe, 0x4ffc}) {
                if ((addr & (size - 1)) == 0) {
                    continue;
                }
                refused += assertRefused(tlb, addr, size);
            }
        }
        assertTrue(refused > 50, "refused=" + refused);
        assertArrayEquals(before, ram.ramSegment().toArray(ValueLayout.JAVA_BYTE), "misaligned atomics wrote nothing");
    }

    /**
     * ROM (cached for reads), MMIO, a hole and a read-only alias of RAM: every atomic is refused, the device never
     * called, nothing written; the RAM behind the alias stays writable by atomics at its own address.
     */
    @Test
    void atomicsOnRomMmioHolesAndReadOnlyMappingsAreRefused() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion rom = system.rom("rom", 0x1000);
        MemoryRegion ram = system.ram("ram", 0x1000);
        MemoryRegion alias = system.alias("ram-ro", ram, 0, 0x1000);
        alias.setReadonly(true);
        int[] deviceCalls = new int[1];
        system.transaction(() -> {
            root.addSubregion(0x1000, rom);
            root.addSubregion(0x2000, system.io("dev", 0x1000, MemoryRegionOps.builder()
                    .read((addr, size) -> {
                        deviceCalls[0]++;
                        return 0x5555;
                    })
                    .write((addr, data, size) -> deviceCalls[0]++)
                    .build()));
            root.addSubregion(0x4000, ram);
            root.addSubregion(0x5000, alias);
        });
        AddressSpace as = system.addressSpace("as", root);
        byte[] image = new byte[0x1000];
        new Random(3).nextBytes(image);
        as.writeRom(0x1000, U, image, 0, image.length);
        TlbAccess tlb = open(as);
        assertEquals(ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN).getLong(8), tlb.ldqLe(0x1008));
        assertEquals(0, tlb.ldqLe(0x5008));
        for (long addr : new long[] {0x1008, 0x2008, 0x9000, 0x5008}) {
            for (int size : ATOMIC_SIZES) {
                assertRefused(tlb, addr, size);
            }
        }
        assertEquals(0, deviceCalls[0], "no device was called");
        assertArrayEquals(image, rom.ramSegment().toArray(ValueLayout.JAVA_BYTE));
        assertEquals(0, ram.ramSegment().get(ValueLayout.JAVA_LONG, 8), "nothing written through the read-only alias");
        assertEquals(0, tlb.atomicFetchOp(AtomicOp.FETCH_ADD, 0x4008, 5, 8, false));
        assertEquals(5, tlb.ldqLe(0x5008));
        assertEquals(MemTxResult.OK, tlb.takeResult());
    }

    /**
     * An atomic into a page that VGA logs marks it as a store does, after a take again (the TLB re-armed), and a
     * compare-and-exchange that did not match marks nothing: the bits name exactly the pages atomics wrote to since
     * the last take.
     */
    @Test
    void atomicsIntoLoggedPagesAreMarkedAsStoresAfterEveryTake() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x8000);
        root.addSubregion(0x10_0000, ram);
        AddressSpace as = system.addressSpace("as", root);
        ram.setLog(true, DirtyMemoryClient.VGA);
        TlbAccess tlb = open(as);
        ram.snapshotAndClearDirty(0, 0x8000, DirtyMemoryClient.VGA);
        for (int round = 0; round < 4; round++) {
            for (int size : ATOMIC_SIZES) {
                long page = 0x1000L * (1 + (round % 3));
                long addr = 0x10_0000 + page + 8L * round;
                long old = tlb.atomicFetchOp(AtomicOp.FETCH_ADD, addr, 1, size, false);
                assertTrue(ram.getDirty(page, 0x1000, DirtyMemoryClient.VGA), "round=" + round);
                tlb.atomicFetchOp(AtomicOp.FETCH_ADD, addr, 1, size, false); // a hit where the fence allows it
                DirtySnapshot taken = ram.snapshotAndClearDirty(0, 0x8000, DirtyMemoryClient.VGA);
                assertEquals(1, taken.dirtyPageCount(), "round=" + round + " size=" + size);
                assertEquals(old + 2, tlb.atomicCmpxchg(addr, old, 0, size, false), "round=" + round);
                assertFalse(ram.getDirty(0, 0x8000, DirtyMemoryClient.VGA), "a compare that failed marks nothing");
                assertEquals(old + 2, tlb.atomicCmpxchg(addr, old + 2, old + 3, size, false));
                assertTrue(ram.getDirty(page, 0x1000, DirtyMemoryClient.VGA), "re-armed after the take: round="
                        + round + " size=" + size);
                assertEquals(1, ram.snapshotAndClearDirty(0, 0x8000, DirtyMemoryClient.VGA).dirtyPageCount());
            }
        }
        assertEquals(MemTxResult.OK, tlb.takeResult());
    }

    /**
     * An atomic into protected code is reported as a store of its bytes (ram_addr and size), through the TLB whose
     * write entry was cached before the page was protected; one that stored nothing (a compare that failed) is not;
     * every later atomic into the still protected page is reported again.
     */
    @Test
    void atomicsIntoProtectedCodeAreReportedAsStores() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x8000);
        root.addSubregion(0x10_0000, ram);
        AddressSpace as = system.addressSpace("as", root);
        ram.setLog(true, DirtyMemoryClient.CODE);
        CodeProtection cp = CodeProtection.of(system);
        List<long[]> reports = new ArrayList<>();
        cp.addListener((ramAddr, length) -> reports.add(new long[] {ramAddr, length}));
        TlbAccess tlb = open(as);
        long code = 0x10_4000;
        tlb.stqLe(code + 0x40, 0); // the write entry is cached, fast, before anyone protects the page
        assertEquals(0, tlb.atomicFetchOp(AtomicOp.FETCH_ADD, code + 0x40, 1, 8, false));
        assertTrue(reports.isEmpty(), "unprotected code pages report nothing");
        long ramAddr = new SoftTlb(as).protectCode(code);
        for (int i = 0; i < 3; i++) {
            assertEquals(1 + i, tlb.atomicFetchOp(AtomicOp.FETCH_ADD, code + 0x40, 1, 8, false));
            assertEquals(2 * i + 1, reports.size(), "i=" + i);
            assertArrayEquals(new long[] {ramAddr + 0x40, 8}, reports.get(2 * i));
            assertEquals(0, tlb.atomicCmpxchg(code + 0x80 + 4 * i, 99, 4, 4, true));
            assertEquals(2 * i + 1, reports.size(), "a compare that failed wrote nothing");
            assertEquals(0, tlb.atomicCmpxchg(code + 0x80 + 4 * i, 0, 4, 4, true));
            assertEquals(2 * i + 2, reports.size());
            assertArrayEquals(new long[] {ramAddr + 0x80 + 4 * i, 4}, reports.get(2 * i + 1));
        }
        assertEquals(4, ldAs(as, code + 0x40, 8, false));
        assertEquals(4, ldAs(as, code + 0x88, 4, true));
        assertEquals(MemTxResult.OK, tlb.takeResult());
    }
}
