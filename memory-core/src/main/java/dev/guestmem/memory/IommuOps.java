package dev.guestmem.memory;

/**
 * The translation callbacks of an IOMMU region, as QEMU's {@code IOMMUMemoryRegionClass}. An IOMMU region is a
 * terminating region in the flat view; accesses that reach it are translated into another address space.
 *
 * <p>Threading: {@link #translate} runs on the accessing thread and must not block on the topology lock.
 */
public interface IommuOps {
    /** Access permissions of a translation, as QEMU's {@code IOMMUAccessFlags}. */
    int IOMMU_NONE = 0;
    int IOMMU_RO = 1;
    int IOMMU_WO = 2;
    int IOMMU_RW = IOMMU_RO | IOMMU_WO;

    /**
     * Translates one IOMMU page.
     *
     * @param addr     region-relative address being accessed
     * @param flag     the access wanted: {@link #IOMMU_RO}, {@link #IOMMU_WO}, {@link #IOMMU_RW}, or
     *                 {@link #IOMMU_NONE} for a lookup that checks nothing
     * @param iommuIdx the index returned by {@link #attrsToIndex}
     */
    IommuTlbEntry translate(long addr, int flag, int iommuIdx);

    /** QEMU's {@code attrs_to_index}: which translation context serves accesses with these attributes. */
    default int attrsToIndex(MemTxAttrs attrs) {
        return 0;
    }

    /** QEMU's {@code num_indexes}: how many translation contexts there are. */
    default int numIndexes() {
        return 1;
    }

    /** QEMU's {@code get_min_page_size}: the smallest page, in bytes, this IOMMU maps. */
    default long minPageSize() {
        return 4096;
    }

    /**
     * QEMU's {@code notify_flag_changed}: the union of the registered notifiers' flags changes from {@code oldFlags}
     * to {@code newFlags}. Throw to refuse (for example an IOMMU that cannot report mappings); the registration that
     * caused it is then undone.
     */
    default void notifyFlagChanged(int oldFlags, int newFlags) {
    }

    /**
     * QEMU's {@code replay}: tells {@code notifier} about every current mapping. Return false to let guestmem do it
     * the generic way (translate every {@link #minPageSize()} page of the region and notify each one mapped).
     */
    default boolean replay(MemoryRegion iommu, IommuNotifier notifier) {
        return false;
    }
}
