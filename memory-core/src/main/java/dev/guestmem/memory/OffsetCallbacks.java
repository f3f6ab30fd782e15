package dev.guestmem.memory;

/**
 * The callbacks of {@link MemoryRegionOps} built with an offset (QEMU 2012's {@code memory_region_set_offset}): each
 * wraps the device's own callback and adds the offset to the region offset it passes on. Only ops with an offset pay
 * for the extra call.
 *
 * <p>Threading: as the wrapped callbacks.
 */
final class OffsetCallbacks {
    private OffsetCallbacks() {
    }

    static MemoryRegionOps.Read read(MemoryRegionOps.Read read, long offset) {
        return (addr, size) -> read.read(addr + offset, size);
    }

    static MemoryRegionOps.Write write(MemoryRegionOps.Write write, long offset) {
        return (addr, data, size) -> write.write(addr + offset, data, size);
    }

    static MemoryRegionOps.ReadWithAttrs readWithAttrs(MemoryRegionOps.ReadWithAttrs read, long offset) {
        return (addr, data, size, attrs) -> read.read(addr + offset, data, size, attrs);
    }

    static MemoryRegionOps.WriteWithAttrs writeWithAttrs(MemoryRegionOps.WriteWithAttrs write, long offset) {
        return (addr, data, size, attrs) -> write.write(addr + offset, data, size, attrs);
    }
}
