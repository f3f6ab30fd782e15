package dev.guestmem.memory;

/**
 * What kind of memory a {@link RamBlock} is, as QEMU's {@code RAM_*} block flags (include/exec/memory.h). A backend
 * reports the flags of its memory; the {@link MemorySystem} adds {@link #RESIZEABLE} for the RAM it makes resizeable.
 */
public enum RamFlag {
    /** QEMU's {@code RAM_PREALLOC}: memory the caller supplied and owns; guestmem never frees it. */
    PREALLOC,
    /** QEMU's {@code RAM_SHARED}: a shared mapping that other processes may map too. */
    SHARED,
    /** QEMU's {@code RAM_RESIZEABLE}: the used length may change, up to the max length. */
    RESIZEABLE,
    /**
     * QEMU's {@code RAM_READONLY}: memory mapped read-only ({@code PROT_READ}). The region over it is read-only
     * ({@link MemoryRegion#isReadonly()}), so a guest store is refused as a store to ROM is.
     */
    READONLY,
    /** QEMU's {@code RAM_READONLY_FD}: the file behind the memory was opened read-only ({@code O_RDONLY}). */
    READONLY_FD,
    /** QEMU's {@code RAM_PMEM}: persistent memory, whose contents outlive the machine. */
    NONVOLATILE,
    /** QEMU's {@code RAM_NORESERVE}: no swap space is reserved for it (MAP_NORESERVE). */
    NORESERVE
}
