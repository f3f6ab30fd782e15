package dev.guestmem.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Anonymous guest RAM in an automatic {@link Arena}: zeroed at allocation, page aligned, and freed by the garbage
 * collector only once nothing can reach the segment any more, so a reader holding an old view can never see freed
 * memory. (QEMU's {@code qemu_ram_alloc} with anonymous memory.)
 */
final class ArenaRamBlock implements RamBlock {
    private static final long PAGE_ALIGNMENT = 4096;

    private final String idstr;
    private final MemorySegment segment;

    ArenaRamBlock(String idstr, long size) {
        if (size <= 0) {
            throw new IllegalArgumentException("name=" + idstr + " size=" + U64.sizeHex(size)
                    + ": anonymous RAM must be between 1 byte and 2^63-1 bytes");
        }
        this.idstr = idstr;
        this.segment = Arena.ofAuto().allocate(size, PAGE_ALIGNMENT);
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
