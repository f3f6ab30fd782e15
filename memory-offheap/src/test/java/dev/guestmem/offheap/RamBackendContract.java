package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.contract.RamBlockContractTest;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * memory-core's {@link RamBlockContractTest} as memory-offheap's backends run it: resident memory measured with
 * mincore, and a freed {@link MappedRamBlock} checked for its mapping and for a second free that does nothing.
 */
abstract class RamBackendContract extends RamBlockContractTest {
    /** The content files of file backends hold: a pattern that differs from page to page. */
    static byte pattern(long offset) {
        return (byte) (offset * 31 + (offset >>> 12) + 7);
    }

    @Override
    protected long residentBytes(MemorySegment segment) {
        return ProcSelf.residentBytes(segment);
    }

    @Override
    protected void checkFreed(RamBlock block, long address) {
        if (!(block instanceof MappedRamBlock mapped)) {
            return;
        }
        assertFalse(ProcSelf.isMapped(address), "the mapping is gone");
        MemoryRegion other = sys.ram("other", SIZE, backend());
        root.addSubregion(BASE, other);
        long otherBefore = other.ramSegment().get(ValueLayout.JAVA_LONG, 0);
        mapped.freeMemory(); // a second free does nothing: it must not unmap or close what now lives there
        assertEquals(otherBefore, other.ramSegment().get(ValueLayout.JAVA_LONG, 0));
        if (other.ramBlock().fd() >= 0) {
            assertTrue(ProcSelf.isOpen(other.ramBlock().fd()));
        }
    }
}
