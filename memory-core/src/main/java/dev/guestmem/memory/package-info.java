/**
 * QEMU's memory API: the region tree ({@link dev.guestmem.memory.MemoryRegion}), transactions and address spaces
 * ({@link dev.guestmem.memory.MemorySystem}, {@link dev.guestmem.memory.AddressSpace}), rendered flat views
 * ({@link dev.guestmem.memory.FlatView}) with their page-table lookup
 * ({@code AddressSpaceDispatch}, {@link dev.guestmem.memory.AddressSpace#translate}), the
 * listeners told about them ({@link dev.guestmem.memory.MemoryListener}), and the access path: reads, writes and
 * ld/st through an address space, with QEMU's MMIO dispatch for everything that is not RAM, ranges translated once
 * for repeated access ({@link dev.guestmem.memory.MemoryRegionCache}), and DMA mappings with bounce buffers
 * ({@link dev.guestmem.memory.AddressSpace#map}).
 *
 * <h2>Units</h2>
 * Addresses and sizes are unsigned 64-bit values in a {@code long}; compare them with {@link dev.guestmem.memory.U64}
 * or {@link java.lang.Long#compareUnsigned}. A <em>guest-physical</em> address is an address inside an address
 * space; a <em>region-relative</em> offset is counted from a region's first byte. Sizes are bytes, and the size
 * {@code -1} (UINT64_MAX) means 2^64, as in QEMU. Ranges are carried as a first and an inclusive last address.
 *
 * <h2>Memory ordering</h2>
 * The words used in comments at every fence, release store and acquire load:
 * <ul>
 *   <li><b>Writer</b>: the one thread inside a transaction, holding the topology lock of its
 *   {@link dev.guestmem.memory.MemorySystem}. Only the writer changes the region tree.</li>
 *   <li><b>Publish</b>: the writer stores a new immutable {@link dev.guestmem.memory.FlatView} into an address space
 *   with a <em>release</em> store, after the view (and everything it points to) is completely built.</li>
 *   <li><b>Reader</b>: any thread that loads an address space's view with an <em>acquire</em> load. The acquire pairs
 *   with the publishing release, so the reader sees the fully built view. A reader never locks and never sees a
 *   half-built view; it keeps using the view it loaded (a snapshot) for the whole of one access.</li>
 *   <li><b>Plain</b>: fields written only by the writer under the lock and read only by the writer.</li>
 *   <li><b>Grace period</b>: the wait of {@link dev.guestmem.memory.Rcu#synchronize()} until every reader inside a
  read-side section of that {@link dev.guestmem.memory.Rcu} when the wait began has left it. Memory that no published
  view reaches any more (a destroyed region's RAM block) is freed only after one, and only by the RCU reclaimer.</li>
  <li><b>Racy hint</b>: a plain field that every reader may read and overwrite without ordering (the
 *   most-recently-used section of an {@code AddressSpaceDispatch}). Allowed only where every
 *   value the field can ever hold is valid to use and is checked before it is trusted, so a stale or lost value
 *   costs time, never correctness.</li>
 * </ul>
 */
package dev.guestmem.memory;

import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
