package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.IommuOps;
import dev.guestmem.memory.IommuTlbEntry;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.dispatch.RangeAccess;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.guestmem.memory.internal.access.DirectAccess.readsDirect;
import static dev.guestmem.memory.internal.access.DirectAccess.regionWritesDirect;
import static dev.guestmem.memory.internal.access.ValueLayouts.U64_LE;

/**
 * The access path behind {@link AddressSpace}'s read, write and ld/st methods, as QEMU's {@code flatview_read},
 * {@code flatview_write}, {@code address_space_write_rom}, {@code address_space_set} and the
 * {@code address_space_ld*}/{@code st*} family. Every method works on the one view snapshot (its dispatch) its caller
 * loaded, so one access never sees two maps.
 *
 * <p>How a section is accessed (QEMU's {@code memory_access_is_direct}, decided by the terminating region):
 * <ul>
 *   <li>Reads are direct (a copy from the region's {@link RamBlock} segment) for RAM, ROM, RAM devices, and ROM
 *   devices in romd mode.</li>
 *   <li>Writes are direct for RAM that is not itself read-only, and for RAM devices.</li>
 *   <li>Everything else goes through {@link MmioDispatch} to the region's ops: I/O regions and ROM devices to their
 *   callbacks; RAM, ROM and read-only RAM to {@link MemoryRegionOps#UNASSIGNED}, as in QEMU where such regions
 *   keep {@code unassigned_mem_ops}, so a write to ROM is dropped with {@link MemTxResult#DECODE_ERROR}. A hole
 *   (no range at the address) is QEMU's unassigned section: the same ops, addressed by the guest-physical address.
 *   IOMMU regions are served the same way until translation follows them.</li>
 * </ul>
 * A read-only <em>mapping</em> of writable RAM (a read-only alias or container above it) does not stop writes here,
 * exactly as in QEMU's {@code address_space_write}: the flag is the section's, and it is the CPU's TLB that discards
 * guest stores to such sections.
 *
 * <p>Bulk copies proceed as QEMU's {@code flatview_read_continue}/{@code flatview_write_continue}: a direct piece
 * runs to the end of its section; an MMIO piece takes the size {@link MmioDispatch#accessSize} allows at its region
 * offset, and (as in QEMU, which cannot clamp MMIO accesses to their section) may reach past the section's end.
 * Results are OR-ed over the pieces, and a failed piece still advances: a read stores its 0 bytes, a write drops
 * its bytes.
 *
 * <p>The ld/st family, as QEMU's: an access that lies inside one direct section is a single segment access of its
 * width; anything else, including an access that runs past the end of a RAM section, is one MMIO dispatch of the
 * whole width to the region at its first byte. QEMU expects these addresses to be aligned.
 *
 * <p>RAM whose memory can fault (a file another process truncated, see {@link RamFaults}) is accessed through
 * {@link RamFaults}: an access that faults ends in {@link MemTxResult#ERROR}, never in an exception. A load reads 0
 * and a store is dropped, and neither marks nor reports anything. A bulk piece that faults is redone page by page:
 * the pages still there are read or written, the missing ones read as zeros or drop their bytes, and the piece is
 * still marked dirty and reported to {@link CodeProtection} (more than was written, never less).
 *
 * <p>Differences from QEMU: a romd read never runs past its section (QEMU reads on in the RAM block, past what the
 * guest sees there); a fault of guest RAM is an error result where QEMU's process dies of SIGBUS.
 *
 * <p>Threading: any thread, without locks; nothing is allocated per access (MMIO state is in the thread's
 * {@link MmioDispatch.IoContext}).
 */
public final class AccessPath {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();

    /** QEMU's {@code address_space_set} writes its fill in pieces of this many bytes, each one write. */
    public static final int FILL_CHUNK = 512;

    private AccessPath() {
    }

    /**
     * The range serving guest-physical {@code addr}, or null for a hole, found through the dispatch's radix tree
     * (its MRU hint first). The only place the access path looks up sections.
     */
    private static FlatRange rangeAt(AddressSpaceDispatch d, long addr) {
        return d.flatRange(d.sectionIndex(addr));
    }

    // ---------------------------------------------------------------- ld/st

