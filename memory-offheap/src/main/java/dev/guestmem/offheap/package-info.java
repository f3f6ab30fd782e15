/**
 * Guest RAM from the operating system: {@link dev.guestmem.offheap.HostMemoryBackend}, QEMU's
 * {@code memory-backend-ram}, {@code -file} and {@code -memfd} objects and {@code memory_region_init_ram_from_fd},
 * as {@link dev.guestmem.memory.MemorySystem.RamAllocator}s.
 */
package dev.guestmem.offheap;
