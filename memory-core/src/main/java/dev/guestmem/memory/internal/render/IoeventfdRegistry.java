package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.EventNotifier;
import dev.guestmem.memory.MemoryRegion;
import java.util.IdentityHashMap;

/**
 * One memory system's ioeventfd bookkeeping between {@code memory_region_add_eventfd}/{@code _del_eventfd} and the
 * commit's {@code address_space_update_ioeventfds}: the registration order of event notifiers (a stable total order,
 * as QEMU orders them by pointer), how many ioeventfds are registered on all regions (while none is, no commit scans
 * a view for them), and whether one changed on an enabled region since the last commit. The registrations themselves
 * stay on their regions ({@link Ioeventfd} arrays that the write path reads); what a commit tells listeners is
 * {@link ListenerUpdates#ioeventfds}.
 *
 * <p>Threading: writer only (the topology lock held).
 */
public final class IoeventfdRegistry {
    /** Registration numbers of event notifiers, in first-registration order. */
    private final IdentityHashMap<EventNotifier, Long> notifierOrders = new IdentityHashMap<>();
    /** Ioeventfd registrations on all regions. */
    private int registrations;
    private boolean updatePending;

    /**
     * A registration of {@code e} for a write of {@code size} bytes (0: any size) at region offset {@code addr} of
     * {@code mr}, matching {@code data} (given in the target's byte order, kept in the device's, as QEMU's
     * {@code adjust_endianness} converts it) when {@code matchData}. Counts nothing yet.
     *
     * @throws IllegalArgumentException if {@code size} is not 0, 1, 2, 4 or 8
     */
    public Ioeventfd newIoeventfd(MemoryRegion mr, long addr, int size, boolean matchData, long data,
                                  EventNotifier e) {
        RegionChecks.checkIoeventfdSize(mr, addr, size);
        boolean targetBig = mr.system().targetBigEndian();
        DeviceEndian dev = mr.ops() == null ? DeviceEndian.NATIVE : mr.ops().endianness();
        boolean deviceBig = dev == DeviceEndian.NATIVE ? targetBig : dev == DeviceEndian.BIG;
        long d = deviceBig == targetBig ? data : Ioeventfd.swapBytes(data, size);
        return new Ioeventfd(addr, size, matchData, d, e, notifierOrders.computeIfAbsent(e,
                k -> (long) notifierOrders.size()));
    }

    /**
     * Counts a registration added (+1) or removed (-1) on a region; when that region is {@code enabled} the next
     * commit tells listeners.
     */
    public void registered(int delta, boolean enabled) {
        registrations += delta;
        if (enabled) {
            updatePending = true;
        }
    }

    /** Whether an ioeventfd changed on an enabled region since the last call; clears the flag. */
    public boolean takeUpdatePending() {
        boolean pending = updatePending;
        updatePending = false;
        return pending;
    }

    /**
     * QEMU's {@code address_space_update_ioeventfds}: the ioeventfds of {@code as} as its current view maps them,
     * listeners told the difference from {@code old}, what {@code as} had; {@code old} itself when nothing is
     * registered anywhere and {@code as} had none (no need to scan the view).
     */
    public Ioeventfd[] update(AddressSpace as, Ioeventfd[] old, ListenerFailures failures) {
        if (old.length == 0 && registrations == 0) {
            return old;
        }
        return ListenerUpdates.ioeventfds(as, old, failures);
    }
}
