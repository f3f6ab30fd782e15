package dev.guestmem.memory;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The rendered form of a region tree, as QEMU's {@code FlatView}: sorted, non-overlapping, simplified ranges, each
 * served by one terminating region. Address spaces whose roots render the same tree share one view (QEMU's
 * flatview-root rule). Immutable once built, so any number of threads may read it without locks.
 *
 * <p>Threading: immutable; safe to share. A reader that loaded a view keeps a consistent snapshot for as long as
 * it holds it, whatever writers do to the tree meanwhile.
 */
public final class FlatView {
    private final MemoryRegion root;
    /** The root's own addr when this view was rendered: it shifts the whole view (as in QEMU). */
    final long rootAddr;
    private final FlatRange[] ranges;
    /** Start addresses of {@link #ranges}, for binary search without touching the records. */
    private final long[] starts;

    FlatView(MemoryRegion root, FlatRange[] ranges) {
        this.root = root;
        this.rootAddr = root == null ? 0 : root.addr;
        this.ranges = ranges;
        this.starts = new long[ranges.length];
        for (int i = 0; i < ranges.length; i++) {
            starts[i] = ranges[i].start();
            assert i == 0 || U64.lt(ranges[i - 1].last(), ranges[i].start()) : "overlapping or unsorted ranges at " + i;
        }
    }

    /** The region this view was rendered from (after looking through trivial aliases and containers), or null. */
    public MemoryRegion root() {
        return root;
    }

    /** The ranges in ascending address order. */
    public List<FlatRange> ranges() {
        return Collections.unmodifiableList(Arrays.asList(ranges));
    }

    public int rangeCount() {
        return ranges.length;
    }

    public FlatRange range(int i) {
        return ranges[i];
    }

    /** The range containing guest-physical {@code addr}, or null when nothing is mapped there. */
    public FlatRange lookup(long addr) {
        int i = indexOf(addr);
        return i < 0 ? null : ranges[i];
    }

    /** The index of the range containing {@code addr}, or -1. */
    public int indexOf(long addr) {
        int lo = 0;
        int hi = ranges.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (U64.le(starts[mid], addr)) {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        // hi is the last range starting at or below addr
        return hi >= 0 && U64.le(addr, ranges[hi].last()) ? hi : -1;
    }

    /** The section for range {@code i}. */
    public MemoryRegionSection section(int i) {
        return MemoryRegionSection.of(ranges[i], this);
    }

    /**
     * The part of the lowest-addressed range that intersects {@code [first, last]} (guest-physical, inclusive), as
     * QEMU's {@code memory_region_find}; null when no range does.
     */
    public MemoryRegionSection findSection(long first, long last) {
        int lo = 0;
        int hi = ranges.length - 1;
        int found = -1;
        // first range whose last >= first
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (U64.le(first, ranges[mid].last())) {
                found = mid;
                hi = mid - 1;
            } else {
                lo = mid + 1;
            }
        }
        if (found < 0 || U64.lt(last, ranges[found].start())) {
            return null;
        }
        FlatRange fr = ranges[found];
        long s = U64.max(first, fr.start());
        long e = U64.min(last, fr.last());
        return new MemoryRegionSection(fr.region(), this, fr.offsetInRegion() + (s - fr.start()), s, e,
                fr.readonly(), fr.nonvolatile(), fr.unmergeable());
    }

    /** Whether both views hold exactly the same ranges, attributes and dirty-log masks included. */
    boolean sameRanges(FlatRange[] other) {
        return Arrays.equals(ranges, other);
    }

    FlatRange[] rangeArray() {
        return ranges;
    }

    @Override
    public String toString() {
        return "FlatView[root=" + (root == null ? "(none)" : root.name()) + ", " + ranges.length + " ranges]";
    }
}
