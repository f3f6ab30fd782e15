package dev.guestmem.memory;

/**
 * One translation of an IOMMU, as QEMU's {@code IOMMUTLBEntry}.
 *
 * @param targetAs        where the translated address lives
 * @param iova            the input address, aligned down to the page ({@code addr & ~addrMask})
 * @param translatedAddr  the output address of the page's first byte, in {@code targetAs}
 * @param addrMask        the page's offset mask (page size - 1), e.g. {@code 0xfff} for 4 KiB
 * @param perm            {@link IommuOps#IOMMU_NONE}, {@code _RO}, {@code _WO} or {@code _RW}
 */
public record IommuTlbEntry(AddressSpace targetAs, long iova, long translatedAddr, long addrMask, int perm) {
}
