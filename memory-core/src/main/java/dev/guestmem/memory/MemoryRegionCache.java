package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.AccessPath;
import dev.guestmem.memory.internal.access.MmioDispatch;
import dev.guestmem.memory.internal.access.DmaMap;
import dev.guestmem.memory.internal.access.DirectAccess;
import dev.guestmem.memory.internal.access.ValueLayouts;
import dev.guestmem.memory.internal.access.RamFaults;
import dev.guestmem.memory.internal.access.DirectWrites;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

import static dev.guestmem.memory.internal.access.DirectAccess.readsDirect;
import static dev.guestmem.memory.internal.access.ValueLayouts.U16_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U16_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U32_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U32_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U64_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U64_LE;

/**
 * A range of guest-physical memory translated once for repeated access, as QEMU's {@code MemoryRegionCache}
 * ({@code address_space_cache_init}, the {@code address_space_ld*_cached}/{@code st*_cached} family,
 * {@code address_space_read_cached}/{@code _write_cached}, {@code address_space_cache_invalidate} and
 * {@code address_space_cache_destroy}). Virtio keeps its rings in caches like these.
 *
 * <h2>What init decides</h2>
 * {@link #init} translates guest-physical {@code addr} once, against the view current at that moment, and keeps
 * the section it lands in. {@link #length()} is how much of the {@code len} bytes asked for the cache covers: the
 * rest of that dispatch section, and for RAM every following section of the same region at consecutive offsets, up
 * to the end of its {@link RamBlock} (QEMU's {@code flatview_extend_translation}). Callers check it, as QEMU's
 * callers check the value {@code address_space_cache_init} returns.
 * <ul>
 *   <li><b>Direct</b> ({@link #isDirect()}): the section is accessed directly for the cache's direction (QEMU's
 *   {@code memory_access_is_direct(mr, isWrite)}, as the access path decides it: RAM, ROM, RAM devices and romd for
 *   reading; writable RAM and RAM devices for writing). The cache holds a slice of the RAM block, and every load and
 *   store is one plain segment access: no lookup, no allocation.</li>
 *   <li><b>Indirect</b>: anything else (MMIO, ROM devices out of romd mode, ROM or read-only RAM for a write cache,
 *   a hole). Every access goes to the cached region at the cached region offset, as QEMU's
 *   {@code address_space_translate_cached} does: loads and stores are dispatched to the device (its {@code valid},
 *   {@code impl} and byte-order rules apply, and each access reaches the callbacks), except where the region is
 *   direct for that access (a write cache over ROM reads the ROM directly). Bulk reads and writes split into the
 *   pieces QEMU's read/write loops would use. An IOMMU region is accessed through the access path at the cached
 *   guest-physical address on the cached view, so that it is translated on every access, as QEMU does.</li>
 * </ul>
 * Offsets passed to the accessors are cache-relative: 0 is the guest-physical address given to {@link #init}.
 *
 * <h2>Errors</h2>
 * Guest-visible outcomes are {@link MemTxResult} values, as on {@link AddressSpace}. Using the cache wrongly is a
 * programming error and throws at once (QEMU asserts): an access outside {@code [0, length())} throws
 * {@link IndexOutOfBoundsException}; a store, a write or {@link #invalidate} on a cache made for reading, and any
 * access after {@link #destroy()}, throw {@link IllegalStateException}. (QEMU lets a read cache be stored to; here a
 * cache is for one direction, plus reading, as virtio uses them.)
 *
 * <p>A direct cache over RAM that can fault (a file another process may truncate, see {@code internal.access.RamFaults}) takes an
 * out-of-line path for every access, where a fault ends in {@link MemTxResult#ERROR} (a load reads 0, a store is
 * dropped) rather than in an exception; it is still {@link #isDirect() direct}.
 *
 * <h2>Writes and dirty memory</h2>
 * As in QEMU, stores to a direct cache are plain memory writes that mark nothing: after writing, the caller calls
 * {@link #invalidate} for the bytes it wrote (QEMU's {@code address_space_cache_invalidate}), which is where they
 * are marked dirty for every client that logs the region, and where pages holding translated code are reported to
 * {@link CodeProtection}'s listeners (QEMU's {@code invalidate_and_set_dirty}).
 *
 * <h2>When the map changes</h2>
 * A cache does not follow the map: it keeps the view and the section it was initialized on, as a QEMU cache keeps
 * its {@code FlatView} and region referenced. After a commit that moves or removes the memory, a direct cache still
 * reads and writes the RAM block it sliced (which its slice keeps alive, so this is always memory-safe), and an
 * indirect cache still calls the same device; neither sees what is mapped at the address now. The owner re-inits
 * when the map changes, as virtio does from a memory listener; {@link #isStale()} says cheaply whether any view was
 * published since init (conservatively: any commit that changed this address space's view counts).
 *
 * <p>Threading: a cache is immutable after init apart from {@link #destroy()}, so any number of threads may access
 * it at once, without locks, as QEMU's RCU readers do. {@link #destroy()} is for the owner, after the last access
 * (QEMU destroys caches after an RCU grace period). An access that races with destroy either completes on the memory
 * that was cached or fails with {@link IllegalStateException}; it never touches freed memory, because destroy frees
 * nothing.
 */
