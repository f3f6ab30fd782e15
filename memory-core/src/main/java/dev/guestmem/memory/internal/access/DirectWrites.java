package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.DmaMapping;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionCache;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import dev.guestmem.memory.internal.dirty.DirtyEpoch;
import dev.guestmem.memory.internal.dirty.DirtyMarks;
import dev.guestmem.memory.internal.dispatch.RangeAccess;

/**
 * What must follow bytes of RAM written by anyone but a {@link SoftTlb} hit, as QEMU's
 * {@code invalidate_and_set_dirty}: the access path's stores, {@code write}, {@code set} and {@code writeRom} once
 * their bytes are in memory, a {@link MemoryRegionCache} whose stores are completed by
 * {@link MemoryRegionCache#invalidate}, and a direct {@link DmaMapping} unmapped after a write. The bytes are marked
 * dirty for every client that logs the region except CODE, and for CODE each protected page they touch is reported
 * to the {@link CodeProtection} listeners (QEMU's {@code tb_invalidate_phys_range}), whose JIT decides when the page
 * is unprotected; a write never sets a CODE bit by itself.
 *
 * <p>Threading: any thread, without locks.
 */
public final class DirectWrites {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();

    private static final int CODE = DirtyMemoryClient.CODE.mask();

    private DirectWrites() {
    }

    /**
     * Records that {@code len} bytes at region-relative {@code regionOffset} of {@code mr} (a region backed by a
     * {@link RamBlock}) were written directly, for the clients that log {@code mr} now.
     *
     * @param len bytes, at least 1
     */
    public static void invalidateAndSetDirty(MemoryRegion mr, long regionOffset, long len) {
        assert mr.ramBlock() != null : "region=" + mr.name() + " has no RAM block";
        assert len > 0 : "len=" + len;
        // The region's own mask, read without the lock: a change of logging is published with the next view, and a
        // writer racing with it may mark or not, as a QEMU vCPU racing a log start may.
        int mask = mr.dirtyLogMask();
        if (mask != 0) {
            invalidateAndSetDirty(mr, mask, regionOffset, len);
        }
    }

    /**
     * The same for the clients in {@code mask} (a flat range's dirty-log mask, not 0), after the bytes landed: marks
     * them for every client but CODE, then reports them for CODE. Marking comes first so that a listener that throws
     * (a JIT leaving the block it is running) leaves no client unmarked.
     */
    public static void invalidateAndSetDirty(MemoryRegion mr, int mask, long regionOffset, long len) {
        setDirty(mr, mask & ~CODE, regionOffset, len);
        if ((mask & CODE) != 0) {
            CORE.codeWritten(CodeProtection.of(mr.system()), mr.ramBlock().offset() + regionOffset, len);
        }
    }

    /**
     * The same for a direct write of {@code len} bytes at region offset {@code regionOffset} of the range of {@code r}
     * (whose {@link RangeAccess#dirtyLogMask} is not 0): through the range's resolved {@link RangeAccess#marks} where it
     * has them, else through the bitmaps; CODE is reported after the marks in either case.
     */
    public static void invalidateAndSetDirty(RangeAccess r, long regionOffset, long len) {
        // The epoch read after the caller's store (a plain read of native memory, kept after it): in the epoch the
        // range was armed in, every page is marked already and no take has taken one since; see armedEpoch.
        if (DirtyEpoch.REARMING && DirtyEpoch.current() == r.armedEpoch()) {
            return;
        }
        final DirtyMarks marks = r.marks;
        if (marks == null) {
            if (r.dirtyLogMask == CODE) {
                codeWritten(r, regionOffset, len); // CODE alone, as a JIT emulator's RAM: nothing to mark
                return;
            }
            invalidateAndSetDirty(r.region, r.dirtyLogMask, regionOffset, len);
            return;
        }
        if (marks.mark(r.ramBase + regionOffset, len) && (r.dirtyLogMask & CODE) == 0) {
            arm(r, marks);
        }
        if ((r.dirtyLogMask & CODE) != 0) {
            codeWritten(r, regionOffset, len);
        }
    }

    /**
     * Reports a direct write of {@code len} bytes at region offset {@code regionOffset} of the range of {@code r},
     * which CODE logs, to the code-protection listeners where its page is protected. A write inside one page whose bit
     * the range's record holds ({@link RangeAccess#codeBits}) and finds set (not protected) reports nothing, as
     * {@code CodeProtection.written} would find, without its walk of the bitmap's table: the address space's store to
     * a JIT emulator's RAM. Read after the bytes landed, as that method reads it.
     */
    private static void codeWritten(RangeAccess r, long regionOffset, long len) {
        final long ramAddr = r.ramBase + regionOffset;
        final DirtyMarks bits = r.codeBits;
        if (bits != null && ramAddr >>> bits.pageBits() == (ramAddr + len - 1) >>> bits.pageBits()
                && !bits.clean(ramAddr)) {
            return;
        }
        CORE.codeWritten(CodeProtection.of(r.region.system()), ramAddr, len);
    }

    /** Arms {@code r} if its whole range is marked: the epoch first (acquire), then the words (see armedEpoch). */
    private static void arm(RangeAccess r, DirtyMarks marks) {
        final long epoch = DirtyEpoch.acquire();
        if (marks.allMarked()) {
            r.arm(epoch);
        }
    }

    /**
     * QEMU's {@code cpu_physical_memory_set_dirty_range}: sets the bits of {@code [regionOffset, regionOffset + len)}
     * of RAM-backed {@code mr} in the bitmap of every client in {@code mask}, CODE's included (which unprotects).
     */
    public static void setDirty(MemoryRegion mr, int mask, long regionOffset, long len) {
        long ramAddr = mr.ramBlock().offset() + regionOffset;
        DirtyBitmap[] bitmaps = CORE.dirtyBitmaps(mr.system());
        for (int c = 0; c < bitmaps.length; c++) {
            if ((mask & (1 << c)) != 0) {
                bitmaps[c].setDirtyRange(ramAddr, len);
            }
        }
    }
}
