package dev.guestmem.memory;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * A view of the region tree from one bus master, as QEMU's {@code AddressSpace}: a name, a root region and the
 * current {@link FlatView}, which the writer replaces on commit with one release store and readers load with
 * acquire. Addresses are translated through the view's {@link AddressSpaceDispatch} for this address space's page
 * size.
 *
 * <p>Threading: {@link #flatView()}, {@link #dispatch()} and {@link #translate} may be called from any thread
 * without locks and never block; everything else is for the writer (under the topology lock, which the methods
 * take themselves).
 */
public final class AddressSpace {
    private static final VarHandle CURRENT_MAP;

    static {
        try {
            CURRENT_MAP = MethodHandles.lookup().findVarHandle(AddressSpace.class, "currentMap", FlatView.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final MemorySystem system;
    private final String name;
    private final MemoryRegion root;
    /** Pages of the dispatch are {@code 2^pageBits} bytes (QEMU's {@code TARGET_PAGE_BITS}). */
    private final int pageBits;
    /** Written only by {@link #publish} (writer, topology lock held) with release; read with acquire. */
    @SuppressWarnings("unused")
    private FlatView currentMap;
    /** Changes whenever the published view changes; read with acquire, like the view. */
    private volatile long generation;
    /** This address space's listeners, ascending priority, registration order among equals. Writer only. */
    final ArrayList<MemoryListener> listeners = new ArrayList<>();

    AddressSpace(MemorySystem system, String name, MemoryRegion root, int pageBits, FlatView initial) {
        this.system = system;
        this.name = name;
        this.root = root;
        this.pageBits = pageBits;
        CURRENT_MAP.setRelease(this, initial);
    }

    public String name() {
        return name;
    }

    public MemoryRegion root() {
        return root;
    }

    public MemorySystem system() {
        return system;
    }

    /**
     * The current flat view. Acquire load: everything the writer did before publishing this view is visible to the
     * caller, and the view itself never changes afterwards.
     */
    public FlatView flatView() {
        return (FlatView) CURRENT_MAP.getAcquire(this);
    }

    /** The page size of this address space's dispatch: {@code 2^pageBits} bytes. */
    public int pageBits() {
        return pageBits;
    }

    /**
     * The dispatch of the current view (QEMU's {@code address_space_to_dispatch}), from one acquire load of the
     * view. A caller that looks up several things keeps the dispatch it got, so that they all come from one
     * snapshot: the section indexes of one dispatch mean nothing in another.
     */
    public AddressSpaceDispatch dispatch() {
        return flatView().dispatchFor(pageBits);
    }

    /**
     * QEMU's {@code address_space_translate}: the region serving guest-physical {@code addr}, the offset inside it,
     * and how many of the {@code len} bytes from there the caller may treat as one piece (see {@link Translation}).
     * Unmapped addresses give {@link MemorySystem#unassignedRegion()}. One snapshot, lock-free; the result is the
     * only allocation. Hot paths that can do without it call {@link AddressSpaceDispatch#sectionIndex} on
     * {@link #dispatch()} instead.
     *
     * @param addr    guest-physical address
     * @param len     bytes wanted (unsigned)
     * @param isWrite whether the access writes; with {@code attrs}, what an IOMMU on the way needs to decide
     * @param attrs   the transaction's attributes
     */
    public Translation translate(long addr, long len, boolean isWrite, MemTxAttrs attrs) {
        AddressSpaceDispatch d = dispatch();
        int s = d.sectionIndex(addr);
        MemoryRegionSection section = d.section(s);
        MemoryRegion mr = section.region();
        long xlat = d.offsetInRegion(s, addr);
        // RAM may be used directly up to the end of the section; MMIO decodes by start address, so QEMU leaves
        // its length alone and lets the access path split it by the device's access sizes.
        long plen = mr.isRam() ? d.clipToSection(s, addr, len) : len;
        if (mr.kind() == MemoryRegion.Kind.IOMMU) {
            return throughIommu(section, xlat, plen, isWrite, attrs);
        }
        return new Translation(mr, xlat, plen, section.readonly());
    }

    /**
     * Where QEMU's {@code flatview_do_translate} hands an address that reached an IOMMU region to
     * {@code address_space_translate_iommu}: the loop that asks the IOMMU for a TLB entry ({@code attrsToIndex},
     * then {@code translate} with {@code isWrite}), checks its permissions, and continues in the target address
     * space until a region that is not an IOMMU answers. That loop is the IOMMU part of issue 3 and is not built
     * yet; until then the answer is the IOMMU region's own section: the IOMMU region, the offset inside it, and
     * the length asked for, so that the access path can see that an IOMMU stands in the way.
     */
    private static Translation throughIommu(MemoryRegionSection section, long xlat, long len, boolean isWrite,
                                            MemTxAttrs attrs) {
        return new Translation(section.region(), xlat, len, section.readonly());
    }

    /** A number that changes every time a different view is published; a cache keyed on it is stale when it moves. */
    public long generation() {
        return generation;
    }

    /**
     * QEMU's {@code memory_listener_register}: attaches a listener and replays the current view to it (begin,
     * {@code regionAdd} and {@code logStart} for every section, commit).
     */
    public void registerListener(MemoryListener listener) {
        system.registerListener(this, listener);
    }

    /** QEMU's {@code memory_listener_unregister}: tells the listener every section is gone, then detaches it. */
    public void unregisterListener(MemoryListener listener) {
        system.unregisterListener(this, listener);
    }

    /** The listeners of this address space in priority order. */
    public List<MemoryListener> listeners() {
        system.begin();
        try {
            return List.copyOf(listeners);
        } finally {
            system.commit();
        }
    }

    /** Publishes a new view. Writer only, topology lock held. */
    void publish(FlatView view) {
        // Release: a reader that acquires this view sees it fully built, and everything the writer did before.
        CURRENT_MAP.setRelease(this, view);
        generation = generation + 1;
    }

    @Override
    public String toString() {
        return "AddressSpace[" + name + ", root=" + root.name() + (pageBits == MemorySystem.DEFAULT_PAGE_BITS ? ""
                : ", pageBits=" + pageBits) + "]";
    }
}
