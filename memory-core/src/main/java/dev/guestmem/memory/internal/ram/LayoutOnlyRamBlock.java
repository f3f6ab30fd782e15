package dev.guestmem.memory.internal.ram;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.MemorySystem;
import java.lang.foreign.MemorySegment;
import java.util.Set;

/**
 * A block with a size but no memory, for {@link MemorySystem#LAYOUT_ONLY}. It still takes its range of the ram_addr
 * space, so maps printed from a layout-only system place their RAM as a real one would.
 */
public final class LayoutOnlyRamBlock extends AbstractRamBlock {
    public LayoutOnlyRamBlock(String idstr, long size) {
        super(idstr, size, Set.of());
    }

    @Override
    protected boolean hasHostMemory() {
        return false;
    }

    @Override
    public MemorySegment hostSegment() {
        throw new IllegalStateException("block=" + idstr() + ": a layout-only memory system has no RAM");
    }
}
