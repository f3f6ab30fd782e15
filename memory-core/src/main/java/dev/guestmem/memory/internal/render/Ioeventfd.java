package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.EventNotifier;
import dev.guestmem.memory.U64;

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
public record Ioeventfd(long addr, long size, boolean matchData, long data, EventNotifier notifier, long order) {
    public static final Ioeventfd[] NONE = new Ioeventfd[0];

    /** QEMU's {@code memory_region_ioeventfd_before}: the total order the sets are kept in. */
    public boolean before(Ioeventfd b) {
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
    public boolean sameAs(Ioeventfd b) {
        return addr == b.addr && (size == 0 || b.size == 0
                || (size == b.size && matchData == b.matchData && (!matchData || data == b.data)
                    && notifier == b.notifier));
    }

    public Ioeventfd at(long newAddr) {
        return new Ioeventfd(newAddr, size, matchData, data, notifier, order);
    }

    /** {@code fds} (in QEMU's order) with {@code fd} added in its place; a new array. */
    public static Ioeventfd[] inserted(Ioeventfd[] fds, Ioeventfd fd) {
        int i = 0;
        while (i < fds.length && !fd.before(fds[i])) {
            i++;
        }
        Ioeventfd[] next = new Ioeventfd[fds.length + 1];
        System.arraycopy(fds, 0, next, 0, i);
        next[i] = fd;
        System.arraycopy(fds, i, next, i + 1, fds.length - i);
        return next;
    }

    /**
     * {@code fds} without the first registration {@link #sameAs} {@code fd}, a new array; {@code fds} itself when
     * none is.
     */
    public static Ioeventfd[] removed(Ioeventfd[] fds, Ioeventfd fd) {
        int i = 0;
        while (i < fds.length && !fd.sameAs(fds[i])) {
            i++;
        }
        if (i == fds.length) {
            return fds;
        }
        Ioeventfd[] next = new Ioeventfd[fds.length - 1];
        System.arraycopy(fds, 0, next, 0, i);
        System.arraycopy(fds, i + 1, next, i, fds.length - i - 1);
        return next;
    }

    /** A {@code size}-byte value (0 meaning any size: unchanged) with its bytes reversed. */
    public static long swapBytes(long data, int size) {
        return switch (size) {
            case 2 -> Short.toUnsignedLong(Short.reverseBytes((short) data));
            case 4 -> Integer.toUnsignedLong(Integer.reverseBytes((int) data));
            case 8 -> Long.reverseBytes(data);
            default -> data;
        };
    }

    /**
     * QEMU's {@code memory_region_dispatch_write_eventfds}: signals the first of {@code fds} that a write of
     * {@code size} bytes of {@code data} (device byte order) at region offset {@code addr} matches, and says whether
     * one did. Lock-free; for the write path of any thread.
     */
    public static boolean signalFirst(Ioeventfd[] fds, long addr, long data, int size) {
        for (Ioeventfd fd : fds) {
            if (fd.addr == addr && (fd.size == 0 || (fd.size == size && (!fd.matchData || fd.data == data)))) {
                fd.notifier.set();
                return true;
            }
        }
        return false;
    }
}
