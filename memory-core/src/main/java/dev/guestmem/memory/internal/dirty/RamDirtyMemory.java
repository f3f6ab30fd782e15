package dev.guestmem.memory.internal.dirty;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;

/**
 * QEMU's {@code ram_list.dirty_memory}: one {@link DirtyBitmap} per dirty-memory client over a memory system's whole
 * ram_addr space, one bit per target page, and how they follow the space as blocks are added and resized (the
 * {@link DirtyHook} the system installs in its ram list). Blocks without memory (layout only) are never marked: they
 * are never written, and may be far too large for a bitmap.
 *
 * <p>Threading: the hook's calls come from the ram list's writers; the bitmaps are read and marked by any thread.
 */
public final class RamDirtyMemory implements DirtyHook {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();

    /** Indexed by {@link DirtyMemoryClient#index()}; they only grow. */
    private final DirtyBitmap[] bitmaps;
    /** Tells {@code logClear} listeners about bits a resize clears. */
    private final GlobalDirtyLog log;

    /** Empty bitmaps of pages of {@code 2^targetPageBits} bytes, one per client. */
    public RamDirtyMemory(int targetPageBits, GlobalDirtyLog log) {
        this.log = log;
        this.bitmaps = new DirtyBitmap[DirtyMemoryClient.COUNT];
        for (int c = 0; c < bitmaps.length; c++) {
            bitmaps[c] = new HeapDirtyBitmap(1L << targetPageBits, 0);
        }
    }

    /** The bitmaps, indexed by client: this object's own array, which the write path reads and nobody changes. */
    public DirtyBitmap[] bitmaps() {
        return bitmaps;
    }

    @Override
    public void blockAdded(RamBlock block, long lastRamPage) {
        if (!hasHostMemory(block)) {
            return;
        }
        // QEMU's ram_block_add: the bitmaps grow first, then the new block is dirty for every client.
        for (DirtyBitmap b : bitmaps) {
            if (b.pageCount() < lastRamPage) {
                b.extend(lastRamPage);
            }
            b.setDirtyRange(block.offset(), block.usedLength());
        }
    }

    @Override
    public void usedLengthChanged(RamBlock block, long oldUsedLength, long newUsedLength) {
        if (!hasHostMemory(block)) {
            return;
        }
        // QEMU's qemu_ram_resize: the old used range is cleared, client by client, each clear telling the
        // listeners (logClear, in the view from before the resize); then the new one is dirty for every client.
        for (DirtyBitmap b : bitmaps) {
            b.testAndClearDirty(block.offset(), oldUsedLength);
            log.clearPages(null, block, 0, oldUsedLength);
        }
        for (DirtyBitmap b : bitmaps) {
            b.setDirtyRange(block.offset(), newUsedLength);
        }
    }

    private static boolean hasHostMemory(RamBlock block) {
        return CORE.hasHostMemory((AbstractRamBlock) block);
    }
}
