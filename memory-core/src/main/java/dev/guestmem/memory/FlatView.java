package dev.guestmem.memory;

import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.dispatch.DispatchUpdater;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The rendered form of a region tree, as QEMU's {@code FlatView}: sorted, non-overlapping, simplified ranges, each
 * served by one terminating region. Address spaces whose roots render the same tree share one view (QEMU's
 * flatview-root rule). Immutable once built, so any number of threads may read it without locks.
 *
 * <p>Each view carries its {@code AddressSpaceDispatch}, as QEMU's {@code FlatView.dispatch}: one per page size
 * that an address space using the view has, built by the writer before any address space with that page size
 * publishes the view.
 *
 * <p>Threading: immutable; safe to share. A reader that loaded a view keeps a consistent snapshot for as long as
 * it holds it, whatever writers do to the tree meanwhile. The one thing added after a view is first published is
 * a dispatch for a page size no address space of the view had before (a new address space joining the view); it
 * goes into a slot of its own, written once, before that address space publishes the view with release, so every
 * reader that can ask for that page size sees it.
 */
public final class FlatView {
    private final MemoryRegion root;
    /** The root's own addr when this view was rendered: it shifts the whole view (as in QEMU). */
    final long rootAddr;
    private final FlatRange[] ranges;
    /** Start addresses of {@link #ranges}, for binary search without touching the records. */
    private final long[] starts;
    /**
     * The dispatch per page size, indexed by {@code pageBits - MIN_PAGE_BITS}. Each slot is written once by the
     * writer (topology lock held) before any address space with that page size publishes this view, and read by
     * readers of such address spaces after their acquire load of the view.
     */
    private final AddressSpaceDispatch[] dispatches =
            new AddressSpaceDispatch[AddressSpaceDispatch.MAX_PAGE_BITS - AddressSpaceDispatch.MIN_PAGE_BITS + 1];

    /**
     * Writer only, set by an incremental render and cleared once the commit has built this view's dispatches: the
     * view this one was rendered from, and the guest-physical windows (sorted pairs of first and last addresses,
     * inclusive) outside which both map every address alike. Lets the dispatches be derived instead of built.
     */
    FlatView derivedFrom;
    long[] changedWindows;

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

    /**
     * The dispatch of this view for pages of {@code 2^pageBits} bytes (QEMU's {@code flatview_to_dispatch}).
     *
     * @throws IllegalArgumentException when no address space using this view has that page size
     */
    AddressSpaceDispatch dispatch(int pageBits) {
        AddressSpaceDispatch.checkPageBits(pageBits);
        AddressSpaceDispatch d = dispatches[pageBits - AddressSpaceDispatch.MIN_PAGE_BITS];
        if (d == null) {
            throw new IllegalArgumentException("pageBits=" + pageBits + " view=" + this
                    + ": no address space of this view has that page size");
        }
        return d;
    }

    /** The dispatch for a page size an address space of this view has; never null. Reader hot path. */
    AddressSpaceDispatch dispatchFor(int pageBits) {
        return dispatches[pageBits - AddressSpaceDispatch.MIN_PAGE_BITS];
    }

    /** The page sizes this view has a dispatch for, ascending. */
    public int[] dispatchPageBits() {
        int n = 0;
        int[] out = new int[dispatches.length];
        for (int i = 0; i < dispatches.length; i++) {
            if (dispatches[i] != null) {
                out[n++] = i + AddressSpaceDispatch.MIN_PAGE_BITS;
            }
        }
        return Arrays.copyOf(out, n);
    }

    /**
     * Makes the dispatch for {@code pageBits} unless there is one: derived from the dispatch of the view this one
     * was rendered from when there is one ({@link DispatchUpdater}), else built whole, QEMU-exact for the first view
     * of a root and in the updatable form after that. Writer only, before an address space with that page size
     * publishes this view.
     */
    void ensureDispatch(int pageBits, MemoryRegion unassigned) {
        int slot = pageBits - AddressSpaceDispatch.MIN_PAGE_BITS;
        if (dispatches[slot] == null) {
            FlatView from = derivedFrom;
            AddressSpaceDispatch old = from == null ? null : from.dispatches[slot];
            AddressSpaceDispatch d = null;
            if (old != null) {
                d = DispatchUpdater.derive(old, from, this, changedWindows, unassigned);
                if (d == null) {
                    d = AddressSpaceDispatch.buildUpdatable(this, pageBits, unassigned);
                }
            } else {
                d = AddressSpaceDispatch.build(this, pageBits, unassigned);
            }
            // Plain store: the address space that needs it publishes this view with release afterwards.
            dispatches[slot] = d;
        }
    }

    FlatRange[] rangeArray() {
        return ranges;
    }

    @Override
    public String toString() {
        return "FlatView[root=" + (root == null ? "(none)" : root.name()) + ", " + ranges.length + " ranges]";
    }
}
