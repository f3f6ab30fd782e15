package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.access.Accesses;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.Test;

/**
 * The checked soft TLB: the contract both TLBs keep ({@link TlbContractTest}), and what is its own: every access checks
 * the view, so every kind of remapping commit (and a romd toggle) is seen by the very next access and a commit that
 * changes nothing visible flushes nothing; flushes of all or one page; the split between instruction fetches and data
 * in either target byte order; the {@code NOTDIRTY} mark of write entries (the CODE client's use of it is
 * {@link CodeProtectionTest}); accesses that allocate nothing; its sizes.
 */
class SoftTlbTest extends TlbContractTest {
    @Override
    TlbAccess open(AddressSpace as) {
        return TlbAccess.of(new SoftTlb(as));
    }

    @Override
    TlbAccess open(AddressSpace as, int entries) {
        return TlbAccess.of(new SoftTlb(as, entries, U));
    }

    // ---------------------------------------------------------------- invalidation

    /**
     * A ROM device: in romd mode reads and fetches are cached and stores go to its ops; toggling romd mode publishes
     * a new view, so the next read reaches the ops, and switching back caches again.
     */
    @Test
    void romdToggleInvalidates() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        Accesses.ByteDevice dev = new Accesses.ByteDevice(0x1000);
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

    /** Every kind of remapping commit is seen by the very next access, hit or not. */
    @Test
    void theNextAccessAfterARemapSeesTheNewMap() {
        MemorySystem system = new MemorySystem();
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
        MemorySystem system = new MemorySystem();
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
        MemorySystem system = new MemorySystem();
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
        MemorySystem system = new MemorySystem();
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
        LongSupplier allocatedBytes = ThreadAllocation.counter();

        MemorySystem system = new MemorySystem();
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
        long before = allocatedBytes.getAsLong();
        sink += allocationRounds(tlb, 100_000);
        long allocated = allocatedBytes.getAsLong() - before;
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
        MemorySystem system = new MemorySystem();
        AddressSpace as = system.addressSpace("as", system.container("root", U64.SIZE_2_64));
        for (int bad : new int[] {0, -1, 3, 1000, SoftTlb.MAX_ENTRIES * 2}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new SoftTlb(as, bad, U));
            assertTrue(e.getMessage().startsWith("entries=" + bad), e.getMessage());
        }
        assertEquals(1, new SoftTlb(as, 1, U).entries());
        assertEquals(SoftTlb.DEFAULT_ENTRIES, new SoftTlb(as).entries());
    }

    /** A one-entry TLB: every page evicts the last; values stay right. */
}
