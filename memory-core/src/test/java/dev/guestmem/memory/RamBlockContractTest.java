package dev.guestmem.memory;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@link RamBlock} contract, written once and run against every RAM backend (as Agrona's
 * {@code MutableDirectBufferTests}): each backend's test extends this class and names its allocator. A block fresh
 * from the allocator is unplaced, its segment is exactly {@code maxLength()} bytes, its used length fits inside;
 * a memory system places it in the ram_addr space; guest writes land in the host segment at the block-relative
 * offset; {@code hostOffset} maps host addresses back and refuses foreign ones; {@code discardRange} leaves the
 * range reading as the backend's discarded contents and refuses unaligned ranges; and once the region is destroyed
 * and a grace period has passed, the memory is freed and an access to the segment fails cleanly.
 */
public abstract class RamBlockContractTest {
    /** Bytes of the regions the contract makes: several host pages of any backend's page size. */
    protected static final long SIZE = 4L << 20;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    /** For the backends' tests to extend. */
    protected RamBlockContractTest() {
    }

    /** The backend under test. */
    protected abstract MemorySystem.RamAllocator allocator();

    /** Whether new memory reads as zeros (anonymous memory); backends over existing files override it. */
    protected boolean startsZeroed() {
        return true;
    }

    /** The bytes a discarded page reads as afterwards; zeros unless the backend maps a file privately. */
    protected byte[] afterDiscard(byte[] before) {
        return new byte[before.length];
    }

    @Test
    void aFreshBlockIsUnplacedAndItsSegmentIsMaxLengthLong() {
        RamBlock b = allocator().allocate("fresh", SIZE);
        try {
            assertEquals("fresh", b.idstr());
            assertEquals(AbstractRamBlock.UNPLACED, b.offset());
            assertTrue(b.maxLength() >= SIZE, () -> "maxLength=" + b.maxLength());
            assertTrue(b.usedLength() > 0 && b.usedLength() <= b.maxLength(), () -> "usedLength=" + b.usedLength());
            assertEquals(b.maxLength(), b.hostSegment().byteSize());
            assertThrows(UnsupportedOperationException.class, () -> b.flags().add(RamFlag.SHARED));
            long page = b.pageSize();
            assertTrue(page > 0 && (page & (page - 1)) == 0, () -> "pageSize=" + page);
            assertTrue(b.fd() >= 0 || b.fdOffset() == 0, "a block without an fd has fd offset 0");
        } finally {
            ((AbstractRamBlock) b).freeMemory(); // nobody else has seen it
        }
    }

    @Test
    void guestWritesLandInTheHostSegmentAtTheBlockOffset() {
        MemorySystem sys = new MemorySystem(allocator());
        MemoryRegion root = sys.container("root", U64.SIZE_2_64);
        MemoryRegion ram = sys.ram("ram", SIZE);
        root.addSubregion(0x1_0000_0000L, ram);
        AddressSpace as = sys.addressSpace("as", root);
        RamBlock b = ram.ramBlock();
        assertTrue(b.offset() != AbstractRamBlock.UNPLACED, "a memory system places its blocks");
        MemorySegment host = b.hostSegment();
        if (startsZeroed()) {
            assertEquals(0, host.get(ValueLayout.JAVA_LONG, SIZE - 8));
        }
        assertEquals(MemTxResult.OK, as.stqLe(0x1_0000_0000L + 0x1238, 0x1122_3344_5566_7788L, U));
        assertEquals(0x1122_3344_5566_7788L,
                host.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0x1238));
        host.set(ValueLayout.JAVA_BYTE, SIZE - 1, (byte) 0x5a);
        int[] r = {-1};
        assertEquals(0x5a, as.ldub(0x1_0000_0000L + SIZE - 1, U, r));
        assertEquals(MemTxResult.OK, r[0]);
        assertEquals(0x1238, b.hostOffset(host.address() + 0x1238));
        assertThrows(IllegalArgumentException.class, () -> b.hostOffset(host.address() + b.maxLength()));
        assertThrows(IllegalArgumentException.class, () -> b.hostOffset(host.address() - 1));
    }

    @Test
    void aDiscardedRangeReadsAsTheBackendSaysAndUnalignedOnesAreRefused() {
        MemorySystem sys = new MemorySystem(allocator());
        MemoryRegion ram = sys.ram("ram", SIZE);
        AbstractRamBlock b = (AbstractRamBlock) ram.ramBlock();
        long page = b.pageSize();
        MemorySegment host = b.hostSegment();
        byte[] before = new byte[(int) page];
        host.asSlice(page, page).fill((byte) 0x77);
        host.asSlice(2 * page, page).fill((byte) 0x66);
        MemorySegment.copy(host, ValueLayout.JAVA_BYTE, page, before, 0, before.length);
        b.discardRange(page, page);
        byte[] after = new byte[(int) page];
        MemorySegment.copy(host, ValueLayout.JAVA_BYTE, page, after, 0, after.length);
        assertArrayEquals(afterDiscard(before), after);
        assertEquals(0x66, host.get(ValueLayout.JAVA_BYTE, 2 * page), "the next page is not discarded");
        assertThrows(IllegalArgumentException.class, () -> b.discardRange(1, page));
        assertThrows(IllegalArgumentException.class, () -> b.discardRange(0, b.maxLength() + page));
    }

    @Test
    void destroyFreesTheMemoryAfterAGracePeriod() {
        MemorySystem sys = new MemorySystem(allocator());
        MemoryRegion ram = sys.ram("ram", SIZE);
        AbstractRamBlock b = (AbstractRamBlock) ram.ramBlock();
        MemorySegment kept = b.hostSegment();
        kept.set(ValueLayout.JAVA_LONG, 8, 42);
        assertFalse(b.isReleased());
        ram.destroy();
        sys.rcu().barrier();
        assertTrue(b.isReleased());
        assertThrows(IllegalStateException.class, () -> kept.get(ValueLayout.JAVA_LONG, 8));
    }
}
