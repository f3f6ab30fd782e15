package dev.guestmem.memory.internal.dirty;

import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamList;

/**
 * Where the memory system's dirty bitmaps follow the ram_addr space. QEMU marks a new block's used range dirty for
 * every client ({@code ram_block_add}) and, on resize, clears the old used range and marks the new one dirty
 * ({@code qemu_ram_resize}); both are done through this hook, which the memory system installs in its
 * {@link RamList} ({@link RamDirtyMemory}). Until then nothing is marked.
 *
 * <p>Threading: called by writers of the list (under its lock for {@link #blockAdded}, as the topology writer for
 * {@link #usedLengthChanged}).
 */
public interface DirtyHook {
    /** Does nothing: no dirty memory is tracked. */
    DirtyHook NONE = new DirtyHook() {
        @Override
        public void blockAdded(RamBlock block, long lastRamPage) {
        }

        @Override
        public void usedLengthChanged(RamBlock block, long oldUsedLength, long newUsedLength) {
        }
    };

    /**
     * {@code block} was placed, before it is published to readers: grow every bitmap to {@code lastRamPage} pages
     * (QEMU's {@code dirty_memory_extend}), then mark {@code [block.offset(), block.offset() + usedLength)} dirty
     * for every client.
     */
    void blockAdded(RamBlock block, long lastRamPage);

    /**
     * {@code block}'s used length changed: clear the dirty bits of the old used range, then mark the new used
     * range dirty for every client.
     */
    void usedLengthChanged(RamBlock block, long oldUsedLength, long newUsedLength);
}
