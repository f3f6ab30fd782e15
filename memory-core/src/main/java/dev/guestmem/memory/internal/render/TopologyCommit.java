package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryListener;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * The work of an outermost commit that changed the tree, QEMU's {@code memory_region_transaction_commit} with
 * {@code flatviews_reset} and {@code address_space_set_flatview}: every address space's flatview root rendered
 * (incrementally, by the {@link RenderWindows} noted since the last commit, where that is allowed), views shared
 * between address spaces of the same root, every dispatch built before any view is published, listeners told
 * (begin, per address space the deletions and additions, the ioeventfds, commit), each changed view published with
 * one release store after its listeners heard about it. Keeps QEMU's {@code flat_views}: the current view of each
 * flatview root.
 *
 * <p>A listener that throws does not stop the commit: see {@link ListenerFailures}. Every view is published and
 * every other listener call made, so the tree and the published views agree whatever a listener does.
 *
 * <p>Threading: writer only (the topology lock held).
 */
public final class TopologyCommit {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();

    /** QEMU's {@code io_mem_unassigned}, which every dispatch resolves unmapped addresses to. */
    private final MemoryRegion unassigned;
    /** Where the tree changed since the last render. */
    private final RenderWindows windows = new RenderWindows();
    /** The current view of each flatview root (QEMU's {@code flat_views}); the null key is the empty view. */
    private IdentityHashMap<MemoryRegion, FlatView> flatViews = new IdentityHashMap<>();
    /** Counts the changes made to the tree (see {@link #changed()}). */
    private long changes;
    /**
     * The view {@link #viewForNewAddressSpace} rendered whole inside the open transaction, its root, and the change
     * count then: while no change follows, the commit takes it as it is instead of rendering the same tree again.
     */
    private FlatView fresh;
    private MemoryRegion freshRoot;
    private long freshChanges;

    public TopologyCommit(MemoryRegion unassigned) {
        this.unassigned = unassigned;
    }

    /** Where the tree changed since the last render; mutators note their changes here. */
    public RenderWindows windows() {
        return windows;
    }

    /** Something in the tree changed (or may have): a view rendered before it is stale. */
    public void changed() {
        changes++;
    }

    /**
     * The view a new address space over {@code root} starts with (QEMU's {@code flat_views} lookup in
     * {@code address_space_init}), with its dispatch for {@code pageBits} built: the current view of the same
     * flatview root, or, when there is none or {@code changesPending} (a transaction with changes not yet rendered,
     * in which that view may be stale), a fresh render, which the commit then hands to every address space of the
     * root.
     */
    public FlatView viewForNewAddressSpace(MemoryRegion root, int pageBits, boolean changesPending) {
        MemoryRegion physmr = FlatViewRenderer.flatViewRoot(root);
        FlatView view = flatViews.get(physmr);
        if (view == null || changesPending) {
            FlatRange[] ranges = FlatViewRenderer.render(physmr);
            view = isCurrent(view, physmr) && Arrays.equals(CORE.rangeArray(view), ranges) ? view
                    : CORE.newFlatView(physmr, ranges);
            flatViews.put(physmr, view);
            fresh = view;
            freshRoot = physmr;
            freshChanges = changes;
        }
        // Before the address space publishes the view: its readers look up through this dispatch.
        CORE.ensureDispatch(view, pageBits, unassigned);
        return view;
    }

