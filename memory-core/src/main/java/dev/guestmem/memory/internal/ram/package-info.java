/**
 * The RAM blocks memory-core makes itself: anonymous memory in an {@code Arena}, and blocks that only take space in
 * the ram_addr layout. Not exported; OS-backed RAM lives in memory-offheap.
 */
package dev.guestmem.memory.internal.ram;