    /**
     * One load of {@code size} bytes (1, 2, 4 or 8) at guest-physical {@code addr}.
     *
     * @param result null, or an array whose element 0 receives the {@link MemTxResult}
     * @return the value, zero-extended
     */
    public static long load(AddressSpace as, AddressSpaceDispatch d, long addr, int size, boolean bigEndian,
                            MemTxAttrs attrs, int[] result) {
        // The direct case in as few loads as it takes, from the record of the range found last, else of the range at
        // addr: the range's own bytes (empty unless loads of it are direct: RAM that exists and cannot fault), the
        // access inside them. Everything else (MMIO, IOMMUs, holes, faulting RAM, an access past the range) goes on
        // in loadGeneral.
        final RangeAccess r = direct(d, addr, size, false);
        if (r == null) {
            return loadGeneral(as, d, addr, size, bigEndian, attrs, result);
        }
        long v;
        try {
            v = ValueLayouts.get(r.loadRam, addr - r.first, size, bigEndian);
        } catch (IllegalStateException e) {
            return load(as, afterRelease(as, d, r.range, e), addr, size, bigEndian, attrs, result);
        }
        if (result != null) {
            result[0] = MemTxResult.OK;
        }
        return v;
    }

    /**
     * The record whose {@link RangeAccess#loadRam} (or, for a store, {@link RangeAccess#storeRam}) holds all
     * {@code size} bytes at guest-physical {@code addr}: the range found last if it does, else the range at
     * {@code addr} if it does; null when neither does, and the access is not the direct case.
     */
    private static RangeAccess direct(AddressSpaceDispatch d, long addr, int size, boolean store) {
        RangeAccess r = d.rangeHint();
        if (inside(store ? r.storeRam : r.loadRam, addr - r.first, size)) {
            return r;
        }
        if (!r.covers(addr)) { // else the hint's own range, only not direct
            r = d.rangeCached(addr); // no walk here: a miss goes the general way, which walks and fills the cache
            if (r == null) {
                return null;
            }
        }
        return inside(store ? r.storeRam : r.loadRam, addr - r.first, size) ? r : null;
    }

    /**
     * Whether {@code size} bytes from offset {@code o} lie inside {@code ram}: the check FFM's access makes again on
     * the same segment. First whether byte {@code o} is inside, one unsigned compare that is false for an address
     * anywhere outside the range, below or above, so that a hint that misses half the time below and half above is
     * still one well-predicted branch; then the access's end, now that {@code o} is known to be below 2^63.
     */
    private static boolean inside(MemorySegment ram, long o, int size) {
        final long n = ram.byteSize();
        return Long.compareUnsigned(o, n) < 0 && o <= n - size;
    }

    /** {@link #load} of everything but the direct case, which it handles too (as before that case had a fast path). */
    private static long loadGeneral(AddressSpace as, AddressSpaceDispatch d, long addr, int size, boolean bigEndian,
                                    MemTxAttrs attrs, int[] result) {
        FlatRange fr = d.rangeAccessWalk(addr).range; // the range at addr, now in the cache for the next
        if (fr != null && fr.region().kind() == MemoryRegion.Kind.IOMMU) {
            Hop hop = iommuHop(fr, addr, size, false, attrs);
            if (hop == null) {
                return loadMmio(null, addr, size, bigEndian, attrs, result);
            }
            if (hop.len() < size && readsDirect(rangeAt(hop.target(), hop.addr()))) {
                return loadMmio(null, addr, size, bigEndian, attrs, result); // RAM across an IOMMU page: as unassigned
            }
            MmioDispatch.IoContext ctx = enterIommu(addr);
            try {
                return load(hop.as(), hop.target(), hop.addr(), size, bigEndian, attrs, result);
            } finally {
                ctx.iommuHops--;
            }
        }
        if (fr != null && readsDirect(fr) && Long.compareUnsigned(size - 1, fr.last() - addr) <= 0) {
            MemoryRegion mr = fr.region();
            MemorySegment ram = mr.ramBlock().hostSegment();
            long off = regionAddr(fr, addr);
            long v;
            try {
                if (CORE.ramMayFault(mr)) {
                    return RamFaults.load(ram, off, size, bigEndian, mr.ramBlock(), addr, result);
                }
                v = ValueLayouts.get(ram, off, size, bigEndian);
            } catch (IllegalStateException e) {
                return load(as, afterRelease(as, d, fr, e), addr, size, bigEndian, attrs, result);
            }
            if (result != null) {
                result[0] = MemTxResult.OK;
            }
            return v;
        }
        return loadMmio(fr, addr, size, bigEndian, attrs, result);
    }

