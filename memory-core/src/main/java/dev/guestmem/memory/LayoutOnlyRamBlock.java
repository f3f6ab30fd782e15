package dev.guestmem.memory;

import java.lang.foreign.MemorySegment;

/** A block with a size but no memory, for {@link MemorySystem#LAYOUT_ONLY}. */
final class LayoutOnlyRamBlock implements RamBlock {
    private final String idstr;
    private final long size;

    LayoutOnlyRamBlock(String idstr, long size) {
        this.idstr = idstr;
        this.size = size;
    }

    @Override
    public String idstr() {
        return idstr;
    }

    @Override
    public MemorySegment hostSegment() {
        throw new IllegalStateException("block=" + idstr + ": a layout-only memory system has no RAM");
    }

    @Override
    public long usedLength() {
        return size;
    }

    @Override
    public long maxLength() {
        return size;
    }
}
