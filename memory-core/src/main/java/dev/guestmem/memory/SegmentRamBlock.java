package dev.guestmem.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Set;

/**
 * RAM over a segment: one the caller owns (QEMU's {@code memory_region_init_ram_ptr} and
 * {@code memory_region_init_ram_device_ptr}, flagged {@link RamFlag#PREALLOC}), which guestmem never frees, or
 * anonymous memory (QEMU's {@code qemu_ram_alloc}) from {@link #anonymous}.
 */
final class SegmentRamBlock extends AbstractRamBlock {
    private static final long PAGE_ALIGNMENT = 4096;

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
        return new SegmentRamBlock(idstr, Arena.ofAuto().allocate(size, PAGE_ALIGNMENT), Set.of());
    }

    /** A block over memory the caller owns. */
    static SegmentRamBlock prealloc(String idstr, MemorySegment segment) {
        return new SegmentRamBlock(idstr, segment, Set.of(RamFlag.PREALLOC));
    }

    private SegmentRamBlock(String idstr, MemorySegment segment, Set<RamFlag> flags) {
        super(idstr, segment.byteSize(), flags);
        this.segment = segment;
    }

    @Override
    public MemorySegment hostSegment() {
        return segment;
    }
}
