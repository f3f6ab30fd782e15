package dev.guestmem.memory;

/** The {@link RamBlock} contract for anonymous RAM in an {@code Arena}, {@link MemorySystem#ANONYMOUS_RAM}. */
class SegmentRamBlockContractTest extends RamBlockContractTest {
    @Override
    protected MemorySystem.RamAllocator allocator() {
        return MemorySystem.ANONYMOUS_RAM;
    }
}
