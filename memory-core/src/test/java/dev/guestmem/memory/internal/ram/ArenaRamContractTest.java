package dev.guestmem.memory.internal.ram;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import dev.guestmem.memory.contract.RamBlockContractTest;
import java.util.Set;

/**
 * The contract on memory-core's own backend, anonymous RAM in an {@code Arena} ({@link SegmentRamBlock}): the
 * reference memory-offheap's backends match.
 */
class ArenaRamContractTest extends RamBlockContractTest {
    @Override
    protected MemorySystem.RamAllocator backend() {
        return MemorySystem.ANONYMOUS_RAM;
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of();
    }

    @Override
    protected boolean returnsMemory() {
        return false; // an Arena's memory is zero-filled on discard, not given back
    }

    @Override
    protected boolean shrinkDiscards() {
        return false;
    }
}
