package dev.guestmem.offheap.vhost;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;

/** Ends the tests' guest RAM at once, so no memfd is closed later by a cleaner while another test counts fds. */
final class GuestRam {
    private GuestRam() {
    }

    /** Takes each region out of its container, destroys it and waits until its memory and fd are freed. */
    static void release(MemorySystem system, MemoryRegion... regions) {
        system.transaction(() -> {
            for (MemoryRegion r : regions) {
                if (r.container() != null) {
                    r.container().delSubregion(r);
                }
            }
        });
        for (MemoryRegion r : regions) {
            r.destroy();
        }
        system.rcu().barrier();
    }
}