    /**
     * Renders, builds, tells and publishes, as the class comment says.
     *
     * @param ioeventfds what updates an address space's ioeventfds after its view is published (the memory system's
     *                   {@code address_space_update_ioeventfds})
     * @param failures   where listener exceptions are recorded
     */
    public void commit(List<AddressSpace> addressSpaces, List<MemoryListener> listeners,
                       BiConsumer<AddressSpace, ListenerFailures> ioeventfds, ListenerFailures failures) {
        IdentityHashMap<MemoryRegion, FlatView> newViews = new IdentityHashMap<>();
        FlatView[] next = new FlatView[addressSpaces.size()];
        for (int i = 0; i < next.length; i++) {
            next[i] = viewFor(FlatViewRenderer.flatViewRoot(addressSpaces.get(i).root()), newViews);
        }
        for (int i = 0; i < next.length; i++) {
            // Every dispatch a new view needs is built before any view is published (QEMU builds it in
            // generate_memory_topology): readers never build anything.
            CORE.ensureDispatch(next[i], addressSpaces.get(i).pageBits(), unassigned);
        }
        for (FlatView v : next) {
            CORE.deriveFrom(v, null, null);
        }
        flatViews = newViews;
        windows.reset();
        fresh = null;
        freshRoot = null;

        for (MemoryListener l : listeners) {
            failures.call(l, "begin", null, MemoryListener::begin);
        }
        for (int i = 0; i < next.length; i++) {
            AddressSpace as = addressSpaces.get(i);
            FlatView old = as.flatView();
            if (old == next[i]) {
                continue;
            }
            if (!CORE.listeners(as).isEmpty()) {
                ListenerUpdates.topologyPass(as, old, next[i], false, failures);
                ListenerUpdates.topologyPass(as, old, next[i], true, failures);
            }
            CORE.publish(as, next[i]);
        }
        for (AddressSpace as : addressSpaces) {
            ioeventfds.accept(as, failures);
        }
        for (MemoryListener l : listeners) {
            failures.call(l, "commit", null, MemoryListener::commit);
        }
    }

    /** The view of flatview root {@code physmr}: shared within one commit, and the old object if unchanged. */
    private FlatView viewFor(MemoryRegion physmr, IdentityHashMap<MemoryRegion, FlatView> made) {
        FlatView v = made.get(physmr);
        if (v != null) {
            return v;
        }
        FlatView old = flatViews.get(physmr);
        if (old != null && old == fresh && physmr == freshRoot && freshChanges == changes) {
            // Rendered whole for a new address space in this transaction, and nothing changed since: a map built
            // and given its address space in one transaction is rendered once.
            assert Arrays.equals(CORE.rangeArray(old), FlatViewRenderer.render(physmr)) : "stale fresh view of " + physmr;
            made.put(physmr, old);
            return old;
        }
        FlatRange[] ranges;
        long[] changed = null;
        if (isCurrent(old, physmr) && windows.incremental()) {
            long[] w = windows.windowsOf(physmr);
            FlatRange[] oldRanges = CORE.rangeArray(old);
            ranges = w.length == 0 ? oldRanges : FlatViewRenderer.renderWindows(physmr, oldRanges, w);
            changed = RenderWindows.guestWindows(physmr, w);
            assert Arrays.equals(ranges, FlatViewRenderer.render(physmr))
                    : "incremental render of " + physmr + " differs from a full render; windows="
                    + Arrays.toString(w) + "\nold=" + Arrays.toString(oldRanges) + "\nnew="
                    + Arrays.toString(ranges) + "\nfull=" + Arrays.toString(FlatViewRenderer.render(physmr));
        } else {
            ranges = FlatViewRenderer.render(physmr);
        }
        v = isCurrent(old, physmr) && Arrays.equals(CORE.rangeArray(old), ranges) ? old
                : CORE.newFlatView(physmr, ranges);
        if (v != old && changed != null) {
            // Rendered from old by windows: its dispatches can be derived from old's (FlatView.ensureDispatch).
            CORE.deriveFrom(v, old, changed);
        }
        made.put(physmr, v);
        return v;
    }

    /** Whether {@code view} is a view of {@code physmr} at the root's current address (it moves the whole view). */
    private static boolean isCurrent(FlatView view, MemoryRegion physmr) {
        return view != null && CORE.rootAddr(view) == (physmr == null ? 0 : physmr.addr());
    }
}
