package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionCache;
import dev.guestmem.memory.SoftTlb;

/**
 * Which accesses go straight to a flat range's memory instead of through MMIO dispatch: the rules of QEMU's
 * {@code memory_access_is_direct} and of its TLB, in one place for the access path, {@link MemoryRegionCache},
 * DMA mappings and {@link SoftTlb}. Reads are direct the same way everywhere; writes have two rules, which differ
 * in whose read-only flag counts, and so two names.
 *
 * <p>Threading: any thread; the flags read are those of the view the caller loaded (see each method).
 */
public final class DirectAccess {
    private DirectAccess() {
    }

    /** QEMU's {@code memory_access_is_direct(mr, false)}, with romd mode as the snapshot rendered it. */
    public static boolean readsDirect(FlatRange fr) {
        final MemoryRegion.Kind k = fr.region().kind();
        return k == MemoryRegion.Kind.RAM || k == MemoryRegion.Kind.ROM || k == MemoryRegion.Kind.RAM_DEVICE
                || (k == MemoryRegion.Kind.ROM_DEVICE && fr.romdMode());
    }

    /**
     * QEMU's {@code memory_access_is_direct(mr, true)}, for the access path, caches and DMA: RAM that the region
     * itself does not make read-only. RAM devices are direct too: QEMU routes them through ops that store straight
     * into their memory, read-only or not.
     */
    public static boolean regionWritesDirect(FlatRange fr) {
        MemoryRegion mr = fr.region();
        // The region's own flag, not the range's inherited one (QEMU reads mr->readonly). It is a writer field read
        // without a lock: setReadonly publishes a new view, and a reader that acquired that view sees the new flag;
        // a reader still on an older view may see either, as a QEMU vCPU in an RCU section may.
        return (mr.kind() == MemoryRegion.Kind.RAM && !mr.isReadonly()) || mr.kind() == MemoryRegion.Kind.RAM_DEVICE;
    }

    /**
     * A CPU store through a soft TLB may go straight to memory: RAM or a RAM device, not read-only through this
     * mapping (QEMU's TLB looks at {@code section->readonly}, which an alias or container passes down, unlike
     * {@link #regionWritesDirect}).
     */
    public static boolean rangeWritesDirect(FlatRange fr) {
        return isRamOrRamDevice(fr) && !fr.readonly();
    }

    /** RAM or a RAM device, whatever its flags. */
    public static boolean isRamOrRamDevice(FlatRange fr) {
        final MemoryRegion.Kind k = fr.region().kind();
        return k == MemoryRegion.Kind.RAM || k == MemoryRegion.Kind.RAM_DEVICE;
    }
}
