package dev.guestmem.memory.contract;

import java.util.Map;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.DmaMapping;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionCache;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamFlag;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.SharedSecrets;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The contract every RAM backend keeps, written once and run against each (Agrona's {@code MutableDirectBufferTests}
 * style): guest reads and writes through an address space and a soft TLB, bulk copies, dirty logging, resize,
 * discard (contents and resident memory), what the block reports, and freeing: once, with a kept segment refusing
 * access and an owned fd closed. memory-core's Arena RAM extends it in memory-core, memory-offheap's backends from
 * memory-core's test-jar (this package is memory-core's tests' own, so the jar splits no package).
 */
public abstract class RamBlockContractTest {
    protected static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    /** Bytes of each region: two 2 MiB huge pages. */
    protected static final long SIZE = 4L << 20;
    protected static final long BASE = 0x4000_0000L;

    protected final MemorySystem sys = new MemorySystem();
    protected final MemoryRegion root = sys.container("system", U64.SIZE_2_64);

    /** Frees what each test made, so that huge pages and mappings do not wait for the garbage collector. */
    @AfterEach
    void destroyRegions() {
        for (MemoryRegion mr : new ArrayList<>(root.subregions())) {
            root.delSubregion(mr);
            mr.destroy();
        }
        sys.rcu().barrier();
    }

    /** The backend under test; called once per region. */
    protected abstract MemorySystem.RamAllocator backend();

    /** What the block's flags must be. */
    protected abstract Set<RamFlag> expectedFlags();

    /**
     * Whether a discard gives memory back to the host in a way {@link #residentBytes} measures; a backend that says
     * so must measure.
     */
    protected boolean returnsMemory() {
        return true;
    }

    /**
     * Bytes of {@code segment}'s pages that are resident (mincore), or -1 where this test cannot tell: memory-core
     * has no native calls, so only a backend module that has them measures.
     */
    protected long residentBytes(MemorySegment segment) {
        return -1;
    }

    /** Whether the RAM is read-only (a file mapped PROT_READ). */
    protected boolean readonly() {
        return false;
    }

    /** The byte at block offset {@code offset} of new RAM: zeros, or the file's contents. */
    protected byte initialByte(long offset) {
        return 0;
    }

    /** The byte at block offset {@code offset} after a discard: zeros, or the file's contents for private mappings. */
    protected byte discardedByte(long offset) {
        return 0;
    }

    /** Whether a shrink of resizeable RAM discards the tail (the Arena backend keeps it, as QEMU does). */
    protected boolean shrinkDiscards() {
        return true;
    }

    protected long expectedPageSize() {
        return 4096;
    }

    /**
     * Whether another process could truncate the memory (a file, an fd without {@code F_SEAL_SHRINK}), so that
     * memory-core guards every access to it and bounces DMA instead of handing the memory out.
     */
    protected boolean mayFault() {
        return false;
    }

    /** Whether the block has an fd, and whether it owns (and so closes) it. */
    protected boolean hasFd() {
        return false;
    }

    protected boolean ownsFd() {
        return hasFd();
    }

    /**
     * What else the backend's own module can check once {@code block}, whose memory began at native address
     * {@code address}, is freed (its mapping gone, a second free doing nothing); nothing here.
     */
    protected void checkFreed(RamBlock block, long address) {
    }

    private AddressSpace mapped(MemoryRegion ram) {
        root.addSubregion(BASE, ram);
        return sys.addressSpace("memory", root);
    }

    @Test
    void readsAndWritesThroughTheAddressSpaceAndASoftTlb() {
        MemoryRegion ram = sys.ram("ram", SIZE, backend());
        AddressSpace as = mapped(ram);
        SoftTlb tlb = new SoftTlb(as);
        long[] offsets = {0, 8, 0xff8, 0xffc, 0x1000, SIZE / 2 + 0x123, SIZE - 8};
        for (long off : offsets) {
            long expected = initialLong(off);
            assertEquals(expected, as.ldqLe(BASE + off, U, null), "offset=" + U64.hex(off));
            assertEquals(expected, tlb.ldqLe(BASE + off), "offset=" + U64.hex(off));
        }
        if (readonly()) {
            assertTrue(ram.isReadonly());
            as.stqLe(BASE + 0x100, 0x1122334455667788L, U);
            tlb.stqLe(BASE + 0x200, 0x1122334455667788L);
            assertEquals(initialLong(0x100), as.ldqLe(BASE + 0x100, U, null), "a store to read-only RAM is dropped");
            assertEquals(initialLong(0x200), tlb.ldqLe(BASE + 0x200));
            assertThrows(IllegalArgumentException.class,
                    () -> ram.ramSegment().set(ValueLayout.JAVA_BYTE, 0, (byte) 1), "the segment refuses writes");
            return;
        }
        for (long off : offsets) {
            long v = 0x0102030405060708L ^ off;
            assertEquals(MemTxResult.OK, as.stqLe(BASE + off, v, U));
            assertEquals(v, tlb.ldqLe(BASE + off));
            tlb.stqLe(BASE + off, ~v);
            assertEquals(~v, as.ldqLe(BASE + off, U, null));
            assertEquals(~v, ram.ramSegment().get(ValueLayout.JAVA_LONG_UNALIGNED, off));
        }
        assertEquals(MemTxResult.OK, tlb.result());
    }

