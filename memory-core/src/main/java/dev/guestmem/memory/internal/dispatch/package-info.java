/**
 * QEMU's {@code AddressSpaceDispatch}: the radix tree from guest-physical pages to sections, its builder, its
 * incremental updater and its subpages. Exported only to memory-tools ({@code info mtree -d}) and memory-bench.
 */
package dev.guestmem.memory.internal.dispatch;
