package dev.guestmem.memory;

/**
 * A change of an IOMMU mapping, as QEMU's {@code IOMMUTLBEvent}.
 *
 * @param type  {@link IommuNotifier#MAP}, {@link IommuNotifier#UNMAP} or {@link IommuNotifier#DEVIOTLB_UNMAP}
 * @param entry the mapping (for an unmap, its permission is {@link IommuOps#IOMMU_NONE})
 */
public record IommuTlbEvent(int type, IommuTlbEntry entry) {
}