    private static long loadMmio(FlatRange fr, long addr, int size, boolean bigEndian, MemTxAttrs attrs,
                                 int[] result) {
        MmioDispatch.IoContext ctx = MmioDispatch.IoContext.current();
        long v = MmioDispatch.read(ctx, regionOf(fr), opsOf(fr), regionAddr(fr, addr), size, bigEndian, attrs);
        if (result != null) {
            result[0] = ctx.result;
        }
        return v;
    }

    /** One store of the low {@code size} bytes of {@code value} at guest-physical {@code addr}; returns the result. */
    public static int store(AddressSpace as, AddressSpaceDispatch d, long addr, long value, int size,
                            boolean bigEndian, MemTxAttrs attrs) {
        // The direct case as in load; then the marks for the clients logging the range.
        final RangeAccess r = direct(d, addr, size, true);
        if (r == null) {
            return storeGeneral(as, d, addr, value, size, bigEndian, attrs);
        }
        try {
            ValueLayouts.set(r.storeRam, addr - r.first, value, size, bigEndian);
        } catch (IllegalStateException e) {
            return store(as, afterRelease(as, d, r.range, e), addr, value, size, bigEndian, attrs);
        }
        if (r.dirtyLogMask != 0) {
            DirectWrites.invalidateAndSetDirty(r, addr + r.delta, size);
        }
        return MemTxResult.OK;
    }

    /** {@link #store} of everything but the direct case, which it handles too. */
    private static int storeGeneral(AddressSpace as, AddressSpaceDispatch d, long addr, long value, int size,
                                    boolean bigEndian, MemTxAttrs attrs) {
        FlatRange fr = d.rangeAccessWalk(addr).range; // the range at addr, now in the cache for the next
        if (fr != null && fr.region().kind() == MemoryRegion.Kind.IOMMU) {
            Hop hop = iommuHop(fr, addr, size, true, attrs);
            if (hop == null || (hop.len() < size && regionWritesDirect(rangeAt(hop.target(), hop.addr())))) {
                return storeMmio(null, addr, value, size, bigEndian, attrs);
            }
            MmioDispatch.IoContext ctx = enterIommu(addr);
            try {
                return store(hop.as(), hop.target(), hop.addr(), value, size, bigEndian, attrs);
            } finally {
                ctx.iommuHops--;
            }
        }
        if (fr != null && regionWritesDirect(fr) && Long.compareUnsigned(size - 1, fr.last() - addr) <= 0) {
            MemoryRegion mr = fr.region();
            MemorySegment ram = mr.ramBlock().hostSegment();
            long off = regionAddr(fr, addr);
            try {
                if (CORE.ramMayFault(mr)) {
                    if (RamFaults.store(ram, off, value, size, bigEndian, mr.ramBlock(), addr) != MemTxResult.OK) {
                        return MemTxResult.ERROR; // nothing landed: nothing to mark or report
                    }
                } else {
                    ValueLayouts.set(ram, off, value, size, bigEndian);
                }
            } catch (IllegalStateException e) {
                return store(as, afterRelease(as, d, fr, e), addr, value, size, bigEndian, attrs);
            }
            if (fr.dirtyLogMask() != 0) {
                DirectWrites.invalidateAndSetDirty(fr.region(), fr.dirtyLogMask(), off, size);
            }
            return MemTxResult.OK;
        }
        return storeMmio(fr, addr, value, size, bigEndian, attrs);
    }

    private static int storeMmio(FlatRange fr, long addr, long value, int size, boolean bigEndian, MemTxAttrs attrs) {
        return MmioDispatch.write(MmioDispatch.IoContext.current(), regionOf(fr), opsOf(fr), regionAddr(fr, addr),
                value, size, bigEndian, attrs);
    }

    // ---------------------------------------------------------------- bulk

