package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.IommuNotifier;
import dev.guestmem.memory.IommuOps;
import dev.guestmem.memory.IommuTlbEntry;
import dev.guestmem.memory.IommuTlbEvent;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The notifiers of one IOMMU region, as QEMU keeps them on an {@code IOMMUMemoryRegion}: newest first, with the union
 * of their flags as the IOMMU last accepted it ({@link IommuOps#notifyFlagChanged}). {@link MemoryRegion}'s
 * {@code registerIommuNotifier}, {@code notifyIommu} and {@code iommuReplay} are one-line facades over this.
 *
 * <p>Threading: {@link #register} and {@link #unregister} are for the writer (inside a transaction);
 * {@link #notify} iterates a snapshot and may run on any thread.
 */
public final class IommuNotifiers {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();
    /** Newest first, as QEMU keeps them; any thread may iterate a snapshot. */
    private final CopyOnWriteArrayList<IommuNotifier> notifiers = new CopyOnWriteArrayList<>();
    /** The union of the notifiers' flags as last accepted by the IOMMU. Writer only. */
    private int flags;

    /**
     * QEMU's {@code memory_region_register_iommu_notifier} on IOMMU region {@code mr}. If the IOMMU refuses the new
     * set of flags ({@link IommuOps#notifyFlagChanged} throws), the registration is undone and the exception
     * propagates.
     */
    public void register(MemoryRegion mr, IommuNotifier n) {
        IommuOps ops = mr.iommuOps();
        if (n.iommuIdx() >= ops.numIndexes()) {
            throw new IllegalArgumentException("region=" + mr.name() + " iommuIdx=" + n.iommuIdx() + " numIndexes="
                    + ops.numIndexes() + ": no such translation context");
        }
        if (notifiers.contains(n)) {
            throw new IllegalArgumentException("region=" + mr.name() + ": notifier already registered");
        }
        notifiers.addFirst(n);
        try {
            updateFlags(ops);
        } catch (RuntimeException refused) {
            notifiers.remove(n);
            throw refused;
        }
    }

    /** QEMU's {@code memory_region_unregister_iommu_notifier} on IOMMU region {@code mr}. */
    public void unregister(MemoryRegion mr, IommuNotifier n) {
        if (!notifiers.remove(n)) {
            throw new IllegalArgumentException("region=" + mr.name() + ": notifier not registered");
        }
        updateFlags(mr.iommuOps());
    }

    private void updateFlags(IommuOps ops) {
        int now = 0;
        for (IommuNotifier n : notifiers) {
            now |= n.flags();
        }
        if (now != flags) {
            ops.notifyFlagChanged(flags, now);
        }
        flags = now;
    }

    /** The union of the notifiers' flags. */
    public int flags() {
        return flags;
    }

    /** QEMU's {@code memory_region_notify_iommu}: every notifier of context {@code iommuIdx} hears {@code event}. */
    public void notify(int iommuIdx, IommuTlbEvent event) {
        for (IommuNotifier n : notifiers) {
            if (n.iommuIdx() == iommuIdx) {
                CORE.deliver(n, event);
            }
        }
    }

    /**
     * QEMU's {@code memory_region_iommu_replay} on IOMMU region {@code mr}: tells {@code n} about every current
     * mapping, through the IOMMU's own replay if it has one, else by translating each minimum-size page of the region
     * and notifying those that are mapped.
     */
    public static void replay(MemoryRegion mr, IommuNotifier n) {
        IommuOps ops = mr.iommuOps();
        if (ops.replay(mr, n) || mr.size() == 0) {
            return;
        }
        long granularity = ops.minPageSize();
        long last = U64.lastOffset(mr.size());
        for (long addr = 0; ; addr += granularity) {
            IommuTlbEntry e = ops.translate(addr, IommuOps.IOMMU_NONE, n.iommuIdx());
            if (e.perm() != IommuOps.IOMMU_NONE) {
                CORE.deliver(n, new IommuTlbEvent(IommuNotifier.MAP, e));
            }
            if (U64.lt(last - addr, granularity)) {
                break; // the next page would lie past the region (or past 2^64)
            }
        }
    }
}
