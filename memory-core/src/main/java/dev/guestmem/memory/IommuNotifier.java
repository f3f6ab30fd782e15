package dev.guestmem.memory;

import java.util.Objects;

/**
 * A subscription to an IOMMU's mapping changes, as QEMU's {@code IOMMUNotifier}: which events (map, unmap, device
 * IOTLB unmap), over which input range {@code [start, end]} (inclusive, IOMMU-input addresses), for which
 * translation context ({@code iommuIdx}). Register it with {@link MemoryRegion#registerIommuNotifier}. Immutable.
 *
 * <p>Threading: {@link Notify#notify} runs on the thread that called {@link MemoryRegion#notifyIommu} or
 * {@link MemoryRegion#iommuReplay}.
 */
public final class IommuNotifier {
    /** QEMU's {@code IOMMU_NOTIFIER_UNMAP}. */
    public static final int UNMAP = 0x1;
    /** QEMU's {@code IOMMU_NOTIFIER_MAP}. */
    public static final int MAP = 0x2;
    /** QEMU's {@code IOMMU_NOTIFIER_DEVIOTLB_UNMAP}. */
    public static final int DEVIOTLB_UNMAP = 0x4;
    /** Map and unmap events. */
    public static final int IOTLB_EVENTS = MAP | UNMAP;
    /** Every kind of event. */
    public static final int ALL = IOTLB_EVENTS | DEVIOTLB_UNMAP;

    /** The callback. */
    @FunctionalInterface
    public interface Notify {
        void notify(IommuNotifier notifier, IommuTlbEntry entry);
    }

    private final Notify notify;
    private final int flags;
    private final long start;
    private final long end;
    private final int iommuIdx;

    /**
     * @param notify   the callback
     * @param flags    a non-empty set of {@link #MAP}, {@link #UNMAP}, {@link #DEVIOTLB_UNMAP}
     * @param start    first IOMMU-input address of interest
     * @param end      last IOMMU-input address of interest, inclusive, not below {@code start}
     * @param iommuIdx the translation context
     */
    public IommuNotifier(Notify notify, int flags, long start, long end, int iommuIdx) {
        this.notify = Objects.requireNonNull(notify, "notify");
        if (flags == 0 || (flags & ~ALL) != 0) {
            throw new IllegalArgumentException("flags=0x" + Integer.toHexString(flags)
                    + ": expected a non-empty set of MAP, UNMAP, DEVIOTLB_UNMAP");
        }
        if (U64.lt(end, start)) {
            throw new IllegalArgumentException("start=" + U64.hex(start) + " end=" + U64.hex(end) + ": end before start");
        }
        if (iommuIdx < 0) {
            throw new IllegalArgumentException("iommuIdx=" + iommuIdx + ": negative");
        }
        this.flags = flags;
        this.start = start;
        this.end = end;
        this.iommuIdx = iommuIdx;
    }

    public int flags() {
        return flags;
    }

    public long start() {
        return start;
    }

    public long end() {
        return end;
    }

    public int iommuIdx() {
        return iommuIdx;
    }

    /**
     * QEMU's {@code memory_region_notify_iommu_one}: delivers {@code event} if it overlaps this notifier's range and
     * is of a kind it asked for. A device-IOTLB notifier gets the entry cropped to its range; any other notifier
     * must have been given an entry wholly inside its range (an IOMMU model that breaks this has a bug).
     */
    void deliver(IommuTlbEvent event) {
        IommuTlbEntry e = event.entry();
        long entryEnd = e.iova() + e.addrMask();
        if (event.type() == UNMAP && e.perm() != IommuOps.IOMMU_NONE) {
            throw new IllegalArgumentException("type=UNMAP perm=" + e.perm() + ": an unmap event carries no permission");
        }
        if (U64.lt(entryEnd, start) || U64.lt(end, e.iova())) {
            return;
        }
        IommuTlbEntry tmp = e;
        if ((flags & DEVIOTLB_UNMAP) != 0) {
            long iova = U64.max(e.iova(), start);
            tmp = new IommuTlbEntry(e.targetAs(), iova, e.translatedAddr(), U64.min(entryEnd, end) - iova, e.perm());
        } else if (U64.lt(e.iova(), start) || U64.lt(end, entryEnd)) {
            throw new IllegalArgumentException("iova=" + U64.hex(e.iova()) + " addrMask=" + U64.hex(e.addrMask())
                    + " notifierStart=" + U64.hex(start) + " notifierEnd=" + U64.hex(end)
                    + ": the entry overlaps the notifier's range without lying inside it");
        }
        if ((event.type() & flags) != 0) {
            notify.notify(this, tmp);
        }
    }
}
