package dev.guestmem.memory;

import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;

/** The API side of {@link CoreAccess}: one-line forwards to package-private state. Registered by MemorySystem. */
final class CoreAccessImpl implements CoreAccess {
    @Override
    public FlatRange[] rangeArray(FlatView view) {
        return view.rangeArray();
    }

    @Override
    public AddressSpaceDispatch dispatch(AddressSpace as) {
        return as.dispatch();
    }

    @Override
    public AddressSpaceDispatch dispatch(FlatView view, int pageBits) {
        return view.dispatch(pageBits);
    }
}
