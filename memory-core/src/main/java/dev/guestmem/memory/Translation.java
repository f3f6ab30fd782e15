package dev.guestmem.memory;

/**
 * Where an access lands, as QEMU's {@code address_space_translate} reports it (a region, {@code *xlat} and
 * {@code *plen}). Immutable.
 *
 * @param region   the terminating region that serves the address, after following any IOMMUs on the way into
 *                 their target address spaces; {@link MemorySystem#unassignedRegion()} when nothing is mapped there
 *                 or an IOMMU refuses the access (QEMU's {@code io_mem_unassigned})
 * @param xlat     region-relative offset of the address (for the unassigned region, the address that missed)
 * @param len      bytes, at most the length asked for: for RAM, ROM and RAM devices clipped at the end of the
 *                 dispatch section holding the address (a range that starts or ends inside a page is split at that
 *                 page's edge, as in QEMU); for anything else the length asked for, because MMIO registers decode
 *                 accesses by their start address (QEMU's {@code address_space_translate_internal}); never past the end of
 *                 an IOMMU page on the way
 * @param readonly whether the mapping is read-only (the region's own flag, or one inherited from an alias or
 *                 container above it)
 */
public record Translation(MemoryRegion region, long xlat, long len, boolean readonly) {
}
