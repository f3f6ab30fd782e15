/**
 * The bridge from memory-core's internal layers into the API package's own state: {@link
 * dev.guestmem.memory.internal.CoreAccess}, registered by {@code MemorySystem} with {@link
 * dev.guestmem.memory.internal.SharedSecrets}. Not exported. Cold paths only.
 */
package dev.guestmem.memory.internal;