    /**
     * QEMU's {@code flatview_read}: {@code len} bytes from guest-physical {@code addr} into either {@code dstArray}
     * or {@code dstSegment} (the other is null) at {@code dstOffset}. Bounds are the caller's to check.
     */
    public static int read(AddressSpace as, AddressSpaceDispatch d, long addr, MemTxAttrs attrs,
                           MemorySegment dstSegment, byte[] dstArray, long dstOffset, long len) {
        int result = MemTxResult.OK;
        MmioDispatch.IoContext ctx = null;
        long done = 0;
        while (done < len) {
            long a = addr + done;
            long left = len - done;
            // The direct case from the range's record, as in load: one copy to the end of the range or the access.
            final RangeAccess r = d.rangeAccess(a);
            long n;
            if ((r.flags & RangeAccess.READ) != 0) {
                n = U64.clip(left, r.last - a);
                try {
                    copyFromRam(r.ram, a + r.delta, dstSegment, dstArray, dstOffset + done, n);
                } catch (IllegalStateException e) {
                    d = afterRelease(as, d, r.range, e);
                    continue; // this range again, on the current view
                }
                done += n;
                continue;
            }
            FlatRange fr = r.range;
            if (fr != null && fr.region().kind() == MemoryRegion.Kind.IOMMU) {
                Hop hop = iommuHop(fr, a, left, false, attrs);
                if (hop != null) {
                    MmioDispatch.IoContext hopCtx = enterIommu(a);
                    try {
                        result |= read(hop.as(), hop.target(), hop.addr(), attrs, dstSegment, dstArray,
                                dstOffset + done, hop.len());
                    } finally {
                        hopCtx.iommuHops--;
                    }
                    done += hop.len();
                    continue;
                }
                fr = null; // a refused translation reads as unassigned memory
            }
            if (fr != null && readsDirect(fr)) {
                n = U64.clip(left, fr.last() - a);
                MemoryRegion mr = fr.region();
                MemorySegment ram = mr.ramBlock().hostSegment();
                try {
                    if (CORE.ramMayFault(mr)) {
                        result |= RamFaults.read(ram, regionAddr(fr, a), dstSegment, dstArray, dstOffset + done, n,
                                mr.ramBlock(), a);
                    } else {
                        copyFromRam(ram, regionAddr(fr, a), dstSegment, dstArray, dstOffset + done, n);
                    }
                } catch (IllegalStateException e) {
                    d = afterRelease(as, d, fr, e);
                    continue; // this section again, on the current view
                }
            } else {
                if (ctx == null) {
                    ctx = MmioDispatch.IoContext.current();
                }
                MemoryRegionOps ops = opsOf(fr);
                long addr1 = regionAddr(fr, a);
                int l = MmioDispatch.accessSize(ops, left, addr1);
                long v = MmioDispatch.read(ctx, regionOf(fr), ops, addr1, l, false, attrs);
                result |= ctx.result;
                ValueLayouts.putLittleEndian(dstSegment, dstArray, dstOffset + done, l, v);
                n = l;
            }
            done += n;
        }
        return result;
    }

    /**
     * QEMU's {@code flatview_write}: {@code len} bytes to guest-physical {@code addr} from {@code srcArray} or
     * {@code srcSegment} at {@code srcOffset}.
     */
    public static int write(AddressSpace as, AddressSpaceDispatch d, long addr, MemTxAttrs attrs,
                            MemorySegment srcSegment, byte[] srcArray, long srcOffset, long len) {
        int result = MemTxResult.OK;
        MmioDispatch.IoContext ctx = null;
        long done = 0;
        while (done < len) {
            long a = addr + done;
            long left = len - done;
            // The direct case from the range's record, as in store: one copy, then the range's marks.
            final RangeAccess r = d.rangeAccess(a);
            long n;
            if ((r.flags & RangeAccess.WRITE) != 0) {
                n = U64.clip(left, r.last - a);
                final long off = a + r.delta;
                try {
                    copyToRam(srcSegment, srcArray, srcOffset + done, r.ram, off, n);
                } catch (IllegalStateException e) {
                    d = afterRelease(as, d, r.range, e);
                    continue; // this range again, on the current view
                }
                if (r.dirtyLogMask != 0) {
                    DirectWrites.invalidateAndSetDirty(r, off, n);
                }
                done += n;
                continue;
            }
            FlatRange fr = r.range;
            if (fr != null && fr.region().kind() == MemoryRegion.Kind.IOMMU) {
                Hop hop = iommuHop(fr, a, left, true, attrs);
                if (hop != null) {
                    MmioDispatch.IoContext hopCtx = enterIommu(a);
                    try {
                        result |= write(hop.as(), hop.target(), hop.addr(), attrs, srcSegment, srcArray,
                                srcOffset + done, hop.len());
                    } finally {
                        hopCtx.iommuHops--;
                    }
                    done += hop.len();
                    continue;
                }
                fr = null; // a refused translation writes to unassigned memory
            }
            if (fr != null && regionWritesDirect(fr)) {
                n = U64.clip(left, fr.last() - a);
                MemoryRegion mr = fr.region();
                int copied;
                try {
                    copied = copyIntoRam(srcSegment, srcArray, srcOffset + done, mr, regionAddr(fr, a), n, a);
                } catch (IllegalStateException e) {
                    d = afterRelease(as, d, fr, e);
                    continue; // this section again, on the current view
                }
                result |= copied;
                if (fr.dirtyLogMask() != 0) { // even when it faulted: the pages still there were written
                    DirectWrites.invalidateAndSetDirty(mr, fr.dirtyLogMask(), regionAddr(fr, a), n);
                }
            } else {
                if (ctx == null) {
                    ctx = MmioDispatch.IoContext.current();
                }
                MemoryRegionOps ops = opsOf(fr);
                long addr1 = regionAddr(fr, a);
                int l = MmioDispatch.accessSize(ops, left, addr1);
                long v = ValueLayouts.getLittleEndian(srcSegment, srcArray, srcOffset + done, l);
                result |= MmioDispatch.write(ctx, regionOf(fr), ops, addr1, v, l, false, attrs);
                n = l;
            }
            done += n;
        }
        return result;
    }

