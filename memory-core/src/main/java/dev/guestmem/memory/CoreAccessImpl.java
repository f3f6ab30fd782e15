package dev.guestmem.memory;

import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.access.DirectAccess;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.dispatch.RangeAccess;
import dev.guestmem.memory.internal.render.Ioeventfd;
import java.lang.foreign.MemorySegment;
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

    @Override
    public String uniqueIdstr(RamList list, String name) {
        return list.uniqueIdstr(name);
    }

    @Override
    public void releaseIdstr(RamList list, String idstr) {
        list.releaseIdstr(idstr);
    }

    @Override
    public void removeBlock(RamList list, RamBlock b) {
        list.remove(b);
    }

    @Override
    public void freeMemory(AbstractRamBlock b) {
        b.freeMemory();
    }

    @Override
    public boolean ramMayFault(MemoryRegion r) {
        return r.ramMayFault;
    }

    @Override
    public boolean hasHostMemory(AbstractRamBlock b) {
        return b.hasHostMemory();
    }

    @Override
    public RangeAccess rangeAccess(FlatRange fr) {
        return DirectAccess.rangeAccess(fr);
    }

    @Override
    public boolean deviceBigEndian(MemoryRegion r) {
        return r.deviceBigEndian;
    }

    @Override
    public boolean dispatchWriteEventfds(MemoryRegion r, long addr, long data, int size) {
        return r.dispatchWriteEventfds(addr, data, size);
    }

    @Override
    public boolean plainCall(MemoryRegionOps ops, long addr, int size) {
        return size >= ops.directMin && size <= ops.directMax && (!ops.directAligned || (addr & (size - 1)) == 0);
    }

    @Override
    public DirtyBitmap[] dirtyBitmaps(MemorySystem system) {
        return system.dirtyBitmaps;
    }

    @Override
    public void codeWritten(CodeProtection cp, long ramAddr, long length) {
        cp.written(ramAddr, length);
    }

    @Override
    public boolean retain(AbstractRamBlock b) {
        return b.retain();
    }

    @Override
    public void release(AbstractRamBlock b, Rcu rcu) {
        b.release(rcu);
    }

    @Override
    public DmaMapping directMapping(AddressSpace as, long addr, boolean isWrite, MemTxAttrs attrs,
                                    MemorySegment slice, MemoryRegion region, long regionOffset) {
        return DmaMapping.direct(as, addr, isWrite, attrs, slice, region, regionOffset);
    }

    @Override
    public DmaMapping bounceMapping(AddressSpace as, long addr, boolean isWrite, MemTxAttrs attrs,
                                    MemorySegment buffer) {
        return DmaMapping.bounce(as, addr, isWrite, attrs, buffer);
    }

    @Override
    public boolean markUnmapped(DmaMapping m) {
        return m.markUnmapped();
    }

    @Override
    public MemTxAttrs attrs(DmaMapping m) {
        return m.attrs;
    }

    @Override
    public MemorySegment bounce(DmaMapping m) {
        return m.bounce;
    }

    @Override
    public MemoryRegion region(DmaMapping m) {
        return m.region;
    }

    @Override
    public long regionOffset(DmaMapping m) {
        return m.regionOffset;
    }
}
