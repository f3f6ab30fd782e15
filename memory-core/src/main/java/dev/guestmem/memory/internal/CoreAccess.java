package dev.guestmem.memory.internal;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;

/**
 * The API package's state that the internal layers need and that is not part of the public API: the one bridge from
 * {@code dev.guestmem.memory.internal.*} up into {@code dev.guestmem.memory}, implemented there and registered with
 * {@link SharedSecrets}. Cold paths only (see {@link SharedSecrets}).
 */
public interface CoreAccess {
    /** The ranges of {@code view}, ascending; the view's own array, which the caller must not change. */
    FlatRange[] rangeArray(FlatView view);

    /** The dispatch of {@code as}'s current view (QEMU's {@code address_space_to_dispatch}), one acquire load. */
    AddressSpaceDispatch dispatch(AddressSpace as);

    /**
     * The dispatch of {@code view} for pages of {@code 2^pageBits} bytes (QEMU's {@code flatview_to_dispatch}).
     *
     * @throws IllegalArgumentException when no address space using the view has that page size
     */
    AddressSpaceDispatch dispatch(FlatView view, int pageBits);
}
