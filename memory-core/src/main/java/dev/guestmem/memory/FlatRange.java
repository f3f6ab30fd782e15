package dev.guestmem.memory;

/**
 * One piece of a flat view, as QEMU's {@code FlatRange}: the guest-physical addresses {@code [start, last]}
 * (inclusive, so a range reaching 2^64 - 1 needs no 65th bit) are served by {@code region} starting at
 * {@code offsetInRegion}. Immutable.
 *
 * @param start          first guest-physical address
 * @param last           last guest-physical address, inclusive
 * @param region         the terminating region (never a container or an alias)
 * @param offsetInRegion region-relative offset of {@code start}
 * @param dirtyLogMask   the dirty-memory clients logging this range
 * @param romdMode       the region's romd mode when the view was rendered
 * @param readonly       read-only through this mapping (the region's own flag, or one inherited from a container or
 *                       alias above it)
 * @param nonvolatile    nonvolatile through this mapping
 * @param unmergeable    never merged with its neighbours
 */
public record FlatRange(long start, long last, MemoryRegion region, long offsetInRegion, int dirtyLogMask,
                        boolean romdMode, boolean readonly, boolean nonvolatile, boolean unmergeable) {

    /** Whether {@code addr} (guest-physical) lies in this range. */
    public boolean contains(long addr) {
        return U64.le(start, addr) && U64.le(addr, last);
    }

    /**
     * QEMU's {@code flatrange_equal}: the same mapping, with the same attributes, apart from dirty logging. Two
     * ranges that are equal this way are neither deleted nor added by a topology change.
     */
    public boolean sameMapping(FlatRange o) {
        return region == o.region && start == o.start && last == o.last && offsetInRegion == o.offsetInRegion
                && romdMode == o.romdMode && readonly == o.readonly && nonvolatile == o.nonvolatile
                && unmergeable == o.unmergeable;
    }

    @Override
    public String toString() {
        return U64.hex16(start) + "-" + U64.hex16(last) + " " + region.name()
                + (offsetInRegion != 0 ? " @" + U64.hex16(offsetInRegion) : "")
                + (readonly ? " ro" : "") + (nonvolatile ? " nv" : "") + (unmergeable ? " unmergeable" : "")
                + (romdMode ? "" : " !romd") + (dirtyLogMask != 0 ? " log=" + dirtyLogMask : "");
    }
}
