package dev.guestmem.memory;

import static dev.guestmem.memory.internal.access.Accesses.ORDERS;
import static dev.guestmem.memory.internal.access.Accesses.WIDTHS;
import static dev.guestmem.memory.internal.access.Accesses.bytes;
import static dev.guestmem.memory.internal.access.Accesses.fillPattern;
import static dev.guestmem.memory.internal.access.Accesses.ld;
import static dev.guestmem.memory.internal.access.Accesses.st;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.access.Accesses.ByteDevice;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.Test;

/**
 * {@link MemoryRegionCache} against QEMU 7.2's address_space_cache_init and the *_cached accessors
 * (softmmu/physmem.c, include/exec/memory_ldst_cached.h.inc): what a cache covers, direct caches agreeing with the
 * address space's own ld/st, indirect caches reaching the device on every access, and clean failures for misuse.
 */
class MemoryRegionCacheTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static long mask(int size) {
        return size == 8 ? -1L : (1L << (8 * size)) - 1;
    }

    private record Machine(MemorySystem system, MemoryRegion root, AddressSpace as) {
        static Machine create() {
            MemorySystem system = new MemorySystem();
            MemoryRegion root = system.container("root", U64.SIZE_2_64);
            return new Machine(system, root, system.addressSpace("as", root));
        }
    }

    // ---------------------------------------------------------------- direct caches

    @Test
    void cacheOverRamAgreesWithTheAddressSpaceLoadsAndStores() {
        Machine m = Machine.create();
        MemoryRegion ram = m.system.ram("ram", 0x1000);
        m.root.addSubregion(0x4000, ram);
        fillPattern(ram.ramSegment(), 5);
        MemoryRegionCache c = m.as.cacheInit(0x4100, 0x40, true);
        assertTrue(c.isDirect());
        assertEquals(0x40, c.length());
        assertSame(ram, c.region());
        assertEquals(0x100, c.regionOffset());
        int[] r1 = new int[1];
        int[] r2 = new int[1];
        Random rnd = new Random(42);
        for (int size : WIDTHS) {
            for (ByteOrder order : ORDERS) {
                for (int off = 0; off + size <= 0x40; off++) {
                    r1[0] = -1;
                    r2[0] = -1;
                    assertEquals(ld(m.as, 0x4100 + off, size, order, r2), ld(c, off, size, order, r1),
                            "load size=" + size + " order=" + order + " off=" + off);
                    assertEquals(MemTxResult.OK, r1[0]);
                    assertEquals(MemTxResult.OK, r2[0]);
                    long v = rnd.nextLong();
                    assertEquals(MemTxResult.OK, st(c, off, size, order, v));
                    assertEquals(v & mask(size), ld(m.as, 0x4100 + off, size, order, null));
                    long w = rnd.nextLong();
                    assertEquals(MemTxResult.OK, st(m.as, 0x4100 + off, size, order, w));
                    assertEquals(w & mask(size), ld(c, off, size, order, null));
                }
            }
        }
        // Bulk copies, both kinds of buffer.
        byte[] out = new byte[0x40];
        assertEquals(MemTxResult.OK, c.read(0, out, 0, 0x40));
        byte[] want = new byte[0x40];
        m.as.read(0x4100, U, want, 0, 0x40);
        assertArrayEquals(want, out);
        byte[] in = new byte[0x20];
        rnd.nextBytes(in);
        assertEquals(MemTxResult.OK, c.write(0x10, in, 0, 0x20));
        assertArrayEquals(in, bytes(ram.ramSegment(), 0x110, 0x20));
        MemorySegment seg = MemorySegment.ofArray(new byte[0x20]);
        assertEquals(MemTxResult.OK, c.read(0x10, seg, 0, 0x20));
        assertArrayEquals(in, seg.toArray(ValueLayout.JAVA_BYTE));
        assertEquals(MemTxResult.OK, c.write(0, MemorySegment.ofArray(new byte[8]), 0, 8));
        assertEquals(0, m.as.ldqLe(0x4100, U, null));
    }

    /**
     * A RAM region that starts and ends inside pages is several dispatch sections (head subpage, whole pages, tail
     * subpage); QEMU's flatview_extend_translation carries a direct cache over all of them, and stops where another
     * region begins.
     */
    @Test
    void directCacheCoversEverySectionOfTheRegionAndStopsAtTheNextRegion() {
        Machine m = Machine.create();
        MemoryRegion ram = m.system.ram("ram", 0x2400);
        MemoryRegion other = m.system.ram("other", 0x1000);
        m.system.transaction(() -> {
            m.root.addSubregion(0x4800, ram);
            m.root.addSubregion(0x6c00, other);
        });
        AddressSpaceDispatch d = m.as.dispatch();
        assertTrue(d.clipToSection(d.sectionIndex(0x4800), 0x4800, 0x10000) < 0x2400, "the region is split");
        MemoryRegionCache c = m.as.cacheInit(0x4800, 0x10000, false);
        assertTrue(c.isDirect());
        assertEquals(0x2400, c.length());
        MemoryRegionCache mid = m.as.cacheInit(0x5000, 0x100, false);
        assertEquals(0x100, mid.length());
        assertEquals(0x800, mid.regionOffset());
    }

    /** Two aliases that continue one another in the same RAM: one region, consecutive offsets, one cache. */
    @Test
    void directCacheRunsOnAcrossRangesOfTheSameRegionAtConsecutiveOffsets() {
        Machine m = Machine.create();
        MemoryRegion ram = m.system.ram("ram", 0x4000);
        MemoryRegion a = m.system.alias("a", ram, 0x1000, 0x1000);
        MemoryRegion b = m.system.alias("b", ram, 0x2000, 0x1000);
        b.setReadonly(true); // keeps the two ranges from being merged into one
        m.system.transaction(() -> {
            m.root.addSubregion(0x10000, a);
            m.root.addSubregion(0x11000, b);
        });
        assertEquals(2, m.as.flatView().ranges().size());
        MemoryRegionCache c = m.as.cacheInit(0x10800, 0x2000, false);
        assertTrue(c.isDirect());
        assertEquals(0x1800, c.length());
        assertEquals(0x1800, c.regionOffset());
    }

    @Test
    void romIsDirectForReadingButNotForWriting() {
        Machine m = Machine.create();
        MemoryRegion rom = m.system.rom("rom", 0x100);
        m.root.addSubregion(0x1000, rom);
        byte[] image = new byte[0x100];
        new Random(1).nextBytes(image);
        m.as.writeRom(0x1000, U, image, 0, image.length);

        MemoryRegionCache read = m.as.cacheInit(0x1000, 0x100, false);
        assertTrue(read.isDirect());
        assertEquals(m.as.ldlLe(0x1010, U, null), read.ldlLe(0x10, U, null));
        // Stores on a cache made for reading are refused, never written into the ROM.
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> read.stlLe(0x10, 1, U));
        assertTrue(e.getMessage().contains("made for reading"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> read.write(0, new byte[1], 0, 1));
        assertThrows(IllegalStateException.class, () -> read.invalidate(0, 1));

        // A write cache over ROM is indirect (QEMU's memory_access_is_direct(mr, true) is false), reads the ROM in
        // place and drops stores with QEMU's unassigned ops.
        MemoryRegionCache write = m.as.cacheInit(0x1000, 0x100, true);
        assertFalse(write.isDirect());
        assertEquals(0x100, write.length());
        int[] r = {-1};
        assertEquals(m.as.ldqBe(0x1008, U, null), write.ldqBe(8, U, r));
        assertEquals(MemTxResult.OK, r[0]);
        assertEquals(MemTxResult.DECODE_ERROR, write.stlLe(0, 0x12345678, U));
        assertEquals(MemTxResult.DECODE_ERROR, write.write(0, new byte[6], 0, 6));
        byte[] back = new byte[0x100];
        assertEquals(MemTxResult.OK, write.read(0, back, 0, 0x100));
        assertArrayEquals(image, back);
    }

    // ---------------------------------------------------------------- indirect caches

    @Test
    void cacheOverMmioReachesTheDeviceOnEveryAccess() {
        Machine m = Machine.create();
        ByteDevice dev = new ByteDevice(0x100);
        MemoryRegion io = m.system.io("dev", 0x100, dev.ops());
        m.root.addSubregion(0x2000, io);
        MemoryRegionCache c = m.as.cacheInit(0x2010, 0x20, true);
        assertFalse(c.isDirect());
        assertEquals(0x20, c.length());
        assertSame(io, c.region());
        int[] r = {-1};
        assertEquals(0x93929190L, c.ldlLe(0, U, r) & 0xffff_ffffL);
        assertEquals(MemTxResult.OK, r[0]);
        assertEquals(0x90919293L, c.ldlBe(0, U, r) & 0xffff_ffffL);
        assertEquals(List.of("R16/4", "R16/4"), dev.calls);
        dev.calls.clear();
        // An 8-byte load to a device with the default impl max of 4 arrives as two calls, as on QEMU.
        c.ldqLe(8, U, r);
        assertEquals(List.of("R24/4", "R28/4"), dev.calls);
        dev.calls.clear();
        assertEquals(MemTxResult.OK, c.stwLe(2, 0xbeef, U));
        assertEquals(List.of("W18/2"), dev.calls);
        assertEquals((byte) 0xef, dev.regs[18]);
        assertEquals((byte) 0xbe, dev.regs[19]);
        dev.calls.clear();
        // Bulk copies split as QEMU's read/write loops do: the largest access the offset's alignment allows.
        byte[] buf = new byte[7];
        assertEquals(MemTxResult.OK, c.read(1, buf, 0, 7));
        assertEquals(List.of("R17/1", "R18/2", "R20/4"), dev.calls);
        dev.calls.clear();
        assertEquals(MemTxResult.OK, c.write(0x10, new byte[] {1, 2, 3, 4, 5, 6}, 0, 6));
        assertEquals(List.of("W32/4", "W36/2"), dev.calls);
        assertEquals(6, dev.regs[37]);
    }

    /**
     * QEMU's cache_init clips the length to the dispatch section at addr even for MMIO: an I/O region that starts
     * inside a page is a head subpage section up to the page's end.
     */
    @Test
    void indirectCacheStopsAtItsDispatchSection() {
        Machine m = Machine.create();
        ByteDevice dev = new ByteDevice(0x1000);
        m.root.addSubregion(0x1800, m.system.io("dev", 0x1000, dev.ops()));
        MemoryRegionCache c = m.as.cacheInit(0x1800, 0x1000, false);
        assertFalse(c.isDirect());
        assertEquals(0x800, c.length());
        MemoryRegionCache tail = m.as.cacheInit(0x2000, 0x1000, false);
        assertEquals(0x800, tail.length());
        assertEquals(0x800, tail.regionOffset());
        tail.ldub(0, U, null);
        assertEquals(List.of("R2048/1"), dev.calls);
    }

    /**
     * A cache over a hole keeps QEMU's unassigned section, which covers the whole space: every access is a decode
     * error, even at offsets where something is mapped, because the cache reaches the section it was made on.
     */
    @Test
    void cacheOverAHoleIsUnassignedThroughout() {
        Machine m = Machine.create();
        MemoryRegion ram = m.system.ram("ram", 0x1000);
        m.root.addSubregion(0x1000, ram);
        MemoryRegionCache c = m.as.cacheInit(0, 0x2000, true);
        assertFalse(c.isDirect());
        assertSame(m.system.unassignedRegion(), c.region());
        assertEquals(0x2000, c.length());
        int[] r = {-1};
        assertEquals(0, c.ldlLe(0, U, r));
        assertEquals(MemTxResult.DECODE_ERROR, r[0]);
        assertEquals(0, c.ldlLe(0x1000, U, r));
        assertEquals(MemTxResult.DECODE_ERROR, r[0]);
        assertEquals(MemTxResult.DECODE_ERROR, c.stlLe(0x1000, -1, U));
        assertEquals(0, ram.ramSegment().get(ValueLayout.JAVA_INT, 0));
    }

    @Test
    void romDeviceInRomdModeIsDirectForReadingAndCallsTheDeviceForWriting() {
        Machine m = Machine.create();
        ByteDevice dev = new ByteDevice(0x100);
        MemoryRegion flash = m.system.romDevice("flash", 0x100, dev.ops());
        m.root.addSubregion(0x8000, flash);
        flash.ramSegment().set(ValueLayout.JAVA_INT_UNALIGNED, 4, 0x11223344);
        MemoryRegionCache read = m.as.cacheInit(0x8000, 0x100, false);
        assertTrue(read.isDirect());
        assertEquals(0x11223344, read.ldlLe(4, U, null));
        MemoryRegionCache write = m.as.cacheInit(0x8000, 0x100, true);
        assertFalse(write.isDirect());
        assertEquals(0x11223344, write.ldlLe(4, U, null));
        assertEquals(List.of(), dev.calls);
        write.stb(4, 0x55, U);
        assertEquals(List.of("W4/1"), dev.calls);
    }

    // ---------------------------------------------------------------- misuse

    @Test
    void accessesOutsideTheCacheFailWithTheirCoordinates() {
        Machine m = Machine.create();
        m.root.addSubregion(0, m.system.ram("ram", 0x1000));
        m.root.addSubregion(0x1000, m.system.io("dev", 0x100, new ByteDevice(0x100).ops()));
        for (MemoryRegionCache c : List.of(m.as.cacheInit(0x100, 0x10, true), m.as.cacheInit(0x1000, 0x10, true))) {
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> c.ldqLe(9, U, null));
            assertTrue(e.getMessage().startsWith("offset=9 len=8 cacheLength=16"), e.getMessage());
            assertThrows(IndexOutOfBoundsException.class, () -> c.ldub(16, U, null));
            assertThrows(IndexOutOfBoundsException.class, () -> c.ldub(-1, U, null));
            assertThrows(IndexOutOfBoundsException.class, () -> c.stlBe(13, 0, U));
            assertThrows(IndexOutOfBoundsException.class, () -> c.stqLe(Long.MIN_VALUE, 0, U));
            assertThrows(IndexOutOfBoundsException.class, () -> c.read(8, new byte[9], 0, 9));
            assertThrows(IndexOutOfBoundsException.class, () -> c.write(17, new byte[0], 0, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> c.invalidate(15, 2));
            // The edges themselves are fine.
            c.ldqLe(8, U, null);
            c.ldub(15, U, null);
            assertEquals(MemTxResult.OK, c.read(16, new byte[0], 0, 0));
            c.invalidate(0, 16);
        }
        assertThrows(IllegalArgumentException.class, () -> m.as.cacheInit(0, 0, false));
        assertThrows(IllegalArgumentException.class, () -> m.as.cacheInit(0, -1, false));
    }

    @Test
    void aDestroyedCacheFailsCleanlyAndCanBeDestroyedAgain() {
        Machine m = Machine.create();
        m.root.addSubregion(0, m.system.ram("ram", 0x1000));
        m.root.addSubregion(0x1000, m.system.io("dev", 0x100, new ByteDevice(0x100).ops()));
        for (MemoryRegionCache c : List.of(m.as.cacheInit(0x100, 0x10, true), m.as.cacheInit(0x1000, 0x10, true))) {
            c.destroy();
            assertTrue(c.isDestroyed());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> c.ldlLe(0, U, null));
            assertTrue(e.getMessage().startsWith("access after destroy: MemoryRegionCache[as=as addr=0x"),
                    e.getMessage());
            assertThrows(IllegalStateException.class, () -> c.stqBe(0, 0, U));
            assertThrows(IllegalStateException.class, () -> c.read(0, new byte[4], 0, 4));
            assertThrows(IllegalStateException.class, () -> c.write(0, MemorySegment.ofArray(new byte[4]), 0, 4));
            assertThrows(IllegalStateException.class, () -> c.invalidate(0, 4));
            c.destroy();
        }
    }

    /**
     * A cache keeps the section it was made on, as QEMU's keeps its FlatView and region referenced: after the RAM is
     * unmapped the cache still reaches it (memory-safe, and stale), and isStale says so.
     */
    @Test
    void aCacheKeepsItsMemoryAcrossMapChangesAndSaysItIsStale() {
        Machine m = Machine.create();
        MemoryRegion ram = m.system.ram("ram", 0x1000);
        m.root.addSubregion(0, ram);
        MemoryRegionCache c = m.as.cacheInit(0, 0x1000, true);
        assertFalse(c.isStale());
        c.stlLe(0x20, 0xcafe, U);
        m.root.delSubregion(ram);
        assertTrue(c.isStale());
        assertEquals(0, m.as.ldlLe(0x20, U, null));
        assertEquals(0xcafe, c.ldlLe(0x20, U, null));
        assertEquals(0xcafe, ram.ramSegment().get(ValueLayout.JAVA_INT_UNALIGNED, 0x20));
    }

    /**
     * Warm cache accesses allocate nothing, direct or indirect (measured as AccessAllocationTest does: the thread's
     * allocation counter over 100,000 rounds after a warm-up).
     */
    @Test
    void warmCacheAccessesDoNotAllocate() throws ReflectiveOperationException {
        LongSupplier allocatedBytes = ThreadAllocation.counter();

        Machine m = Machine.create();
        m.root.addSubregion(0, m.system.ram("ram", 0x1000));
        m.root.addSubregion(0x1000, m.system.io("dev", 0x100, MemoryRegionOps.builder()
                .read((addr, size) -> addr)
                .write((addr, data, size) -> { })
                .build()));
        MemoryRegionCache ram = m.as.cacheInit(0, 0x1000, true);
        MemoryRegionCache io = m.as.cacheInit(0x1000, 0x100, true);
        byte[] buf = new byte[64];
        int[] r = new int[1];
        long sink = run(ram, io, buf, r, 50_000);
        long before = allocatedBytes.getAsLong();
        sink += run(ram, io, buf, r, 100_000);
        long allocated = allocatedBytes.getAsLong() - before;
        assertTrue(sink != 42);
        assertTrue(allocated < 256 * 1024, "allocated=" + allocated + " bytes over 800,000 accesses");
    }

    private static long run(MemoryRegionCache ram, MemoryRegionCache io, byte[] buf, int[] r, int rounds) {
        long sink = 0;
        for (int i = 0; i < rounds; i++) {
            long off = (i * 8L) & 0xff;
            sink += ram.ldqLe(off, U, r);
            ram.stlBe(off, i, U);
            sink += ram.read(off, buf, 0, 64);
            ram.invalidate(off, 4);
            sink += io.ldlLe(off & 0xfc, U, r);
            sink += io.stwLe(off, i, U);
            sink += io.read(0x80, buf, 0, 16);
            sink += io.write(0x80, buf, 0, 16);
        }
        return sink;
    }

    /**
     * Readers on several threads use one direct and one indirect cache while the owner destroys them. Forbidden: any
     * outcome other than a correct value or {@link IllegalStateException} (no NullPointerException, no wrong value,
     * no other exception).
     */
    @Test
    void accessesRacingWithDestroyEitherCompleteOrFailCleanly() throws InterruptedException {
        for (int round = 0; round < 20; round++) {
            Machine m = Machine.create();
            MemoryRegion ram = m.system.ram("ram", 0x1000);
            m.root.addSubregion(0, ram);
            m.root.addSubregion(0x1000, m.system.io("dev", 0x100, MemoryRegionOps.builder()
                    .read((addr, size) -> 0x5a).build()));
            ram.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x40, 0x1122_3344_5566_7788L);
            MemoryRegionCache direct = m.as.cacheInit(0, 0x1000, true);
            MemoryRegionCache indirect = m.as.cacheInit(0x1000, 0x100, true);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread[] readers = new Thread[2];
            for (int t = 0; t < readers.length; t++) {
                readers[t] = new Thread(() -> {
                    boolean directGone = false;
                    boolean indirectGone = false;
                    for (int i = 0; i < 200_000 && !(directGone && indirectGone); i++) {
                        try {
                            if (!directGone && direct.ldqLe(0x40, U, null) != 0x1122_3344_5566_7788L) {
                                failure.compareAndSet(null, new AssertionError("wrong direct value"));
                            }
                        } catch (IllegalStateException e) {
                            directGone = true;
                        }
                        try {
                            if (!indirectGone && indirect.ldub(3, U, null) != 0x5a) {
                                failure.compareAndSet(null, new AssertionError("wrong indirect value"));
                            }
                        } catch (IllegalStateException e) {
                            indirectGone = true;
                        }
                    }
                });
                readers[t].setUncaughtExceptionHandler((th, e) -> failure.compareAndSet(null, e));
                readers[t].start();
            }
            Thread.sleep(1);
            direct.destroy();
            indirect.destroy();
            for (Thread r : readers) {
                r.join();
            }
            assertEquals(null, failure.get());
        }
    }
}
