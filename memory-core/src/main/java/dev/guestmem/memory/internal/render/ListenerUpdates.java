package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryListener;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionSection;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What a commit tells an address space's listeners once its new view is rendered: QEMU's
 * {@code address_space_update_topology_pass} (sections added, removed, kept, their logging started and stopped),
 * coalesced MMIO ranges as they come and go, and the ioeventfds the view maps ({@code address_space_update_ioeventfds}).
 * Listeners hear additions in ascending priority and removals in descending priority, as in QEMU. A listener that
 * throws is recorded in the commit's {@link ListenerFailures} and the calls go on.
 *
 * <p>Threading: writer only (the topology lock held), from the commit.
 */
public final class ListenerUpdates {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();

    private ListenerUpdates() {
    }

    /**
     * QEMU's {@code memory_region_update_coalesced_range}: tells every address space's listeners, at once, about one
     * coalesced range of {@code mr} that was added or removed, for each place {@code mr} is mapped in its current
     * view. Writer only.
     */
    public static void coalescedRange(List<AddressSpace> addressSpaces, MemoryRegion mr, long[] range, boolean add,
                                      ListenerFailures failures) {
        for (AddressSpace as : addressSpaces) {
            FlatView view = as.flatView();
            for (int i = 0; i < view.rangeCount(); i++) {
                FlatRange fr = view.range(i);
                if (fr.region() == mr) {
                    coalescedNotify(as, view, fr, range, add, failures);
                }
            }
        }
    }

    /**
     * QEMU's {@code flat_range_coalesced_io_notify}: the part of coalesced {@code range} (region-relative offset and
     * size) that flat range {@code fr} shows, in guest-physical terms; adds go forward, deletions in reverse.
     */
    private static void coalescedNotify(AddressSpace as, FlatView view, FlatRange fr, long[] range, boolean add,
                                        ListenerFailures failures) {
        final List<MemoryListener> listeners = CORE.listeners(as);
        long offset = range[0];
        long size = range[1];
        if (size == 0) {
            return;
        }
        long rangeLast = U64.saturatingAdd(offset, size - 1);
        long frFirstOff = fr.offsetInRegion();
        long frLastOff = frFirstOff + (fr.last() - fr.start());
        long lo = U64.max(offset, frFirstOff);
        long hi = U64.min(rangeLast, frLastOff);
        if (U64.lt(hi, lo)) {
            return;
        }
        long addr = fr.start() + (lo - frFirstOff);
        long len = hi - lo + 1;
        MemoryRegionSection s = MemoryRegionSection.of(fr, view);
        if (add) {
            for (MemoryListener l : listeners) {
                failures.call(l, "coalescedIoAdd", as, x -> x.coalescedIoAdd(s, addr, len));
            }
        } else {
            for (int k = listeners.size() - 1; k >= 0; k--) {
                failures.call(listeners.get(k), "coalescedIoDel", as, x -> x.coalescedIoDel(s, addr, len));
            }
        }
    }

    private static void coalesced(AddressSpace as, FlatView view, FlatRange fr, boolean add,
                                  ListenerFailures failures) {
        for (long[] range : CORE.coalesced(fr.region())) {
            coalescedNotify(as, view, fr, range, add, failures);
        }
    }