    /**
     * QEMU's {@code address_space_set}: {@code len} bytes of {@code c}, written as QEMU does in 512-byte writes
     * (which decides where MMIO pieces start).
     */
    public static int set(AddressSpace as, AddressSpaceDispatch d, long addr, byte c, long len, MemTxAttrs attrs) {
        long pattern = (c & 0xffL) * 0x0101_0101_0101_0101L;
        int result = MemTxResult.OK;
        for (long done = 0; done < len; done += FILL_CHUNK) {
            result |= fill(as, d, addr + done, pattern, Math.min(FILL_CHUNK, len - done), attrs);
        }
        return result;
    }

    private static int fill(AddressSpace as, AddressSpaceDispatch d, long addr, long pattern, long len,
                            MemTxAttrs attrs) {
        int result = MemTxResult.OK;
        long done = 0;
        while (done < len) {
            long a = addr + done;
            long left = len - done;
            FlatRange fr = rangeAt(d, a);
            long n;
            if (fr != null && fr.region().kind() == MemoryRegion.Kind.IOMMU) {
                Hop hop = iommuHop(fr, a, left, true, attrs);
                if (hop != null) {
                    MmioDispatch.IoContext hopCtx = enterIommu(a);
                    try {
                        result |= fill(hop.as(), hop.target(), hop.addr(), pattern, hop.len(), attrs);
                    } finally {
                        hopCtx.iommuHops--;
                    }
                    done += hop.len();
                    continue;
                }
                fr = null;
            }
            if (fr != null && regionWritesDirect(fr)) {
                n = U64.clip(left, fr.last() - a);
                MemoryRegion mr = fr.region();
                MemorySegment ram = mr.ramBlock().hostSegment();
                long off = regionAddr(fr, a);
                int r = MemTxResult.OK;
                try {
                    if (CORE.ramMayFault(mr)) {
                        r = RamFaults.fill(ram, off, pattern, n, mr.ramBlock(), a);
                    } else {
                        long i = 0;
                        for (; i + 8 <= n; i += 8) {
                            ram.set(U64_LE, off + i, pattern);
                        }
                        for (; i < n; i++) {
                            ram.set(ValueLayout.JAVA_BYTE, off + i, (byte) pattern);
                        }
                    }
                } catch (IllegalStateException e) {
                    d = afterRelease(as, d, fr, e);
                    continue; // this section again, on the current view
                }
                result |= r;
                if (fr.dirtyLogMask() != 0) { // even when it faulted: the pages still there were written
                    DirectWrites.invalidateAndSetDirty(mr, fr.dirtyLogMask(), off, n);
                }
            } else {
                MemoryRegionOps ops = opsOf(fr);
                long addr1 = regionAddr(fr, a);
                int l = MmioDispatch.accessSize(ops, left, addr1);
                result |= MmioDispatch.write(MmioDispatch.IoContext.current(), regionOf(fr), ops, addr1, pattern,
                        l, false, attrs);
                n = l;
            }
            done += n;
        }
        return result;
    }

