package dev.guestmem.memory;

import java.lang.foreign.MemorySegment;

/**
 * RAM over a segment the caller owns (QEMU's {@code memory_region_init_ram_ptr} and
 * {@code memory_region_init_ram_device_ptr}): guestmem never frees it.
 */
final class SegmentRamBlock implements RamBlock {
    private final String idstr;
    private final MemorySegment segment;

    SegmentRamBlock(String idstr, MemorySegment segment) {
        this.idstr = idstr;
        this.segment = segment;
    }

    @Override
    public String idstr() {
        return idstr;
    }

    @Override
    public MemorySegment hostSegment() {
        return segment;
    }

    @Override
    public long usedLength() {
        return segment.byteSize();
    }

    @Override
    public long maxLength() {
        return segment.byteSize();
    }
}
