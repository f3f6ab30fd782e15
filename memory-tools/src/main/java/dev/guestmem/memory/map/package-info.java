/**
 * Machine maps as data: the {@code guestmem-map/1} JSON format, loaded into and saved from a
 * {@link dev.guestmem.memory.MemorySystem}.
 */
package dev.guestmem.memory.map;