    /**
     * QEMU's {@code address_space_write_rom}: writes into the RAM of RAM, ROM, RAM-device and romd sections (as when
     * loading firmware), whatever their read-only flags; skips everything else, never calling a device.
     * {@link MemTxResult#OK}, unless RAM faulted under the copy (see {@link RamFaults}).
     */
    public static int writeRom(AddressSpace as, AddressSpaceDispatch d, long addr, MemorySegment srcSegment,
                        byte[] srcArray, long srcOffset, long len) {
        int result = MemTxResult.OK;
        long done = 0;
        while (done < len) {
            long a = addr + done;
            long left = len - done;
            FlatRange fr = rangeAt(d, a);
            long n;
            if (fr != null && fr.region().kind() == MemoryRegion.Kind.IOMMU) {
                Hop hop = iommuHop(fr, a, left, true, MemTxAttrs.UNSPECIFIED);
                if (hop != null) {
                    MmioDispatch.IoContext hopCtx = enterIommu(a);
                    try {
                        result |= writeRom(hop.as(), hop.target(), hop.addr(), srcSegment, srcArray, srcOffset + done,
                                hop.len());
                    } finally {
                        hopCtx.iommuHops--;
                    }
                    done += hop.len();
                    continue;
                }
                fr = null;
            }
            if (fr != null && (fr.region().isRam() || isRomd(fr))) {
                n = U64.clip(left, fr.last() - a);
                MemoryRegion mr = fr.region();
                int r;
                try {
                    r = copyIntoRam(srcSegment, srcArray, srcOffset + done, mr, regionAddr(fr, a), n, a);
                } catch (IllegalStateException e) {
                    d = afterRelease(as, d, fr, e);
                    continue; // this section again, on the current view
                }
                result |= r;
                if (fr.dirtyLogMask() != 0) { // even when it faulted: the pages still there were written
                    DirectWrites.invalidateAndSetDirty(mr, fr.dirtyLogMask(), regionAddr(fr, a), n);
                }
            } else {
                // QEMU steps over what it cannot write in the pieces an MMIO access would take.
                n = MmioDispatch.accessSize(opsOf(fr), left, regionAddr(fr, a));
            }
            done += n;
        }
        return result;
    }

    /**
     * Copies {@code n} bytes from {@code srcArray} or else {@code srcSegment} into the RAM of {@code mr} at region
     * offset {@code ramOffset}, standing for guest-physical {@code addr}; returns the result (an error only where the
     * RAM faulted, see {@link RamFaults}).
     */
    private static int copyIntoRam(MemorySegment srcSegment, byte[] srcArray, long srcOffset, MemoryRegion mr,
                                   long ramOffset, long n, long addr) {
        MemorySegment ram = mr.ramBlock().hostSegment();
        if (CORE.ramMayFault(mr)) {
            return RamFaults.write(ram, ramOffset, srcSegment, srcArray, srcOffset, n, mr.ramBlock(), addr);
        }
        copyToRam(srcSegment, srcArray, srcOffset, ram, ramOffset, n);
        return MemTxResult.OK;
    }

    /** Copies {@code n} bytes from {@code srcArray} or else {@code srcSegment} into {@code ram} at {@code ramOffset}. */
    private static void copyToRam(MemorySegment srcSegment, byte[] srcArray, long srcOffset, MemorySegment ram,
                                  long ramOffset, long n) {
        if (srcArray != null) {
            MemorySegment.copy(srcArray, (int) srcOffset, ram, ValueLayout.JAVA_BYTE, ramOffset, (int) n);
        } else {
            BulkCopies.INSTALLED.copy(srcSegment, srcOffset, ram, ramOffset, n); // memmove with memory-offheap
        }
    }

    /** Copies {@code n} bytes of {@code ram} at {@code ramOffset} into {@code dstArray} or else {@code dstSegment}. */
    private static void copyFromRam(MemorySegment ram, long ramOffset, MemorySegment dstSegment, byte[] dstArray,
                                    long dstOffset, long n) {
        if (dstArray != null) {
            MemorySegment.copy(ram, ValueLayout.JAVA_BYTE, ramOffset, dstArray, (int) dstOffset, (int) n);
        } else {
            BulkCopies.INSTALLED.copy(ram, ramOffset, dstSegment, dstOffset, n); // memmove with memory-offheap
        }
    }