    /**
     * QEMU's {@code address_space_update_ioeventfds}: the address space's ioeventfds as the current view maps them,
     * and listeners told the difference from the last set (QEMU's order: deletions forward, additions in reverse).
     * Writer only.
     */
    public static Ioeventfd[] ioeventfds(AddressSpace as, Ioeventfd[] old, ListenerFailures failures) {
        final List<MemoryListener> listeners = CORE.listeners(as);
        FlatView view = as.flatView();
        ArrayList<Ioeventfd> now = new ArrayList<>(old.length);
        for (int i = 0; i < view.rangeCount(); i++) {
            FlatRange fr = view.range(i);
            for (Ioeventfd fd : CORE.ioeventfds(fr.region())) {
                // Shifted into guest addresses through this range, a registration counts when it overlaps the
                // range; one of size 0 (any size) counts when its address lies inside it, as in QEMU.
                long guest = fd.addr() - fr.offsetInRegion() + fr.start();
                long frFirstOff = fr.offsetInRegion();
                long frLastOff = frFirstOff + (fr.last() - fr.start());
                long fdLastOff = fd.size() == 0 ? fd.addr() : U64.saturatingAdd(fd.addr(), fd.size() - 1);
                boolean intersects = U64.le(fd.addr(), frLastOff) && U64.le(frFirstOff, fdLastOff);
                if (intersects) {
                    now.add(fd.at(guest));
                }
            }
        }
        Ioeventfd[] next = now.toArray(Ioeventfd.NONE);
        if (old.length == 0 && next.length == 0) {
            return old;
        }
        // QEMU collects them in flat-range order; the merge walk below needs them in QEMU's sort order.
        Arrays.sort(next, (a, b) -> a.before(b) ? -1 : b.before(a) ? 1 : 0);
        int iold = 0;
        int inew = 0;
        while (iold < old.length || inew < next.length) {
            if (iold < old.length && (inew == next.length || old[iold].before(next[inew]))) {
                Ioeventfd fd = old[iold++];
                MemoryRegionSection s = eventfdSection(view, fd);
                for (MemoryListener l : listeners) {
                    failures.call(l, "eventfdDel", as, x -> x.eventfdDel(s, fd.matchData(), fd.data(), fd.notifier()));
                }
            } else if (inew < next.length && (iold == old.length || next[inew].before(old[iold]))) {
                Ioeventfd fd = next[inew++];
                MemoryRegionSection s = eventfdSection(view, fd);
                for (int k = listeners.size() - 1; k >= 0; k--) {
                    failures.call(listeners.get(k), "eventfdAdd", as,
                            x -> x.eventfdAdd(s, fd.matchData(), fd.data(), fd.notifier()));
                }
            } else {
                iold++;
                inew++;
            }
        }
        return next;
    }

    /** QEMU's ioeventfd section: just the guest range; a size-0 (any size) one ends before it starts. */
    private static MemoryRegionSection eventfdSection(FlatView view, Ioeventfd fd) {
        FlatRange fr = view.lookup(fd.addr());
        return new MemoryRegionSection(fr == null ? null : fr.region(), view, 0, fd.addr(), fd.addr() + fd.size() - 1,
                false, false, false);
    }

    /** QEMU's {@code address_space_update_topology_pass}: one merge walk over the old and new ranges. */
    public static void topologyPass(AddressSpace as, FlatView oldView, FlatView newView, boolean adding,
                                    ListenerFailures failures) {
        final List<MemoryListener> listeners = CORE.listeners(as);
        FlatRange[] olds = CORE.rangeArray(oldView);
        FlatRange[] news = CORE.rangeArray(newView);
        int iold = 0;
        int inew = 0;
        while (iold < olds.length || inew < news.length) {
            FlatRange frold = iold < olds.length ? olds[iold] : null;
            FlatRange frnew = inew < news.length ? news[inew] : null;
            if (frold != null && (frnew == null || U64.lt(frold.start(), frnew.start())
                    || (frold.start() == frnew.start() && !frold.sameMapping(frnew)))) {
                // In the old view only, or in both with other attributes.
                if (!adding) {
                    coalesced(as, oldView, frold, false, failures);
                    MemoryRegionSection s = MemoryRegionSection.of(frold, oldView);
                    for (int k = listeners.size() - 1; k >= 0; k--) {
                        failures.call(listeners.get(k), "regionDel", as, x -> x.regionDel(s));
                    }
                }
                iold++;
            } else if (frold != null && frnew != null && frold.sameMapping(frnew)) {
                // In both; only dirty logging may differ.
                if (adding) {
                    MemoryRegionSection s = MemoryRegionSection.of(frnew, newView);
                    for (MemoryListener l : listeners) {
                        failures.call(l, "regionNop", as, x -> x.regionNop(s));
                    }
                    int oldMask = frold.dirtyLogMask();
                    int newMask = frnew.dirtyLogMask();
                    if ((newMask & ~oldMask) != 0) {
                        for (MemoryListener l : listeners) {
                            failures.call(l, "logStart", as, x -> x.logStart(s, oldMask, newMask));
                        }
                    }
                    if ((oldMask & ~newMask) != 0) {
                        for (int k = listeners.size() - 1; k >= 0; k--) {
                            failures.call(listeners.get(k), "logStop", as, x -> x.logStop(s, oldMask, newMask));
                        }
                    }
                }
                iold++;
                inew++;
            } else {
                // In the new view only.
                if (adding) {
                    MemoryRegionSection s = MemoryRegionSection.of(frnew, newView);
                    for (MemoryListener l : listeners) {
                        failures.call(l, "regionAdd", as, x -> x.regionAdd(s));
                    }
                    coalesced(as, newView, frnew, true, failures);
                }
                inew++;
            }
        }
    }
}
