package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
 * The soft TLB against the address space's own ld/st and a {@link ByteBuffer} model: RAM at every width, byte order
 * and alignment, including page-crossing accesses; MMIO, ROM, read-only aliases and ROM devices, which must behave as
 * through the address space except that a CPU store never writes through a read-only mapping; invalidation by
 * commits; the split between instruction fetches and data; and the {@code NOTDIRTY} mark of write entries (the
 * CODE client's use of it is {@link CodeProtectionTest}).
 */
class SoftTlbTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final int[] WIDTHS = {1, 2, 4, 8};
    private static final ByteOrder[] ORDERS = {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN};

    static long tlbLd(SoftTlb tlb, long addr, int size, ByteOrder order) {
        boolean big = order == ByteOrder.BIG_ENDIAN;
        return switch (size) {
            case 1 -> tlb.ldub(addr);
            case 2 -> big ? tlb.lduwBe(addr) : tlb.lduwLe(addr);
            case 4 -> (big ? tlb.ldlBe(addr) : tlb.ldlLe(addr)) & 0xffff_ffffL;
            default -> big ? tlb.ldqBe(addr) : tlb.ldqLe(addr);
        };
    }

    static void tlbSt(SoftTlb tlb, long addr, int size, ByteOrder order, long v) {
        boolean big = order == ByteOrder.BIG_ENDIAN;
        switch (size) {
            case 1 -> tlb.stb(addr, (int) v);
            case 2 -> {
                if (big) {
                    tlb.stwBe(addr, (int) v);
                } else {
                    tlb.stwLe(addr, (int) v);
                }
            }
            case 4 -> {
                if (big) {
                    tlb.stlBe(addr, (int) v);
                } else {
                    tlb.stlLe(addr, (int) v);
                }
            }
            default -> {
                if (big) {
                    tlb.stqBe(addr, v);
                } else {
                    tlb.stqLe(addr, v);
                }
            }
        }
    }

    static long modelLd(ByteBuffer model, int off, int size) {
        return switch (size) {
            case 1 -> model.get(off) & 0xffL;
            case 2 -> model.getShort(off) & 0xffffL;
            case 4 -> model.getInt(off) & 0xffff_ffffL;
            default -> model.getLong(off);
        };
    }

    static void modelSt(ByteBuffer model, int off, int size, long v) {
        switch (size) {
            case 1 -> model.put(off, (byte) v);
            case 2 -> model.putShort(off, (short) v);
            case 4 -> model.putInt(off, (int) v);
            default -> model.putLong(off, v);
        }
    }

    static MemorySystem system() {
        return new MemorySystem();
    }

    // ---------------------------------------------------------------- RAM

    /**
     * A guest loop of loads and stores through a TLB of 8 entries (so pages evict each other) over 16 pages of RAM,
     * at 1 KiB, 4 KiB and 64 KiB pages: every value agrees with the address space's ld and with a ByteBuffer holding
     * what the stores wrote, at aligned, unaligned and page-crossing addresses; every result is OK.
     */
    @Test
    void guestLoopOverRamAgreesWithAddressSpaceAndByteBuffer() {
        for (int pageBits : new int[] {10, 12, 16}) {
            int pageSize = 1 << pageBits;
            int size = 16 * pageSize;
            long base = 0x1_0000_0000L;
            MemorySystem system = system();
            MemoryRegion root = system.container("root", U64.SIZE_2_64);
            MemoryRegion ram = system.ram("ram", size);
            root.addSubregion(base, ram);
            AddressSpace as = system.addressSpace("as", root, pageBits);
            SoftTlb tlb = new SoftTlb(as, 8, U);
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
                if (off + width > size) {
                    off = size - width;
                }
                long addr = base + off;
                String where = "pageBits=" + pageBits + " off=0x" + Integer.toHexString(off) + " width=" + width
                        + " " + order;
                if (rnd.nextBoolean()) {
                    long v = rnd.nextLong();
                    tlbSt(tlb, addr, width, order, v);
                    modelSt(model, off, width, v);
                } else {
                    long want = modelLd(model, off, width);
                    assertEquals(want, tlbLd(tlb, addr, width, order), where);
                    assertEquals(want, AccessPathTest.ld(as, addr, width, order, r), where);
                }
                accesses++;
                assertEquals(MemTxResult.OK, tlb.takeResult(), where);
            }
            assertArrayEquals(bytes, ram.ramSegment().toArray(ValueLayout.JAVA_BYTE), "pageBits=" + pageBits);
            // Half the accesses are aligned, and half of those find their page among the 8 cached.
            assertTrue(tlb.missCount() < accesses * 9 / 10, "misses=" + tlb.missCount() + " of " + accesses);
        }
    }

    /** Every width, order and start offset across one page boundary, loads and stores, against the model. */
    @Test
    void everyOffsetAcrossAPageBoundary() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x2000);
        root.addSubregion(0x7000, ram);
        AddressSpace as = system.addressSpace("as", root);
        SoftTlb tlb = new SoftTlb(as);
        byte[] bytes = new byte[0x2000];
        for (int size : WIDTHS) {
            for (ByteOrder order : ORDERS) {
                ByteBuffer model = ByteBuffer.wrap(bytes).order(order);
                for (int off = 0xff0; off <= 0x1008; off++) {
                    AccessPathTest.fillPattern(ram.ramSegment(), off + size);
                    MemorySegment.copy(ram.ramSegment(), ValueLayout.JAVA_BYTE, 0, bytes, 0, bytes.length);
                    String where = "off=0x" + Integer.toHexString(off) + " size=" + size + " " + order;
                    assertEquals(modelLd(model, off, size), tlbLd(tlb, 0x7000 + off, size, order), where);
                    long v = 0x0123_4567_89ab_cdefL * (off + 1);
                    tlbSt(tlb, 0x7000 + off, size, order, v);
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
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.ram("ram", 0x4000));
        SoftTlb tlb = new SoftTlb(system.addressSpace("as", root));
        long sum = 0;
        for (int round = 0; round < 3; round++) {
            for (long a = 0; a < 0x4000; a += 8) {
                tlb.stqLe(a, a);
                sum += tlb.ldqLe(a) + tlb.ldlBe(a) + tlb.lduwLe(a) + tlb.ldub(a);
            }
        }
        assertTrue(sum != 0);
        // The first store of each page fills its read and write parts together.
        assertEquals(4, tlb.missCount());
    }

    // ---------------------------------------------------------------- what is never cached

    /**
     * MMIO through the TLB reaches the device on every access (values, results and the calls the device sees are the
     * address space's), at every width, order and offset, including ones the device refuses.
     */
    @Test
    void mmioReachesTheDeviceEveryTimeWithTheAddressSpacesResults() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        AccessPathTest.ByteDevice viaTlb = new AccessPathTest.ByteDevice(0x40);
        AccessPathTest.ByteDevice viaAs = new AccessPathTest.ByteDevice(0x40);
        // Two identical devices, one per path: 2- and 4-byte accesses only, aligned, implemented as 1..4 bytes.
        root.addSubregion(0x1000, system.io("dev-tlb", 0x40, opsOf(viaTlb)));
        root.addSubregion(0x2000, system.io("dev-as", 0x40, opsOf(viaAs)));
        AddressSpace as = system.addressSpace("as", root);
        SoftTlb tlb = new SoftTlb(as);
        int[] r = new int[1];
        int calls = 0;
        for (int round = 0; round < 2; round++) {
            for (int size : WIDTHS) {
                for (ByteOrder order : ORDERS) {
                    for (int off = 0; off < 12; off++) {
                        String where = "off=" + off + " size=" + size + " " + order;
                        long misses = tlb.missCount();
                        assertEquals(AccessPathTest.ld(as, 0x2000 + off, size, order, r),
                                tlbLd(tlb, 0x1000 + off, size, order), where);
                        assertEquals(r[0], tlb.takeResult(), where);
                        long v = 0x1122_3344_5566_7788L + off;
                        int want = AccessPathTest.st(as, 0x2000 + off, size, order, v);
                        tlbSt(tlb, 0x1000 + off, size, order, v);
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

    private static MemoryRegionOps opsOf(AccessPathTest.ByteDevice dev) {
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
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.ram("ram", 0x1000));
        SoftTlb tlb = new SoftTlb(system.addressSpace("as", root));
        for (long addr : new long[] {0x1000, 0x5000_0000L, -8L}) {
            assertEquals(0, tlb.ldqLe(addr));
            assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
            tlb.stlLe(addr, 1);
            assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
            assertEquals(0, tlb.ldlCode(addr));
            assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
        }
        assertEquals(9, tlb.missCount());
        // Results are sticky until taken, OR-ed over accesses.
        tlb.ldub(0x2000);
        tlb.ldub(0);
        assertEquals(MemTxResult.DECODE_ERROR, tlb.result());
        assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
        assertEquals(MemTxResult.OK, tlb.takeResult());
    }

    /** A page shared by RAM and a device (QEMU's subpage) is never cached; its RAM part is still read right. */
    @Test
    void pagesSharedBySectionsAreNeverCached() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x1000);
        root.addSubregion(0, ram);
        root.addSubregionOverlap(0x800, system.io("dev", 0x100, MemoryRegionOps.builder()
                .read((addr, size) -> 0x5a5a_5a5a_5a5a_5a5aL)
                .write((addr, data, size) -> { })
                .build()), 1);
        AddressSpace as = system.addressSpace("as", root);
        SoftTlb tlb = new SoftTlb(as);
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
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion rom = system.rom("rom", 0x2000);
        root.addSubregion(0xf_e000, rom);
        AddressSpace as = system.addressSpace("as", root);
        byte[] image = new byte[0x2000];
        new Random(7).nextBytes(image);
        as.writeRom(0xf_e000, U, image, 0, image.length);
        SoftTlb tlb = new SoftTlb(as);
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
                    int want = AccessPathTest.st(as, 0xf_e000 + off, size, order, -1L);
                    tlbSt(tlb, 0xf_e000 + off, size, order, -1L);
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
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x4000);
        MemoryRegion alias = system.alias("ram-ro", ram, 0x1000, 0x2000);
        alias.setReadonly(true);
        root.addSubregion(0, ram);
        root.addSubregion(0x10_0000, alias);
        AddressSpace as = system.addressSpace("as", root);
        SoftTlb tlb = new SoftTlb(as);
        ram.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x1008, 0x1122_3344_5566_7788L);
        assertEquals(0x1122_3344_5566_7788L, tlb.ldqLe(0x10_0008));
        for (int size : WIDTHS) {
            for (ByteOrder order : ORDERS) {
                for (int off = 0; off < 16; off++) {
                    tlbSt(tlb, 0x10_0000 + off, size, order, 0);
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

    /** RAM made read-only itself: TLB stores are dropped with DECODE_ERROR, exactly as through the address space. */
    @Test
    void readOnlyRamDropsStoresWithTheAddressSpacesResult() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x1000);
        root.addSubregion(0, ram);
        AddressSpace as = system.addressSpace("as", root);
        SoftTlb tlb = new SoftTlb(as);
        tlb.stlLe(0x10, 1);
        ram.setReadonly(true);
        assertEquals(MemTxResult.DECODE_ERROR, as.stlLe(0x10, 2, U));
        tlb.stlLe(0x10, 3);
        assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
        assertEquals(1, tlb.ldlLe(0x10));
        ram.setReadonly(false);
        tlb.stlLe(0x10, 4);
        assertEquals(MemTxResult.OK, tlb.takeResult());
        assertEquals(4, tlb.ldlLe(0x10));
    }

    /**
     * A ROM device: in romd mode reads and fetches are cached and stores go to its ops; toggling romd mode publishes
     * a new view, so the next read reaches the ops, and switching back caches again.
     */
    @Test
    void romdToggleInvalidates() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        AccessPathTest.ByteDevice dev = new AccessPathTest.ByteDevice(0x1000);
        MemoryRegion flash = system.romDevice("flash", 0x1000, dev.ops());
        root.addSubregion(0xfff0_0000L, flash);
        AddressSpace as = system.addressSpace("as", root);
        flash.ramSegment().fill((byte) 0x5a);
        SoftTlb tlb = new SoftTlb(as);
        for (int i = 0; i < 4; i++) {
            assertEquals(0x5a5a_5a5a, tlb.ldlLe(0xfff0_0010L));
        }
        assertEquals(1, tlb.missCount());
        tlb.stwLe(0xfff0_0010L, 0xbeef);
        assertEquals(List.of("W16/2"), dev.calls, "romd writes go to the ops");
        assertEquals(0x5a5a_5a5a, tlb.ldlLe(0xfff0_0010L), "and not to the RAM");

        flash.setRomd(false);
        dev.calls.clear();
        assertEquals(0xbeef, tlb.lduwLe(0xfff0_0010L));
        assertEquals(0xbeef, tlb.lduwLe(0xfff0_0010L));
        assertEquals(0xbeef, tlb.lduwCode(0xfff0_0010L));
        assertEquals(List.of("R16/2", "R16/2", "R16/2"), dev.calls, "out of romd mode every read reaches the ops");

        flash.setRomd(true);
        dev.calls.clear();
        long misses = tlb.missCount();
        assertEquals(0x5a5a, tlb.lduwLe(0xfff0_0010L));
        assertEquals(0x5a5a, tlb.lduwLe(0xfff0_0010L));
        assertEquals(List.of(), dev.calls);
        assertEquals(misses + 1, tlb.missCount());
    }

    // ---------------------------------------------------------------- invalidation

    /** Every kind of remapping commit is seen by the very next access, hit or not. */
    @Test
    void theNextAccessAfterARemapSeesTheNewMap() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion a = system.ram("a", 0x2000);
        MemoryRegion b = system.ram("b", 0x2000);
        a.ramSegment().fill((byte) 0xaa);
        b.ramSegment().fill((byte) 0xbb);
        MemoryRegion dev = system.io("dev", 0x2000, MemoryRegionOps.builder()
                .read((addr, size) -> 0xddd)
                .write((addr, data, size) -> { })
                .build());
        MemoryRegion window = system.alias("window", a, 0, 0x1000);
        root.addSubregion(0x10000, a);
        root.addSubregion(0x40000, window);
        AddressSpace as = system.addressSpace("as", root);
        SoftTlb tlb = new SoftTlb(as);
        long aa = 0xaaaa_aaaa_aaaa_aaaaL;
        long bb = 0xbbbb_bbbb_bbbb_bbbbL;
        warm(tlb, 0x10000, aa);
        warm(tlb, 0x40000, aa);

        a.setAddress(0x20000);                                   // move
        assertEquals(0, tlb.ldqLe(0x10000));
        assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
        warm(tlb, 0x20000, aa);

        a.setEnabled(false);                                     // disable
        assertEquals(0, tlb.ldqLe(0x20000));
        assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
        a.setEnabled(true);
        warm(tlb, 0x20000, aa);

        system.transaction(() -> {                               // replace RAM with MMIO
            root.delSubregion(a);
            root.addSubregion(0x20000, dev);
        });
        assertEquals(0xddd, tlb.ldlLe(0x20000));
        assertEquals(MemTxResult.OK, tlb.takeResult());
        tlb.stqLe(0x20008, 5);
        assertEquals(MemTxResult.OK, tlb.takeResult());
        assertEquals(aa, a.ramSegment().get(ValueLayout.JAVA_LONG_UNALIGNED, 8), "the store went to the device");

        system.transaction(() -> {                               // replace MMIO with other RAM
            root.delSubregion(dev);
            root.addSubregion(0x20000, b);
        });
        warm(tlb, 0x20000, bb);

        window.setAliasOffset(0x1000);                           // an alias window moved over its target
        a.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x1000, 77);
        assertEquals(77, tlb.ldqLe(0x40000));
        tlb.stqLe(0x40008, 78);
        assertEquals(78, a.ramSegment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x1008));
        assertEquals(aa, a.ramSegment().get(ValueLayout.JAVA_LONG_UNALIGNED, 8));

        window.setReadonly(true);                                // a writable page became read-only
        tlb.stqLe(0x40008, 79);
        assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
        assertEquals(78, a.ramSegment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x1008));
    }

    /** Loads, a store and a fetch at {@code addr}, twice, so that the second round hits. */
    private static void warm(SoftTlb tlb, long addr, long want) {
        for (int i = 0; i < 2; i++) {
            assertEquals(want, tlb.ldqLe(addr));
            assertEquals(want, tlb.ldqCode(addr));
            tlb.stqLe(addr + 0x100, want);
        }
        assertEquals(MemTxResult.OK, tlb.takeResult());
    }

    /**
     * A commit that changes nothing visible keeps the view and the generation, and flushes nothing: the next accesses
     * still hit. A commit that does change the view moves the generation and flushes.
     */
    @Test
    void aCommitThatChangesNothingVisibleDoesNotFlush() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x1000);
        MemoryRegion hidden = system.ram("hidden", 0x1000);
        MemoryRegion unmapped = system.ram("unmapped", 0x1000);
        root.addSubregion(0, ram);
        AddressSpace as = system.addressSpace("as", root);
        SoftTlb tlb = new SoftTlb(as);
        tlb.stqLe(0, 1);
        assertEquals(1, tlb.ldqLe(0));
        long generation = as.generation();
        FlatView view = as.flatView();
        long misses = tlb.missCount();
        long flushes = tlb.flushCount();

        system.transaction(() -> { });
        system.transaction(() -> {
            ram.setEnabled(false);
            ram.setEnabled(true);
        });
        unmapped.setReadonly(true);
        system.transaction(() -> {                               // added and removed under a higher priority
            root.addSubregionOverlap(0, hidden, -1);
            root.delSubregion(hidden);
        });

        assertEquals(generation, as.generation());
        assertSame(view, as.flatView());
        assertEquals(1, tlb.ldqLe(0));
        tlb.stqLe(0, 2);
        assertEquals(misses, tlb.missCount(), "still hits");
        assertEquals(flushes, tlb.flushCount());

        root.addSubregion(0x1000, unmapped);                     // a visible change elsewhere in the map
        assertNotEquals(generation, as.generation());
        assertEquals(2, tlb.ldqLe(0));
        assertEquals(flushes + 1, tlb.flushCount());
        assertEquals(misses + 1, tlb.missCount());
    }

    @Test
    void flushAndFlushPage() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.ram("ram", 0x4000));
        SoftTlb tlb = new SoftTlb(system.addressSpace("as", root));
        for (long a = 0; a < 0x4000; a += 0x1000) {
            tlb.stqLe(a, a);
            tlb.ldlCode(a);
        }
        assertEquals(8, tlb.missCount());
        tlb.flushPage(0x2abc);
        tlb.ldqLe(0x2000);
        tlb.stqLe(0x2000, 0);
        tlb.ldlCode(0x2000);
        tlb.ldqLe(0x1000);
        assertEquals(10, tlb.missCount(), "the data part refills for both, the code part once");
        tlb.flush();
        for (long a = 0; a < 0x4000; a += 0x1000) {
            tlb.ldqLe(a);
        }
        assertEquals(14, tlb.missCount());
        assertEquals(1, tlb.flushCount());
    }

    // ---------------------------------------------------------------- fetches, dirty hook, construction

    /** A fetch fills only the code part and a data access only the data parts; fetches use the target's order. */
    @Test
    void fetchesAndDataHaveSeparateTags() {
        for (boolean bigEndian : new boolean[] {false, true}) {
            MemorySystem system = new MemorySystem(MemorySystem.ANONYMOUS_RAM, bigEndian);
            MemoryRegion root = system.container("root", U64.SIZE_2_64);
            MemoryRegion ram = system.ram("ram", 0x2000);
            root.addSubregion(0, ram);
            SoftTlb tlb = new SoftTlb(system.addressSpace("as", root));
            ram.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN), 0x10,
                    0x0102_0304_0506_0708L);
            long q = bigEndian ? 0x0102_0304_0506_0708L : 0x0807_0605_0403_0201L;
            assertEquals(q, tlb.ldqCode(0x10));
            assertEquals((int) (q >>> (bigEndian ? 32 : 0)), tlb.ldlCode(0x10));
            assertEquals(bigEndian ? 0x0102 : 0x0201, tlb.lduwCode(0x10));
            assertEquals(1, tlb.ldubCode(0x10));
            assertEquals(1, tlb.missCount(), "one fill of the code part");
            assertEquals(0x0807_0605_0403_0201L, tlb.ldqLe(0x10));
            assertEquals(2, tlb.missCount(), "the fetch did not fill the read part");
            assertEquals(0x0807_0605_0403_0201L, tlb.ldqLe(0x10));
            tlb.ldqCode(0x1010);
            tlb.ldqCode(0x1010);
            tlb.ldqLe(0x1010);
            assertEquals(4, tlb.missCount(), "the load did not use the code part");
            // A fetch that is not aligned, or crosses a page, is still right.
            assertEquals(bigEndian ? 0x0203_0405 : 0x0504_0302, tlb.ldlCode(0x11));
            assertEquals(MemTxResult.OK, tlb.takeResult());
        }
    }

    /**
     * {@code NOTDIRTY} on a page nobody logs (what {@code markWriteSlow} makes): every store to it leaves the fast path
     * and still lands; loads keep hitting; a flush clears the mark. No client logs CODE here, so the mark stays.
     */
    @Test
    void markedPagesSendStoresToTheSlowPath() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x3000);
        root.addSubregion(0, ram);
        SoftTlb tlb = new SoftTlb(system.addressSpace("as", root));
        tlb.stqLe(0x1000, 1);
        tlb.markWriteSlow(0x1abc);
        long misses = tlb.missCount();
        for (int i = 0; i < 10; i++) {
            tlb.stqLe(0x1000 + 8 * i, i);
            assertEquals(i, tlb.ldqLe(0x1000 + 8 * i));
        }
        tlb.stlBe(0x1ffe, 0x01020304);                           // crossing out of the marked page
        assertEquals(misses + 11, tlb.missCount());
        assertEquals(0x0102, ram.ramSegment().get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN),
                0x1ffe));
        assertEquals(MemTxResult.OK, tlb.takeResult());
        tlb.flush();
        tlb.stqLe(0x1000, 1);
        tlb.stqLe(0x1000, 2);
        assertEquals(misses + 12, tlb.missCount());
    }

    /**
     * Accesses allocate nothing once warm, hits and every slow path alike: RAM misses (two pages in one entry),
     * unaligned and page-crossing accesses, MMIO, holes, ROM stores, discarded stores through a read-only alias, and
     * stores to a page with translated code, each reported. Measured as in {@link AccessAllocationTest}.
     */
    @Test
    void accessesDoNotAllocate() throws ReflectiveOperationException {
        Object bean = Class.forName("java.lang.management.ManagementFactory").getMethod("getThreadMXBean")
                .invoke(null);
        Class<?> sunBean = Class.forName("com.sun.management.ThreadMXBean");
        org.junit.jupiter.api.Assumptions.assumeTrue(sunBean.isInstance(bean), "no per-thread allocation counter");
        sunBean.getMethod("setThreadAllocatedMemoryEnabled", boolean.class).invoke(bean, true);
        java.lang.reflect.Method allocatedBytes = sunBean.getMethod("getCurrentThreadAllocatedBytes");

        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x2000);
        root.addSubregion(0, ram);
        root.addSubregion(0x1_0000, system.alias("mirror", ram, 0, 0x1000));
        root.addSubregion(0x2000, system.io("dev", 0x100, MemoryRegionOps.builder()
                .read((addr, size) -> addr)
                .write((addr, data, size) -> { })
                .build()));
        root.addSubregion(0x3000, system.rom("rom", 0x1000));
        MemoryRegion ro = system.alias("ro", ram, 0x1000, 0x1000);
        ro.setReadonly(true);
        root.addSubregion(0x2_0000, ro);
        ram.setLog(true, DirtyMemoryClient.CODE);
        long[] reports = new long[1];
        CodeProtection.of(system).addListener((ramAddr, length) -> reports[0] += length);
        CodeProtection.of(system).protect(ram.ramBlock().offset() + 0x1000, 0x1000);
        SoftTlb tlb = new SoftTlb(system.addressSpace("as", root), 2, U);

        long sink = allocationRounds(tlb, 50_000);
        long before = (Long) allocatedBytes.invoke(bean);
        sink += allocationRounds(tlb, 100_000);
        long allocated = (Long) allocatedBytes.invoke(bean) - before;
        assertTrue(sink != 42);
        assertEquals(150_000 * 4, reports[0], "every store to the code page reported");
        assertTrue(allocated < 256 * 1024, "allocated=" + allocated + " bytes over 1.2 million accesses");
    }

    private static long allocationRounds(SoftTlb tlb, int rounds) {
        long sink = 0;
        for (int i = 0; i < rounds; i++) {
            long off = (i * 8L) & 0xff8;
            sink += tlb.ldqLe(off);                                 // hit
            tlb.stqLe(off, i);                                      // hit
            sink += tlb.ldqLe(0x1_0000 + off);                      // evicts page 0 (same entry of 2), and back
            sink += tlb.ldlBe(off + 1);                             // unaligned
            sink += tlb.ldqLe(0xffc);                               // page-crossing
            sink += tlb.ldlCode(off);                               // fetch
            sink += tlb.ldlLe(0x2000 + (off & 0xfc));               // MMIO
            tlb.stwLe(0x2000 + (off & 0xfe), i);
            sink += tlb.ldub(0x9000_0000L);                         // hole
            tlb.stlLe(0x3000 + off, i);                             // ROM store
            tlb.stlLe(0x2_0000 + off, i);                           // discarded
            tlb.stlLe(0x1000 + off, i);                             // translated code: reported
            sink += tlb.takeResult();
        }
        return sink;
    }

    @Test
    void sizesMustBePowersOfTwo() {
        MemorySystem system = system();
        AddressSpace as = system.addressSpace("as", system.container("root", U64.SIZE_2_64));
        for (int bad : new int[] {0, -1, 3, 1000, SoftTlb.MAX_ENTRIES * 2}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new SoftTlb(as, bad, U));
            assertTrue(e.getMessage().startsWith("entries=" + bad), e.getMessage());
        }
        assertEquals(1, new SoftTlb(as, 1, U).entries());
        assertEquals(SoftTlb.DEFAULT_ENTRIES, new SoftTlb(as).entries());
    }

    /** A one-entry TLB: every page evicts the last; values stay right. */
    @Test
    void oneEntryThrashesButStaysRight() {
        MemorySystem system = system();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.ram("ram", 0x3000));
        SoftTlb tlb = new SoftTlb(system.addressSpace("as", root), 1, U);
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
}