public final class MemoryRegionCache {

    private final AddressSpace as;
    /** Guest-physical address of offset 0. */
    private final long addr;
    /** Bytes covered, 1 to 2^63 - 1. */
    private final long length;
    private final boolean isWrite;
    private final boolean direct;
    /** The view's generation before the view was loaded, so a publish in between makes the cache look stale. */
    private final long generation;
    /** The section's range (whole), or null for a hole; for indirect accesses. */
    private final FlatRange range;
    /** The terminating region (QEMU's {@code mrs.mr}); the unassigned region for a hole. */
    private final MemoryRegion region;
    /** Region-relative offset of offset 0 (QEMU's {@code xlat}). */
    private final long xlat;

    // Cleared by destroy(); plain fields, each read once per access into a local (see the class's threading note).
    /** Direct caches: the cached RAM, {@link #length} bytes, for loads; null when indirect or destroyed. */
    private MemorySegment ram;
    /** Direct write caches: the same slice, for stores; null otherwise. */
    private MemorySegment ramForStores;
    /**
     * Direct caches over RAM that can fault ({@code internal.access.RamFaults}): the slice, which every access reaches through
     * {@code internal.access.RamFaults} from the out-of-line paths, while {@link #ram} and {@link #ramForStores} stay null so that
     * the inline paths never touch it; null otherwise.
     */
    private MemorySegment faultingRam;
    /** The view the cache was made on, for indirect accesses; null once destroyed. */
    private AddressSpaceDispatch dispatch;
    private boolean destroyed;

    private MemoryRegionCache(AddressSpace as, long addr, long length, boolean isWrite, boolean direct, long generation,
                              FlatRange range, MemoryRegion region, long xlat, MemorySegment ram,
                              AddressSpaceDispatch dispatch) {
        this.as = as;
        this.addr = addr;
        this.length = length;
        this.isWrite = isWrite;
        this.direct = direct;
        this.generation = generation;
        this.range = range;
        this.region = region;
        this.xlat = xlat;
        boolean mayFault = direct && region.ramMayFault;
        this.ram = mayFault ? null : ram;
        this.ramForStores = direct && isWrite && !mayFault ? ram : null;
        this.faultingRam = mayFault ? ram : null;
        this.dispatch = dispatch;
    }

