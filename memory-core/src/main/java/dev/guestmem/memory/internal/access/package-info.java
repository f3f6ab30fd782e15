/**
 * The access path under {@code AddressSpace}, {@code MemoryRegionCache}, DMA mappings and the soft TLB: section
 * accesses and bulk copies ({@code AccessPath}), MMIO dispatch ({@code MmioDispatch}), DMA map/unmap and the bounce
 * budget ({@code DmaMap}), the direct-access rules ({@code DirectAccess}), the byte-order layouts
 * ({@code ValueLayouts}), RAM that may fault ({@code RamFaults}), what follows a direct write ({@code DirectWrites}),
 * and the notifier lists of IOMMU regions. Direct RAM accesses read only the dispatch's per-range records and the
 * arguments they are given; MMIO, DMA and the cold paths reach the API's package-private state through
 * {@code internal.CoreAccess}. Not exported.
 */
package dev.guestmem.memory.internal.access;
