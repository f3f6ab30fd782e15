package dev.guestmem.memory;

/**
 * One ioeventfd registration, as QEMU's {@code MemoryRegionIoeventfd}: a write of {@code size} bytes at {@code addr}
 * (carrying {@code data}, when {@code matchData}) signals {@code notifier} instead of running the device. A size of
 * 0 matches writes of any size. On a region the address is region-relative; in an address space's set it is
 * guest-physical. Immutable.
 *
 * @param addr      region-relative or guest-physical address of the first byte
 * @param size      bytes, 0 to 8 (0: any size)
 * @param matchData whether {@code data} must match
 * @param data      the value to match, already in the device's byte order
 * @param notifier  what to signal
 * @param order     the notifier's registration number in its memory system, standing in for QEMU's pointer order
 */
record Ioeventfd(long addr, long size, boolean matchData, long data, EventNotifier notifier, long order) {
    static final Ioeventfd[] NONE = new Ioeventfd[0];

    /** QEMU's {@code memory_region_ioeventfd_before}: the total order the sets are kept in. */
    boolean before(Ioeventfd b) {
        if (addr != b.addr) {
            return U64.lt(addr, b.addr);
        }
        if (size != b.size) {
            return U64.lt(size, b.size);
        }
        if (matchData != b.matchData) {
            return !matchData;
        }
        if (matchData && data != b.data) {
            return U64.lt(data, b.data);
        }
        return order < b.order;
    }

    /**
     * QEMU's {@code memory_region_ioeventfd_equal}: same address, and either side of size 0 (any size) or the same
     * size, match flag, data (when matched) and notifier.
     */
    boolean sameAs(Ioeventfd b) {
        return addr == b.addr && (size == 0 || b.size == 0
                || (size == b.size && matchData == b.matchData && (!matchData || data == b.data)
                    && notifier == b.notifier));
    }

    Ioeventfd at(long newAddr) {
        return new Ioeventfd(newAddr, size, matchData, data, notifier, order);
    }
}