    /**
     * QEMU's {@code address_space_cache_init}: translates guest-physical {@code [addr, addr + len)} of {@code as}
     * once. Check {@link #length()}: it may be shorter than {@code len}.
     *
     * @param len     bytes wanted, 1 to 2^63 - 1
     * @param isWrite whether the cache is for writing (and reading) rather than for reading only; decides, as in
     *                QEMU, whether read-only memory can be cached directly
     */
    public static MemoryRegionCache init(AddressSpace as, long addr, long len, boolean isWrite) {
        Objects.requireNonNull(as, "as");
        if (len <= 0) {
            throw new IllegalArgumentException("addr=" + U64.hex(addr) + " len=" + len
                    + ": a cache covers 1 to 2^63-1 bytes");
        }
        long generation;
        AddressSpaceDispatch dispatch;
        int s;
        FlatRange fr;
        do {
            generation = as.generation(); // before the view: a publish in between can only make the cache look stale
            dispatch = as.dispatch(); // one acquire load: the snapshot the cache keeps
            s = dispatch.sectionIndex(addr);
            fr = dispatch.flatRange(s);
            // A cache over RAM keeps the block's memory until destroy(), as QEMU's cache holds a reference to the
            // region. A block whose freeing began is no longer in the current view: look again.
        } while (fr != null && fr.region().ramBlock instanceof AbstractRamBlock b && !b.retain());
        long xlat = fr == null ? addr : dispatch.offsetInRegion(s, addr);
        MemoryRegion mr = fr == null ? as.system().unassignedRegion() : fr.region();
        if (fr != null && DmaMap.isDirect(fr, isWrite)) {
            long l = DmaMap.directRun(dispatch, s, addr, len);
            MemorySegment ram = mr.ramBlock.hostSegment().asSlice(xlat, l);
            return new MemoryRegionCache(as, addr, l, isWrite, true, generation, fr, mr, xlat, ram, dispatch);
        }
        long l = dispatch.clipToSection(s, addr, len);
        return new MemoryRegionCache(as, addr, l, isWrite, false, generation, fr, mr, xlat, null, dispatch);
    }

    // ---------------------------------------------------------------- loads

