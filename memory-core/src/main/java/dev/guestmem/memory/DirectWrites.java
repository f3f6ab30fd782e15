package dev.guestmem.memory;

/**
 * What must follow bytes of RAM written straight into a region's host memory by someone who is not the access path,
 * as QEMU's {@code invalidate_and_set_dirty}: a {@link MemoryRegionCache} whose stores are completed by
 * {@link MemoryRegionCache#invalidate}, and a direct {@link DmaMapping} unmapped after a write.
 *
 * <p>Today this does nothing, because guestmem keeps no dirty bitmaps yet. It is the one place where issue 4's dirty
 * tracking hooks in: mark the bytes dirty for every client that logs the region (VGA, CODE, MIGRATION, per the
 * region's dirty-log mask) and tell a JIT that code in them may have changed. Callers already pass exactly the bytes
 * that were written, so nothing else needs to change then.
 *
 * <p>Threading: any thread, without locks.
 */
final class DirectWrites {
    private DirectWrites() {
    }

    /**
     * Records that {@code len} bytes at region-relative {@code regionOffset} of {@code mr} (a region backed by a
     * {@link RamBlock}) were written directly.
     *
     * @param len bytes, at least 1
     */
    static void invalidateAndSetDirty(MemoryRegion mr, long regionOffset, long len) {
        assert mr.ramBlock != null : "region=" + mr.name() + " has no RAM block";
        assert len > 0 : "len=" + len;
        // The region's own mask, read without the lock: a change of logging is published with the next view, and a
        // writer racing with it may mark or not, as a QEMU vCPU racing a log start may.
        int mask = mr.system.dirtyLogMaskOf(mr);
        if (mask != 0) {
            setDirty(mr, mask, regionOffset, len);
        }
    }

    /**
     * QEMU's {@code cpu_physical_memory_set_dirty_range}: sets the bits of {@code [regionOffset, regionOffset + len)}
     * of RAM-backed {@code mr} in the bitmap of every client in {@code mask}.
     */
    static void setDirty(MemoryRegion mr, int mask, long regionOffset, long len) {
        long ramAddr = mr.ramBlock.offset() + regionOffset;
        DirtyBitmap[] bitmaps = mr.system.dirtyBitmaps;
        for (int c = 0; c < bitmaps.length; c++) {
            if ((mask & (1 << c)) != 0) {
                bitmaps[c].setDirtyRange(ramAddr, len);
            }
        }
    }
}