    // ---------------------------------------------------------------- IOMMU

    /**
     * Where a piece of an access continues after an IOMMU: the target address space, its dispatch (the view loaded
     * once for this hop), the address there, the length.
     */
    public record Hop(AddressSpace as, AddressSpaceDispatch target, long addr, long len) {
    }

    // ---------------------------------------------------------------- RAM freed under an access

    /**
     * An access on dispatch {@code d} of {@code as} failed with {@code e} touching the RAM of {@code fr}. If that is
     * because the block was freed meanwhile (its region was destroyed after {@code d} was current, see
     * {@link MemoryRegion#destroy()}), returns {@code as}'s current dispatch, on which the access is redone from the
     * same byte: that view no longer maps the block. Otherwise (another segment failed, or there is no newer view
     * because {@code as} itself was destroyed) rethrows {@code e}.
     */
    public static AddressSpaceDispatch afterRelease(AddressSpace as, AddressSpaceDispatch d, FlatRange fr,
                                             IllegalStateException e) {
        if (!(fr.region().ramBlock() instanceof AbstractRamBlock b) || !b.isReleased()) {
            throw e;
        }
        AddressSpaceDispatch now = CORE.dispatch(as);
        if (now == d) {
            throw e;
        }
        return now;
    }

    /**
     * QEMU's {@code address_space_translate_iommu}, one step: asks the IOMMU behind flat range {@code fr} (context
     * from {@link IommuOps#attrsToIndex}) to translate guest-physical {@code a}, and returns where the access goes on,
     * at most {@code left} bytes and never past the IOMMU page or the range; null when the IOMMU refuses (no entry,
     * no target, or no read/write permission), which QEMU treats as unassigned memory.
     */
    public static Hop iommuHop(FlatRange fr, long a, long left, boolean isWrite, MemTxAttrs attrs) {
        MemoryRegion mr = fr.region();
        IommuOps ops = mr.iommuOps();
        long xlat = regionAddr(fr, a);
        int need = isWrite ? IommuOps.IOMMU_WO : IommuOps.IOMMU_RO;
        IommuTlbEntry e = ops.translate(xlat, need, ops.attrsToIndex(attrs));
        if (e == null || (e.perm() & need) == 0 || e.targetAs() == null) {
            return null;
        }
        long mask = e.addrMask();
        long addr = (e.translatedAddr() & ~mask) | (xlat & mask);
        long len = U64.clip(U64.clip(left, fr.last() - a), (addr | mask) - addr);
        return new Hop(e.targetAs(), CORE.dispatch(e.targetAs()), addr, len);
    }

    /** How many IOMMUs one access may pass through before it is taken for a translation loop. */
    public static final int MAX_IOMMU_HOPS = 16;

    /** Counts one more IOMMU on this thread's access; throws when the chain is too long to be anything but a loop. */
    public static MmioDispatch.IoContext enterIommu(long addr) {
        MmioDispatch.IoContext ctx = MmioDispatch.IoContext.current();
        if (ctx.iommuHops == MAX_IOMMU_HOPS) {
            throw new IllegalStateException("addr=" + U64.hex(addr) + ": more than " + MAX_IOMMU_HOPS
                    + " IOMMUs in a row (a translation loop?)");
        }
        ctx.iommuHops++;
        return ctx;
    }

    // ---------------------------------------------------------------- helpers

    private static boolean isRomd(FlatRange fr) {
        return fr.region().kind() == MemoryRegion.Kind.ROM_DEVICE && fr.romdMode();
    }

    private static MemoryRegion regionOf(FlatRange fr) {
        return fr == null ? null : fr.region();
    }

    /** The ops an MMIO access goes to; regions without ops (RAM, ROM, holes) have QEMU's unassigned ones. */
    public static MemoryRegionOps opsOf(FlatRange fr) {
        MemoryRegionOps ops = fr == null ? null : fr.region().ops();
        return ops == null ? MemoryRegionOps.UNASSIGNED : ops;
    }

    /** Region-relative offset of guest-physical {@code addr}; for a hole, the address itself (QEMU's unassigned section). */
    private static long regionAddr(FlatRange fr, long addr) {
        return fr == null ? addr : fr.offsetInRegion() + (addr - fr.start());
    }
}