    private long initialLong(long off) {
        return littleEndianLong(this::initialByte, off);
    }

    /** The little-endian 8 bytes at {@code off} of memory whose bytes {@code bytes} gives. */
    private static long littleEndianLong(java.util.function.LongFunction<Byte> bytes, long off) {
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = v << 8 | (bytes.apply(off + i) & 0xff);
        }
        return v;
    }

    @Test
    void bulkCopiesCrossPagesBothWays() {
        MemoryRegion ram = sys.ram("ram", SIZE, backend());
        AddressSpace as = mapped(ram);
        byte[] data = new byte[3 * 4096 + 123];
        long at = 0x1ff0_0 + 5;
        if (!readonly()) {
            new Random(8).nextBytes(data);
            assertEquals(MemTxResult.OK, as.write(BASE + at, U, data, 0, data.length));
        } else {
            for (int i = 0; i < data.length; i++) {
                data[i] = initialByte(at + i);
            }
        }
        byte[] back = new byte[data.length];
        assertEquals(MemTxResult.OK, as.read(BASE + at, U, back, 0, back.length));
        assertArrayEquals(data, back);
        byte[] host = ram.ramSegment().asSlice(at, data.length).toArray(ValueLayout.JAVA_BYTE);
        assertArrayEquals(data, host, "the guest's bytes are the host memory's bytes");
    }

    @Test
    void dmaMappingsAndCachesReachTheBackendsMemory() {
        MemoryRegion ram = sys.ram("ram", SIZE, backend());
        AddressSpace as = mapped(ram);
        assertEquals(mayFault(), SharedSecrets.coreAccess().ramMayFault(ram), "the block says whether it may fault");
        // RAM another process may truncate is bounced (the budget is one 4 KiB page), never handed to a device.
        long len = mayFault() ? 0x1000 : 0x2000;
        long at = 0x5000 - len;
        if (readonly()) {
            DmaMapping read = as.map(BASE + at, len, false, U);
            assertEquals(mayFault(), read.isBounce(), "bounced only if it may fault");
            assertEquals(initialLong(0x4ff8), read.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, len - 8));
            as.unmap(read, false, len);
            return;
        }
        DmaMapping dma = as.map(BASE + at, len, true, U);
        assertEquals(mayFault(), dma.isBounce(), "mapped in place unless it may fault");
        if (!mayFault()) {
            assertEquals(ram.ramSegment().address() + at, dma.segment().address());
        }
        dma.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, len - 8, 0x5566778899aabbccL);
        as.unmap(dma, true, len);
        assertEquals(0x5566778899aabbccL, as.ldqLe(BASE + 0x4ff8, U, null));

        MemoryRegionCache cache = as.cacheInit(BASE + SIZE - 0x1000, 0x1000, true);
        assertEquals(MemTxResult.OK, cache.stqLe(0xff8, 0x0102030405060708L, U));
        assertEquals(0x0102030405060708L, ram.ramSegment().get(ValueLayout.JAVA_LONG_UNALIGNED, SIZE - 8));
        cache.destroy();
    }

    @Test
    void dirtyLoggingSeesGuestWrites() {
        assumeFalse(readonly(), "read-only RAM is never written");
        MemoryRegion ram = sys.ram("ram", SIZE, backend());
        AddressSpace as = mapped(ram);
        ram.setLog(true, DirtyMemoryClient.VGA);
        ram.resetDirty(0, SIZE, DirtyMemoryClient.VGA);
        as.stlLe(BASE + 3 * 4096 + 4, 1, U);
        byte[] block = new byte[4096];
        as.write(BASE + 7 * 4096, U, block, 0, block.length);
        for (long page = 0; page < 10; page++) {
            assertEquals(page == 3 || page == 7, ram.getDirty(page * 4096, 4096, DirtyMemoryClient.VGA),
                    "page " + page);
        }
    }

    @Test
    void discardGivesMemoryBackAndReadsBackAsADiscardShould() {
        MemoryRegion ram = sys.ram("ram", SIZE, backend());
        AddressSpace as = mapped(ram);
        AbstractRamBlock block = (AbstractRamBlock) ram.ramBlock();
        for (long off = 0; off < SIZE; off += 4096) {
            if (readonly()) {
                as.ldqLe(BASE + off, U, null);
            } else {
                as.stqLe(BASE + off, ~off, U);
            }
        }
        long before = residentBytes(ram.ramSegment());
        long half = SIZE / 2;
        block.discardRange(half, half);
        long after = residentBytes(ram.ramSegment());
        if (before >= 0) {
            System.out.printf("%s: resident %d KiB before the discard of %d KiB, %d KiB after%n",
                    getClass().getSimpleName(), before >> 10, half >> 10, after >> 10);
        }
        if (returnsMemory()) {
            assertTrue(before >= SIZE - 4096, "before=" + before + " (-1: not measured)");
            assertTrue(after <= before - half, "before=" + before + " after=" + after);
        }
        for (long off = 0; off < SIZE; off += 4096 * 7 + 8) {
            long expected = off >= half ? discardedLong(off) : readonly() ? initialLong(off) : ~(off & -4096L);
            long actual = as.ldqLe(BASE + off, U, null);
            if ((off & 4095) != 0 && off < half && !readonly()) {
                expected = initialLong(off); // only the first word of each page was written
            }
            assertEquals(expected, actual, "offset=" + U64.hex(off));
        }
        if (!readonly()) {
            as.stqLe(BASE + half, 42, U);
            assertEquals(42, as.ldqLe(BASE + half, U, null), "discarded memory is populated again by a write");
        }
    }

    private long discardedLong(long off) {
        return littleEndianLong(this::discardedByte, off);
    }

    @Test
    void resizeNeverMovesTheMemoryAndAShrinkGivesBackTheTail() {
        assumeFalse(readonly(), "read-only RAM is not resized");
        MemoryRegion ram = sys.resizeableRam("fw", SIZE / 2, SIZE, null, backend());
        AddressSpace as = mapped(ram);
        MemorySegment seg = ram.ramSegment();
        assertEquals(SIZE, seg.byteSize(), "the max length is mapped up front");
        ram.ramResize(SIZE);
        assertSame(seg, ram.ramSegment());
        for (long off = 0; off < SIZE; off += 4096) {
            as.stqLe(BASE + off, off | 1, U);
        }
        long before = residentBytes(seg);
        ram.ramResize(SIZE / 4);
        long after = residentBytes(seg);
        assertEquals(SIZE / 4, ram.ramBlock().usedLength());
        assertNotEquals(MemTxResult.OK, as.stqLe(BASE + SIZE / 2, 1, U), "beyond the new size is unassigned");
        if (returnsMemory()) {
            long page = ram.ramBlock().pageSize();
            long kept = (SIZE / 4 + page - 1) & -page; // a huge page is given back whole or not at all
            assertTrue(after <= before - (SIZE - kept), "before=" + before + " after=" + after);
        }
        ram.ramResize(SIZE);
        assertEquals(SIZE / 4 - 4096 | 1, as.ldqLe(BASE + SIZE / 4 - 4096, U, null), "the kept part keeps its bytes");
        assertEquals(shrinkDiscards() ? discardedLong(SIZE / 2) : SIZE / 2 | 1, as.ldqLe(BASE + SIZE / 2, U, null),
                "the tail was discarded, or kept where the backend cannot give it back");
    }

    @Test
    void theBlockReportsItsFdPageSizeAndFlags() {
        MemoryRegion ram = sys.ram("ram", SIZE, backend());
        mapped(ram);
        RamBlock b = ram.ramBlock();
        assertEquals(hasFd(), b.fd() >= 0, "fd=" + b.fd());
        assertEquals(b.fd(), ram.getFd());
        if (hasFd()) {
            assertTrue(ProcFs.isOpen(b.fd()));
        } else {
            assertEquals(0, b.fdOffset());
        }
        assertEquals(expectedPageSize(), b.pageSize());
        assertEquals(expectedFlags(), b.flags());
        long base = b.hostSegment().address();
        assertEquals(0, base % expectedPageSize(), "base=" + U64.hex(base));
        assertEquals(SIZE - 1, b.hostOffset(base + SIZE - 1));
    }

    @Test
    void destroyFreesOnceUnmapsAndClosesAnOwnedFd() {
        MemorySystem.RamAllocator backend = backend();
        Map<Integer, String> fdsBefore = ProcFs.openFdTargets();
        MemoryRegion ram = sys.ram("ram", SIZE, backend);
        AddressSpace as = mapped(ram);
        if (!readonly()) {
            as.stqLe(BASE + 0x1000, 5, U);
        }
        MemorySegment kept = ram.ramSegment();
        RamBlock b = ram.ramBlock();
        int fd = b.fd();
        long address = kept.address();
        assertTrue(ProcFs.isMapped(address));
        root.delSubregion(ram);
        ram.destroy();
        sys.rcu().barrier();
        assertTrue(((AbstractRamBlock) b).isReleased());
        assertThrows(IllegalStateException.class, () -> kept.get(ValueLayout.JAVA_LONG, 0x1000),
                "a segment kept past the free refuses access");
        assertThrows(IllegalStateException.class, () -> ((AbstractRamBlock) b).discardRange(0, b.pageSize()));
        if (fd >= 0) {
            assertEquals(!ownsFd(), ProcFs.isOpen(fd), "fd=" + fd);
        }
        assertEquals(Map.of(), ProcFs.openedSince(fdsBefore), "fds opened since before the RAM, after its free");
        checkFreed(b, address);
    }
}