    /**
     * QEMU's {@code address_space_ldub_cached}: the byte at cache-relative {@code offset}, 0..255.
     *
     * @param result null, or an array whose element 0 receives the {@link MemTxResult}
     */
    public int ldub(long offset, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 1);
        final MemorySegment ram = this.ram;
        if (ram != null) {
            ok(result);
            return ram.get(ValueLayout.JAVA_BYTE, offset) & 0xff;
        }
        return (int) loadIndirect(offset, 1, false, attrs, result);
    }

    /** QEMU's {@code address_space_lduw_le_cached}: 0..65535. */
    public int lduwLe(long offset, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 2);
        final MemorySegment ram = this.ram;
        if (ram != null) {
            ok(result);
            return ram.get(U16_LE, offset) & 0xffff;
        }
        return (int) loadIndirect(offset, 2, false, attrs, result);
    }

    /** QEMU's {@code address_space_lduw_be_cached}: 0..65535. */
    public int lduwBe(long offset, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 2);
        final MemorySegment ram = this.ram;
        if (ram != null) {
            ok(result);
            return ram.get(U16_BE, offset) & 0xffff;
        }
        return (int) loadIndirect(offset, 2, true, attrs, result);
    }

    /** QEMU's {@code address_space_ldl_le_cached}: the 32 bits as an {@code int}. */
    public int ldlLe(long offset, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 4);
        final MemorySegment ram = this.ram;
        if (ram != null) {
            ok(result);
            return ram.get(U32_LE, offset);
        }
        return (int) loadIndirect(offset, 4, false, attrs, result);
    }

    /** QEMU's {@code address_space_ldl_be_cached}. */
    public int ldlBe(long offset, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 4);
        final MemorySegment ram = this.ram;
        if (ram != null) {
            ok(result);
            return ram.get(U32_BE, offset);
        }
        return (int) loadIndirect(offset, 4, true, attrs, result);
    }

    /** QEMU's {@code address_space_ldq_le_cached}. */
    public long ldqLe(long offset, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 8);
        final MemorySegment ram = this.ram;
        if (ram != null) {
            ok(result);
            return ram.get(U64_LE, offset);
        }
        return loadIndirect(offset, 8, false, attrs, result);
    }

    /** QEMU's {@code address_space_ldq_be_cached}. */
    public long ldqBe(long offset, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 8);
        final MemorySegment ram = this.ram;
        if (ram != null) {
            ok(result);
            return ram.get(U64_BE, offset);
        }
        return loadIndirect(offset, 8, true, attrs, result);
    }

    // ---------------------------------------------------------------- stores

    /** QEMU's {@code address_space_stb_cached}: stores the low 8 bits of {@code val}; returns the result. */
    public int stb(long offset, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 1);
        final MemorySegment ram = this.ramForStores;
        if (ram != null) {
            ram.set(ValueLayout.JAVA_BYTE, offset, (byte) val);
            return MemTxResult.OK;
        }
        return storeIndirect(offset, val & 0xffL, 1, false, attrs);
    }

    /** QEMU's {@code address_space_stw_le_cached}: stores the low 16 bits of {@code val}. */
    public int stwLe(long offset, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 2);
        final MemorySegment ram = this.ramForStores;
        if (ram != null) {
            ram.set(U16_LE, offset, (short) val);
            return MemTxResult.OK;
        }
        return storeIndirect(offset, val & 0xffffL, 2, false, attrs);
    }

    /** QEMU's {@code address_space_stw_be_cached}: stores the low 16 bits of {@code val}. */
    public int stwBe(long offset, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 2);
        final MemorySegment ram = this.ramForStores;
        if (ram != null) {
            ram.set(U16_BE, offset, (short) val);
            return MemTxResult.OK;
        }
        return storeIndirect(offset, val & 0xffffL, 2, true, attrs);
    }

    /** QEMU's {@code address_space_stl_le_cached}. */
    public int stlLe(long offset, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 4);
        final MemorySegment ram = this.ramForStores;
        if (ram != null) {
            ram.set(U32_LE, offset, val);
            return MemTxResult.OK;
        }
        return storeIndirect(offset, val & 0xffff_ffffL, 4, false, attrs);
    }

    /** QEMU's {@code address_space_stl_be_cached}. */
    public int stlBe(long offset, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 4);
        final MemorySegment ram = this.ramForStores;
        if (ram != null) {
            ram.set(U32_BE, offset, val);
            return MemTxResult.OK;
        }
        return storeIndirect(offset, val & 0xffff_ffffL, 4, true, attrs);
    }

    /** QEMU's {@code address_space_stq_le_cached}. */
    public int stqLe(long offset, long val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 8);
        final MemorySegment ram = this.ramForStores;
        if (ram != null) {
            ram.set(U64_LE, offset, val);
            return MemTxResult.OK;
        }
        return storeIndirect(offset, val, 8, false, attrs);
    }

    /** QEMU's {@code address_space_stq_be_cached}. */
    public int stqBe(long offset, long val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        checkAccess(offset, 8);
        final MemorySegment ram = this.ramForStores;
        if (ram != null) {
            ram.set(U64_BE, offset, val);
            return MemTxResult.OK;
        }
        return storeIndirect(offset, val, 8, true, attrs);
    }

    // ---------------------------------------------------------------- bulk

    /**
     * QEMU's {@code address_space_read_cached}: {@code len} bytes from cache-relative {@code offset} into
     * {@code buf[off..off+len)}, with {@link MemTxAttrs#UNSPECIFIED} as in QEMU.
     *
     * @return the {@link MemTxResult}, OR-ed over the pieces
     */
    public int read(long offset, byte[] buf, int off, int len) {
        Objects.checkFromIndexSize(off, len, buf.length);
        checkRange(offset, len);
        final MemorySegment ram = this.ram;
        if (ram != null) {
            MemorySegment.copy(ram, ValueLayout.JAVA_BYTE, offset, buf, off, len);
            return MemTxResult.OK;
        }
        return copyIndirect(offset, null, buf, off, len, false);
    }

    /** {@link #read(long, byte[], int, int)} into {@code dst[off..off+len)}, offsets in bytes. */
    public int read(long offset, MemorySegment dst, long off, long len) {
        Objects.checkFromIndexSize(off, len, dst.byteSize());
        checkRange(offset, len);
        final MemorySegment ram = this.ram;
        if (ram != null) {
            MemorySegment.copy(ram, offset, dst, off, len);
            return MemTxResult.OK;
        }
        return copyIndirect(offset, dst, null, off, len, false);
    }

    /**
     * QEMU's {@code address_space_write_cached}: {@code buf[off..off+len)} to cache-relative {@code offset}, with
     * {@link MemTxAttrs#UNSPECIFIED} as in QEMU. Direct bytes are not marked dirty until {@link #invalidate}.
     *
     * @return the {@link MemTxResult}, OR-ed over the pieces
     */
    public int write(long offset, byte[] buf, int off, int len) {
        Objects.checkFromIndexSize(off, len, buf.length);
        checkRange(offset, len);
        final MemorySegment ram = this.ramForStores;
        if (ram != null) {
            MemorySegment.copy(buf, off, ram, ValueLayout.JAVA_BYTE, offset, len);
            return MemTxResult.OK;
        }
        return copyIndirect(offset, null, buf, off, len, true);
    }

    /** {@link #write(long, byte[], int, int)} from {@code src[off..off+len)}, offsets in bytes. */
    public int write(long offset, MemorySegment src, long off, long len) {
        Objects.checkFromIndexSize(off, len, src.byteSize());
        checkRange(offset, len);
        final MemorySegment ram = this.ramForStores;
        if (ram != null) {
            MemorySegment.copy(src, off, ram, offset, len);
            return MemTxResult.OK;
        }
        return copyIndirect(offset, src, null, off, len, true);
    }

    // ---------------------------------------------------------------- life cycle

    /**
     * QEMU's {@code address_space_cache_invalidate}: says that the caller wrote {@code len} bytes at cache-relative
     * {@code offset}, so that they are marked dirty (a direct cache's stores mark nothing by themselves). Only for
     * caches made for writing. Reports translated code in those bytes to {@link CodeProtection}'s listeners.
     */
    public void invalidate(long offset, long len) {
        checkRange(offset, len);
        if (!isWrite) {
            throw misuse("invalidate on a cache made for reading");
        }
        if (destroyed) {
            throw misuse("invalidate after destroy");
        }
        if (direct && len > 0) {
            DirectWrites.invalidateAndSetDirty(region, xlat + offset, len);
        }
    }

    /**
     * QEMU's {@code address_space_cache_destroy}: the cache is not used any more. Every later access throws
     * {@link IllegalStateException}; destroying again does nothing. Frees nothing itself, but a cache over RAM keeps
     * its block's memory from being freed (see {@link MemoryRegion#destroy()}) until this is called.
     */
    public void destroy() {
        if (destroyed) {
            return;
        }
        if (range != null && range.region().ramBlock instanceof AbstractRamBlock b) {
            b.release(as.system().rcu());
        }
        destroyed = true;
        ram = null;
        ramForStores = null;
        faultingRam = null;
        dispatch = null;
    }

    // ---------------------------------------------------------------- state

    public AddressSpace addressSpace() {
        return as;
    }

    /** Guest-physical address of cache offset 0. */
    public long address() {
        return addr;
    }

    /** Bytes the cache covers, from offset 0: at least 1, at most the length given to {@link #init}. */
    public long length() {
        return length;
    }

    /** Whether the cache was made for writing. */
    public boolean isWrite() {
        return isWrite;
    }

    /** Whether accesses are plain segment accesses to RAM (see the class description). */
    public boolean isDirect() {
        return direct;
    }

    /**
     * The region the cache reaches (QEMU's {@code mrs.mr}): the terminating region of the section at
     * {@link #address()}, {@link MemorySystem#unassignedRegion()} for a hole.
     */
    public MemoryRegion region() {
        return region;
    }

    /** Region-relative offset of cache offset 0 in {@link #region()}. */
    public long regionOffset() {
        return xlat;
    }

    /** Whether the address space published another view since init: the cache may no longer match the map. */
    public boolean isStale() {
        return as.generation() != generation;
    }

    public boolean isDestroyed() {
        return destroyed;
    }

    @Override
    public String toString() {
        return "MemoryRegionCache[as=" + as.name() + " addr=" + U64.hex(addr) + " len=" + U64.hex(length)
                + " region=" + region.name() + " offset=" + U64.hex(xlat) + (direct ? " direct" : " indirect")
                + (isWrite ? " write" : " read") + (destroyed ? " destroyed" : "") + "]";
    }

    // ---------------------------------------------------------------- indirect accesses (out of line)

    private long loadIndirect(long offset, int size, boolean bigEndian, MemTxAttrs attrs, int[] result) {
        final AddressSpaceDispatch dispatch = usableView();
        final MemorySegment faulting = faultingRam;
        if (faulting != null) {
            return RamFaults.load(faulting, offset, size, bigEndian, region.ramBlock, addr + offset, result);
        }
        FlatRange fr = range;
        if (fr != null && fr.region().kind == MemoryRegion.Kind.IOMMU) {
            return AccessPath.load(as, dispatch, addr + offset, size, bigEndian, attrs, result);
        }
        long regionOffset = xlat + offset;
        if (fr != null && readsDirect(fr)) {
            // A write cache over memory that is direct only for reading (ROM, read-only RAM): read it in place.
            MemorySegment mem = fr.region().ramBlock.hostSegment();
            if (fr.region().ramMayFault) {
                return RamFaults.load(mem, regionOffset, size, bigEndian, fr.region().ramBlock, addr + offset, result);
            }
            ok(result);
            return ValueLayouts.get(mem, regionOffset, size, bigEndian);
        }
        MmioDispatch.IoContext ctx = MmioDispatch.IoContext.current();
        long v = MmioDispatch.read(ctx, regionOf(fr), AccessPath.opsOf(fr), regionOffset, size, bigEndian, attrs);
        if (result != null) {
            result[0] = ctx.result;
        }
        return v;
    }

    private int storeIndirect(long offset, long value, int size, boolean bigEndian, MemTxAttrs attrs) {
        final AddressSpaceDispatch dispatch = usableView();
        if (!isWrite) {
            throw misuse("store to a cache made for reading");
        }
        final MemorySegment faulting = faultingRam;
        if (faulting != null) {
            return RamFaults.store(faulting, offset, value, size, bigEndian, region.ramBlock, addr + offset);
        }
        FlatRange fr = range;
        if (fr != null && fr.region().kind == MemoryRegion.Kind.IOMMU) {
            return AccessPath.store(as, dispatch, addr + offset, value, size, bigEndian, attrs);
        }
        // Never direct here: a write cache over memory that is direct for writing is a direct cache.
        return MmioDispatch.write(MmioDispatch.IoContext.current(), regionOf(fr), AccessPath.opsOf(fr), xlat + offset,
                value, size, bigEndian, attrs);
    }

    /**
     * A bulk copy on an indirect cache, in QEMU's pieces: a direct piece is the whole rest (the cache lies inside
     * one section), an MMIO piece is what {@code MmioDispatch.accessSize} allows at its region offset.
     */
    private int copyIndirect(long offset, MemorySegment segment, byte[] array, long bufOffset, long len,
                             boolean write) {
        final AddressSpaceDispatch dispatch = usableView();
        if (write && !isWrite) {
            throw misuse("write to a cache made for reading");
        }
        final MemorySegment faulting = faultingRam;
        if (faulting != null) {
            return write ? RamFaults.write(faulting, offset, segment, array, bufOffset, len, region.ramBlock,
                    addr + offset)
                    : RamFaults.read(faulting, offset, segment, array, bufOffset, len, region.ramBlock, addr + offset);
        }
        MemTxAttrs attrs = MemTxAttrs.UNSPECIFIED;
        FlatRange fr = range;
        if (fr != null && fr.region().kind == MemoryRegion.Kind.IOMMU) {
            return write ? AccessPath.write(as, dispatch, addr + offset, attrs, segment, array, bufOffset, len)
                    : AccessPath.read(as, dispatch, addr + offset, attrs, segment, array, bufOffset, len);
        }
        if (len > 0 && fr != null && !write && readsDirect(fr)) {
            MemorySegment mem = fr.region().ramBlock.hostSegment();
            if (fr.region().ramMayFault) {
                return RamFaults.read(mem, xlat + offset, segment, array, bufOffset, len, fr.region().ramBlock,
                        addr + offset);
            }
            if (array != null) {
                MemorySegment.copy(mem, ValueLayout.JAVA_BYTE, xlat + offset, array, (int) bufOffset, (int) len);
            } else {
                MemorySegment.copy(mem, xlat + offset, segment, bufOffset, len);
            }
            return MemTxResult.OK;
        }
        MemoryRegion mr = regionOf(fr);
        MemoryRegionOps ops = AccessPath.opsOf(fr);
        MmioDispatch.IoContext ctx = MmioDispatch.IoContext.current();
        int result = MemTxResult.OK;
        long done = 0;
        while (done < len) {
            long regionOffset = xlat + offset + done;
            int l = MmioDispatch.accessSize(ops, len - done, regionOffset);
            long at = bufOffset + done;
            if (write) {
                long v = ValueLayouts.getLittleEndian(segment, array, at, l);
                result |= MmioDispatch.write(ctx, mr, ops, regionOffset, v, l, false, attrs);
            } else {
                long v = MmioDispatch.read(ctx, mr, ops, regionOffset, l, false, attrs);
                result |= ctx.result;
                ValueLayouts.putLittleEndian(segment, array, at, l, v);
            }
            done += l;
        }
        return result;
    }

    // ---------------------------------------------------------------- checks and helpers

    /** Throws unless a {@code size}-byte access at {@code offset} lies inside the cache. */
    private void checkAccess(long offset, int size) {
        // length >= 1, so length - size cannot overflow; a negative offset fails the first test.
        if (offset < 0 || offset > length - size) {
            throw outOfRange(offset, size);
        }
    }

    /** Throws unless {@code [offset, offset + len)} lies inside the cache. */
    private void checkRange(long offset, long len) {
        if (offset < 0 || len < 0 || offset > length || len > length - offset) {
            throw outOfRange(offset, len);
        }
    }

    private IndexOutOfBoundsException outOfRange(long offset, long len) {
        return new IndexOutOfBoundsException("offset=" + offset + " len=" + len + " cacheLength=" + length
                + ": outside the cache (" + this + ")");
    }

    /** The kept view, or an exception if the cache was destroyed. */
    private AddressSpaceDispatch usableView() {
        final AddressSpaceDispatch dispatch = this.dispatch;
        if (dispatch == null) {
            throw misuse("access after destroy");
        }
        return dispatch;
    }

    private IllegalStateException misuse(String what) {
        return new IllegalStateException(what + ": " + this);
    }

    private static void ok(int[] result) {
        if (result != null) {
            result[0] = MemTxResult.OK;
        }
    }

    private static MemoryRegion regionOf(FlatRange fr) {
        return fr == null ? null : fr.region();
    }
}
