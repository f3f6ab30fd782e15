package dev.guestmem.memory;

import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.render.Ioeventfd;
import java.util.List;

/** The API side of {@link CoreAccess}: one-line forwards to package-private state. Registered by MemorySystem. */
final class CoreAccessImpl implements CoreAccess {
    @Override
    public void lockTopology(MemorySystem system) {
        system.lockTopology();
    }

    @Override
    public void unlockTopology(MemorySystem system) {
        system.unlockTopology();
    }

    @Override
    public void setGlobalDirtyTracking(MemorySystem system, int flags) {
        system.setGlobalDirtyTracking(flags);
    }

    @Override
    public void renderAllOnCommit(MemorySystem system) {
        system.requireFullRender();
        system.markUpdatePending();
    }

    @Override
    public void deliver(IommuNotifier n, IommuTlbEvent event) {
        n.deliver(event);
    }

    @Override
    public List<MemoryListener> listeners(AddressSpace as) {
        return as.listeners;
    }

    @Override
    public Ioeventfd[] ioeventfds(MemoryRegion r) {
        return r.ioeventfds;
    }

    @Override
    public List<long[]> coalesced(MemoryRegion r) {
        return r.coalesced;
    }

    @Override
    public List<MemoryRegion> aliasedBy(MemoryRegion r) {
        return r.aliasedBy;
    }

    @Override
    public List<MemoryRegion> subregionsReversed(MemoryRegion r) {
        return r.subregionsReversed;
    }

    @Override
    public FlatRange[] rangeArray(FlatView view) {
        return view.rangeArray();
    }

    @Override
    public FlatView newFlatView(MemoryRegion root, FlatRange[] ranges) {
        return new FlatView(root, ranges);
    }

    @Override
    public long rootAddr(FlatView view) {
        return view.rootAddr;
    }

    @Override
    public void ensureDispatch(FlatView view, int pageBits, MemoryRegion unassigned) {
        view.ensureDispatch(pageBits, unassigned);
    }

    @Override
    public void deriveFrom(FlatView view, FlatView from, long[] changedWindows) {
        view.derivedFrom = from;
        view.changedWindows = changedWindows;
    }

    @Override
    public void publish(AddressSpace as, FlatView view) {
        as.publish(view);
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
