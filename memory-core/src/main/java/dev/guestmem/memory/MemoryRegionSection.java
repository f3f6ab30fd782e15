package dev.guestmem.memory;

/**
 * A part of a region as mapped in an address space, as QEMU's {@code MemoryRegionSection}; what listeners are told
 * about and what {@link MemoryRegion#find} returns.
 *
 * @param region                   the terminating region
 * @param flatView                 the view this section belongs to
 * @param offsetWithinRegion       region-relative offset of the first byte
 * @param offsetWithinAddressSpace guest-physical address of the first byte
 * @param lastAddress              guest-physical address of the last byte, inclusive (a section may end at
 *                                 2^64 - 1, and its size may be 2^64, which a {@code long} cannot hold)
 * @param readonly                 read-only through this mapping
 * @param nonvolatile              nonvolatile through this mapping
 * @param unmergeable              never merged with its neighbours
 */
public record MemoryRegionSection(MemoryRegion region, FlatView flatView, long offsetWithinRegion,
                                  long offsetWithinAddressSpace, long lastAddress, boolean readonly,
                                  boolean nonvolatile, boolean unmergeable) {

    /** QEMU's {@code section_from_flat_range}: the whole of flat range {@code fr} of view {@code fv}. */
    public static MemoryRegionSection of(FlatRange fr, FlatView fv) {
        return new MemoryRegionSection(fr.region(), fv, fr.offsetInRegion(), fr.start(), fr.last(), fr.readonly(),
                fr.nonvolatile(), fr.unmergeable());
    }

    /** Size in bytes minus one, unsigned: {@code lastAddress - offsetWithinAddressSpace}. */
    public long sizeMinusOne() {
        return lastAddress - offsetWithinAddressSpace;
    }

    /**
     * QEMU's {@code memory_region_section_intersect_range}: the part of this section that covers region-relative
     * bytes {@code [offset, offset + size)}, with both offsets moved alike, or null when they do not overlap.
     *
     * @param offset region-relative offset of the range's first byte
     * @param size   bytes, at least 1; a range running past 2^64 is cut there
     */
    public MemoryRegionSection intersectRange(long offset, long size) {
        if (size == 0) {
            throw new IllegalArgumentException("offset=" + U64.hex(offset) + " size=0: empty range");
        }
        long first = U64.max(offsetWithinRegion, offset);
        long last = U64.min(offsetWithinRegion + sizeMinusOne(), U64.saturatingAdd(offset, U64.lastOffset(size)));
        if (U64.lt(last, first)) {
            return null;
        }
        long delta = first - offsetWithinRegion;
        return new MemoryRegionSection(region, flatView, first, offsetWithinAddressSpace + delta,
                offsetWithinAddressSpace + delta + (last - first), readonly, nonvolatile, unmergeable);
    }

    @Override
    public String toString() {
        return U64.hex16(offsetWithinAddressSpace) + "-" + U64.hex16(lastAddress) + " " + region.name() + " @"
                + U64.hex(offsetWithinRegion) + (readonly ? " ro" : "") + (nonvolatile ? " nv" : "");
    }
}
