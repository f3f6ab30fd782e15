package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionCache;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import dev.guestmem.memory.internal.dirty.DirtyMarks;
import dev.guestmem.memory.internal.dispatch.RangeAccess;
import java.lang.foreign.MemorySegment;

/**
 * Which accesses go straight to a flat range's memory instead of through MMIO dispatch: the rules of QEMU's
 * {@code memory_access_is_direct} and of its TLB, in one place for the access path, {@link MemoryRegionCache},
 * DMA mappings and {@link SoftTlb}. Reads are direct the same way everywhere; writes have two rules, which differ
 * in whose read-only flag counts, and so two names.
 *
 * <p>Threading: any thread; the flags read are those of the view the caller loaded (see each method).
 */
public final class DirectAccess {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();

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

    /**
     * The access path's record of {@code fr} for a dispatch: loads may be a plain segment access where
     * {@link #readsDirect} holds, stores where {@link #regionWritesDirect} does, both only over memory that exists and
     * cannot fault (RAM that can fault, and blocks without memory, keep the general path, which handles them).
     */
    public static RangeAccess rangeAccess(FlatRange fr) {
        MemoryRegion mr = fr.region();
        MemorySegment ram = null;
        int flags = 0;
        long ramBase = 0;
        DirtyMarks marks = null;
        DirtyMarks codeBits = null;
        if (mr.ramBlock() instanceof AbstractRamBlock b && CORE.hasHostMemory(b) && !CORE.ramMayFault(mr)) {
            flags = (readsDirect(fr) ? RangeAccess.READ : 0) | (regionWritesDirect(fr) ? RangeAccess.WRITE : 0);
            ram = flags == 0 ? null : b.hostSegment();
            if ((flags & RangeAccess.READ) != 0 && ram.isNative() && rangeWritesDirect(fr)) {
                if (fr.dirtyLogMask() == 0) {
                    flags |= RangeAccess.TLB_PLAIN;
                } else if (fr.dirtyLogMask() == CODE) {
                    flags |= RangeAccess.TLB_CODE;
                }
            }
            ramBase = b.offset();
            if ((flags & RangeAccess.WRITE) != 0) {
                // The range's ram_addr bytes; a block not yet placed (offset UNPLACED) gets no marks.
                long first = ramBase + fr.offsetInRegion();
                DirtyBitmap[] bitmaps = CORE.dirtyBitmaps(mr.system());
                long last = first + (fr.last() - fr.start());
                marks = DirtyMarks.of(bitmaps, fr.dirtyLogMask() & ~CODE, first, last);
                codeBits = DirtyMarks.of(bitmaps, fr.dirtyLogMask() & CODE, first, last);
            }
        }
        return new RangeAccess(fr, mr, flags, fr.dirtyLogMask(), ram, fr.start(), fr.last(),
                fr.offsetInRegion() - fr.start(), ramBase, marks, codeBits);
    }

    private static final int CODE = DirtyMemoryClient.CODE.mask();
}
