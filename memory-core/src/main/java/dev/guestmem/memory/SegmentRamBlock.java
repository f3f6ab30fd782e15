package dev.guestmem.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * RAM over a segment: one the caller owns (QEMU's {@code memory_region_init_ram_ptr} and
 * {@code memory_region_init_ram_device_ptr}), which guestmem never frees, or anonymous memory (QEMU's
 * {@code qemu_ram_alloc}) from {@link #anonymous}.
 */
final class SegmentRamBlock implements RamBlock {
    private static final long PAGE_ALIGNMENT = 4096;

    private final String idstr;
    private final MemorySegment segment;

    /**
     * Zeroed, page-aligned memory in an automatic {@link Arena}: freed by the garbage collector only once nothing can
     * reach the segment any more, so a reader holding an old view never sees freed memory.
     */
    static SegmentRamBlock anonymous(String idstr, long size) {
        if (size <= 0) {
            throw new IllegalArgumentException("name=" + idstr + " size=" + U64.sizeHex(size)
                    + ": anonymous RAM must be between 1 byte and 2^63-1 bytes");
        }
        return new SegmentRamBlock(idstr, Arena.ofAuto().allocate(size, PAGE_ALIGNMENT));
    }

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
