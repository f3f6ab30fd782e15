package dev.guestmem.memory.internal;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DmaMapping;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.IommuNotifier;
import dev.guestmem.memory.IommuTlbEvent;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryListener;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamList;
import dev.guestmem.memory.Rcu;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.dispatch.RangeAccess;
import dev.guestmem.memory.internal.render.Ioeventfd;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The API package's state that the internal layers need and that is not part of the public API: the one bridge from
 * {@code dev.guestmem.memory.internal.*} up into {@code dev.guestmem.memory}, implemented there and registered with
 * {@link SharedSecrets}. Cold paths, MMIO dispatch and DMA mapping; never a direct RAM access (the access path finds
 * what those need in the dispatch's {@code RangeAccess} records).
 */
public interface CoreAccess {
    /** The aliases that point at {@code r} (writer only: the topology lock held); the region's own list. */
    List<MemoryRegion> aliasedBy(MemoryRegion r);

    /**
     * The subregions of {@code r} back to front (ascending priority, most recently added last among equals; writer
     * only); the region's own list, which the caller must not change.
     */
    List<MemoryRegion> subregionsReversed(MemoryRegion r);

    /** The listeners of {@code as}, ascending priority (writer only); the address space's own list. */
    List<MemoryListener> listeners(AddressSpace as);

    /** The ioeventfds registered on {@code r}, in QEMU's order; the region's own array. */
    Ioeventfd[] ioeventfds(MemoryRegion r);

    /** The coalesced MMIO ranges of {@code r} (writer only): pairs of region-relative offset and size. */
    List<long[]> coalesced(MemoryRegion r);

    /** Hands {@code event} to notifier {@code n}, on the calling thread (its package-private delivery). */
    void deliver(IommuNotifier n, IommuTlbEvent event);

    /** Takes {@code system}'s topology lock (reentrant), as its writers do. */
    void lockTopology(MemorySystem system);

    /** Releases {@code system}'s topology lock once. */
    void unlockTopology(MemorySystem system);

    /** Sets {@code system}'s global dirty-log reasons (GLOBAL_DIRTY_*); topology lock held. */
    void setGlobalDirtyTracking(MemorySystem system, int flags);

    /** Makes the outermost commit of {@code system}'s open transaction render every view whole. */
    void renderAllOnCommit(MemorySystem system);

    /** The ranges of {@code view}, ascending; the view's own array, which the caller must not change. */
    FlatRange[] rangeArray(FlatView view);

    /** A new view of flatview root {@code root} (null: the empty view) holding {@code ranges} (sorted, disjoint). */
    FlatView newFlatView(MemoryRegion root, FlatRange[] ranges);

    /** The root's own addr when {@code view} was rendered (it shifts the whole view). */
    long rootAddr(FlatView view);

    /**
     * Makes {@code view}'s dispatch for pages of {@code 2^pageBits} bytes unless it has one (writer only, before an
     * address space with that page size publishes the view).
     */
    void ensureDispatch(FlatView view, int pageBits, MemoryRegion unassigned);

    /**
     * Records that {@code view} was rendered from {@code from} by windows, changed only inside guest-physical
     * {@code changedWindows}, so its dispatches can be derived from {@code from}'s; {@code from} null forgets it.
     */
    void deriveFrom(FlatView view, FlatView from, long[] changedWindows);

    /** Publishes {@code view} as {@code as}'s current view with one release store (writer only). */
    void publish(AddressSpace as, FlatView view);

    /** The dispatch of {@code as}'s current view (QEMU's {@code address_space_to_dispatch}), one acquire load. */
    AddressSpaceDispatch dispatch(AddressSpace as);

    /**
     * The dispatch of {@code view} for pages of {@code 2^pageBits} bytes (QEMU's {@code flatview_to_dispatch}).
     *
     * @throws IllegalArgumentException when no address space using the view has that page size
     */
    AddressSpaceDispatch dispatch(FlatView view, int pageBits);

    // ---------------------------------------------------------------- RAM blocks (internal.ram)

    /** A block name for a region called {@code name}, unique in {@code list} and reserved until a block has it. */
    String uniqueIdstr(RamList list, String name);

    /** Gives back a name {@link #uniqueIdstr} reserved for a block that was never made. */
    void releaseIdstr(RamList list, String idstr);

    /** Takes {@code b} out of {@code list}: its ram_addr range and name become free. */
    void removeBlock(RamList list, RamBlock b);

    /** Frees the memory of {@code b}, which nothing has seen yet (its backend's {@code freeMemory}). */
    void freeMemory(AbstractRamBlock b);

    // ---------------------------------------------------------------- the access layer (internal.access)

    /** Whether accesses to {@code r}'s RAM can fault (its block's {@code mayFault()}, cached by the region). */
    boolean ramMayFault(MemoryRegion r);

    /** Whether {@code b} has memory behind its host segment (a block that only has a size has none). */
    boolean hasHostMemory(AbstractRamBlock b);

    /**
     * What a direct access to {@code fr} needs, worked out once when a dispatch takes the range in (the access
     * layer's rules; see {@code internal.access.DirectAccess.rangeAccess}).
     */
    RangeAccess rangeAccess(FlatRange fr);

    /** Whether {@code r}'s device takes values big-endian (its ops' endianness, NATIVE resolved). */
    boolean deviceBigEndian(MemoryRegion r);

    /**
     * Signals the ioeventfd of {@code r} that a write of the low {@code size} bytes of {@code data} (device order) at
     * region offset {@code addr} matches, if one does; says whether one did.
     */
    boolean dispatchWriteEventfds(MemoryRegion r, long addr, long data, int size);

    /**
     * Whether an access of {@code size} bytes at region offset {@code addr} is one plain callback call of {@code ops}
     * (valid, implemented at that size, aligned where it must be): MMIO dispatch's fast case.
     */
    boolean plainCall(MemoryRegionOps ops, long addr, int size);

    /** The dirty bitmaps of {@code system}, one per client, indexed by client number; the system's own array. */
    DirtyBitmap[] dirtyBitmaps(MemorySystem system);

    /** Reports {@code length} bytes written at {@code ramAddr} to the CODE client's listeners (see CodeProtection). */
    void codeWritten(CodeProtection cp, long ramAddr, long length);

    /** Takes a reference on {@code b}'s memory; false if freeing has begun. */
    boolean retain(AbstractRamBlock b);

    /** Drops a reference on {@code b}'s memory; the last one frees it after a grace period of {@code rcu}. */
    void release(AbstractRamBlock b, Rcu rcu);

    /** A mapping of {@code slice}, RAM of {@code region} from region offset {@code regionOffset}. */
    DmaMapping directMapping(AddressSpace as, long addr, boolean isWrite, MemTxAttrs attrs, MemorySegment slice,
                             MemoryRegion region, long regionOffset);

    /** A mapping of the bounce buffer {@code buffer}. */
    DmaMapping bounceMapping(AddressSpace as, long addr, boolean isWrite, MemTxAttrs attrs, MemorySegment buffer);

    /** Marks {@code m} unmapped; false if it already was. */
    boolean markUnmapped(DmaMapping m);

    /** The attributes {@code m} was mapped with. */
    MemTxAttrs attrs(DmaMapping m);

    /** The writable bounce buffer of {@code m}, or null for a direct mapping. */
    MemorySegment bounce(DmaMapping m);

    /** The region a direct mapping slices, or null for a bounce buffer. */
    MemoryRegion region(DmaMapping m);

    /** The region-relative offset of a direct mapping's first byte. */
    long regionOffset(DmaMapping m);
}
