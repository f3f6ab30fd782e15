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
        // Issue 4: set the dirty bits of [regionOffset, regionOffset + len) in each logging client's bitmap here.
    }
}
