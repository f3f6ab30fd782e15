package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.AccessPath;
import dev.guestmem.memory.internal.access.DmaMap;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.render.Ioeventfd;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A view of the region tree from one bus master, as QEMU's {@code AddressSpace}: a name, a root region and the
 * current {@link FlatView}, which the writer replaces on commit with one release store and readers load with
 * acquire. Addresses are translated through the view's {@code AddressSpaceDispatch} for this address space's page
 * size; the store publishes that dispatch, which holds its view, so the view and the dispatch a thread reads always
 * come from one commit (or the later of two reads from a later one).
 *
 * <h2>Accessing memory</h2>
 * The access path follows QEMU's {@code address_space_*} functions under their names: {@link #read}, {@link #write},
 * {@link #rw}, {@link #writeRom}, {@link #set}, and the ld/st family ({@link #ldub}, {@link #lduwLe}, ...
 * {@link #stqBe}). Addresses are guest-physical; lengths are bytes. Each access loads the current view once and
 * works on that snapshot to the end, however long it takes and whatever the writer does meanwhile. RAM is copied
 * directly; everything else goes to the region's {@link MemoryRegionOps} as QEMU's MMIO dispatch does (sizes,
 * alignment, byte order, splitting), and an address where nothing is mapped behaves as QEMU's unassigned memory
 * (reads 0, writes are dropped, {@link MemTxResult#DECODE_ERROR}). A write to ROM is dropped with
 * {@link MemTxResult#DECODE_ERROR}, as QEMU's {@code address_space_write} does; {@link #writeRom} is how firmware is
 * loaded. The details are in the internal {@code AccessPath} and {@code MmioDispatch}.
 *
 * <p>Results: bulk methods and stores return the {@link MemTxResult} of the access, OR-ed over its pieces. Loads
 * return the value and report the result through an optional {@code int[] result} (QEMU's {@code MemTxResult *}):
 * pass null to ignore it, or a reusable array whose element 0 receives it, so that no access allocates. A load that
 * fails reads as 0 in the failing bytes.
 *
 * <p>Threading: {@link #flatView()}, {@link #translate} and the access methods may be called from
 * any thread without locks; RAM accesses never block, and MMIO to a device that keeps global locking waits for the
 * machine's {@link GlobalLock} (unless the thread holds it); device callbacks run on the accessing thread. Everything else is for the writer (under the topology lock, which the
 * methods take themselves).
 */
public final class AddressSpace {
    private final MemorySystem system;
    private final String name;
    private final MemoryRegion root;
    /** Pages of the dispatch are {@code 2^pageBits} bytes (QEMU's {@code TARGET_PAGE_BITS}). */
    private final int pageBits;
    /**
     * The current view's dispatch for {@link #pageBits}, which holds the view itself: the one reference a commit
     * publishes. Written only by {@link #publish} (writer, topology lock held); a volatile read is the readers' acquire. One
     * reference, not the view and its dispatch side by side, so that no reader can ever see the view of one commit
     * with the dispatch of another: {@link #flatView()} is one dependent load behind it, and an access loads its
     * snapshot with one acquire load instead of the view, its table and the slot. A volatile field, not a
     * {@code VarHandle}'s acquire load, whose result needs a cast that loads the dispatch's class on every access.
     */
    private volatile AddressSpaceDispatch currentDispatch;
    /** Changes whenever the published view changes; read with acquire, like the view. */
    private volatile long generation;
    /** The ioeventfds the current view maps, guest-physical, in QEMU's order. Writer only. */
    Ioeventfd[] ioeventfds = Ioeventfd.NONE;
    /** This address space's listeners, ascending priority, registration order among equals. Writer only. */
    final ArrayList<MemoryListener> listeners = new ArrayList<>();

    AddressSpace(MemorySystem system, String name, MemoryRegion root, int pageBits, FlatView initial) {
        this.system = system;
        this.name = name;
        this.root = root;
        this.pageBits = pageBits;
        this.currentDispatch = dispatchOf(initial, pageBits);
    }

    public String name() {
        return name;
    }

    public MemoryRegion root() {
        return root;
    }

    public MemorySystem system() {
        return system;
    }

    /**
     * The current flat view. Acquire load (of its dispatch, which holds it): everything the writer did before
     * publishing this view is visible to the caller, and the view itself never changes afterwards. A
     * {@link #dispatch()} that follows on the same thread is this view's or a later one's, never an earlier one's.
     */
    public FlatView flatView() {
        return dispatch().view();
    }

    /** The page size of this address space's dispatch: {@code 2^pageBits} bytes. */
    public int pageBits() {
        return pageBits;
    }

    /**
     * The dispatch of the current view (QEMU's {@code address_space_to_dispatch}), from one acquire load. A caller
     * that looks up several things keeps the dispatch it got, so that they all come from one snapshot: the section
     * indexes of one dispatch mean nothing in another. Its {@code view()} is {@link #flatView()}'s view of the same
     * commit: both come from this one reference.
     */
    AddressSpaceDispatch dispatch() {
        return currentDispatch; // a volatile read: acquire, see the field
    }

    /**
     * QEMU's {@code address_space_translate}: the region serving guest-physical {@code addr}, the offset inside it,
     * and how many of the {@code len} bytes from there the caller may treat as one piece (see {@link Translation}).
     * Unmapped addresses give {@link MemorySystem#unassignedRegion()}. One snapshot, lock-free; the result is the
     * only allocation. The access methods and the soft TLBs look addresses up without it.
     *
     * @param addr    guest-physical address
     * @param len     bytes wanted (unsigned)
     * @param isWrite whether the access writes; with {@code attrs}, what an IOMMU on the way needs to decide
     * @param attrs   the transaction's attributes
     */
    public Translation translate(long addr, long len, boolean isWrite, MemTxAttrs attrs) {
        AddressSpaceDispatch d = dispatch();
        for (int hops = 0; ; hops++) {
            int s = d.sectionIndex(addr);
            // The section's flat range holds the region and the read-only flag; no section object is needed.
            FlatRange fr = d.flatRange(s);
            MemoryRegion mr = fr == null ? system.unassignedRegion() : fr.region();
            long xlat = d.offsetInRegion(s, addr);
            if (mr.kind() != MemoryRegion.Kind.IOMMU) {
                // RAM may be used directly up to the end of the section; MMIO decodes by start address, so QEMU
                // leaves its length alone and lets the access path split it by the device's access sizes.
                long plen = mr.isRam() ? d.clipToSection(s, addr, len) : len;
                return new Translation(mr, xlat, plen, fr != null && fr.readonly());
            }
            // QEMU's address_space_translate_iommu: ask the IOMMU, check the permission, continue in its target.
            if (hops == AccessPath.MAX_IOMMU_HOPS) {
                throw new IllegalStateException("addressSpace=" + name + " addr=" + U64.hex(addr) + ": more than "
                        + AccessPath.MAX_IOMMU_HOPS + " IOMMUs in a row (a translation loop?)");
            }
            IommuOps ops = mr.iommuOps();
            int need = isWrite ? IommuOps.IOMMU_WO : IommuOps.IOMMU_RO;
            IommuTlbEntry e = ops.translate(xlat, need, ops.attrsToIndex(attrs));
            if (e == null || (e.perm() & need) == 0 || e.targetAs() == null) {
                return new Translation(system.unassignedRegion(), addr, len, false);
            }
            long mask = e.addrMask();
            len = d.clipToSection(s, addr, len);
            addr = (e.translatedAddr() & ~mask) | (xlat & mask);
            long pageLeft = (addr | mask) - addr; // bytes left in the IOMMU page, minus one
            len = U64.clip(len, pageLeft);
            d = e.targetAs().dispatch();
        }
    }

    /** A number that changes every time a different view is published; a cache keyed on it is stale when it moves. */
    public long generation() {
        return generation;
    }

    // ---------------------------------------------------------------- access path

    /**
     * QEMU's {@code address_space_read}: reads {@code len} bytes at guest-physical {@code addr} into
     * {@code buf[off..off+len)}.
     *
     * @return the {@link MemTxResult}, OR-ed over the sections and MMIO accesses the read was split into
     */
    public int read(long addr, MemTxAttrs attrs, byte[] buf, int off, int len) {
        Objects.requireNonNull(attrs, "attrs");
        Objects.checkFromIndexSize(off, len, buf.length);
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.read(this, d, addr, attrs, null, buf, off, len);
    }

    /** {@link #read(long, MemTxAttrs, byte[], int, int)} into {@code dst[off..off+len)}, offsets in bytes. */
    public int read(long addr, MemTxAttrs attrs, MemorySegment dst, long off, long len) {
        Objects.requireNonNull(attrs, "attrs");
        Objects.checkFromIndexSize(off, len, dst.byteSize());
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.read(this, d, addr, attrs, dst, null, off, len);
    }

    /**
     * QEMU's {@code address_space_write}: writes {@code buf[off..off+len)} at guest-physical {@code addr}. Writes to
     * ROM, read-only RAM and unassigned addresses are dropped with {@link MemTxResult#DECODE_ERROR}.
     *
     * @return the {@link MemTxResult}, OR-ed over the pieces
     */
    public int write(long addr, MemTxAttrs attrs, byte[] buf, int off, int len) {
        Objects.requireNonNull(attrs, "attrs");
        Objects.checkFromIndexSize(off, len, buf.length);
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.write(this, d, addr, attrs, null, buf, off, len);
    }

    /** {@link #write(long, MemTxAttrs, byte[], int, int)} from {@code src[off..off+len)}, offsets in bytes. */
    public int write(long addr, MemTxAttrs attrs, MemorySegment src, long off, long len) {
        Objects.requireNonNull(attrs, "attrs");
        Objects.checkFromIndexSize(off, len, src.byteSize());
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.write(this, d, addr, attrs, src, null, off, len);
    }

    /** QEMU's {@code address_space_rw}: {@link #write} when {@code isWrite}, else {@link #read}. */
    public int rw(long addr, MemTxAttrs attrs, byte[] buf, int off, int len, boolean isWrite) {
        return isWrite ? write(addr, attrs, buf, off, len) : read(addr, attrs, buf, off, len);
    }

    /** QEMU's {@code address_space_rw} over a segment. */
    public int rw(long addr, MemTxAttrs attrs, MemorySegment buf, long off, long len, boolean isWrite) {
        return isWrite ? write(addr, attrs, buf, off, len) : read(addr, attrs, buf, off, len);
    }

    /**
     * QEMU's {@code address_space_write_rom}: stores {@code buf[off..off+len)} into the memory of RAM, ROM, RAM-device
     * and romd sections at guest-physical {@code addr}, read-only or not, as when loading firmware. Addresses served
     * by anything else (devices, ROM devices out of romd mode, holes) are skipped: no device is called.
     *
     * @return {@link MemTxResult#OK}, as in QEMU, unless RAM faulted under the copy ({@link MemTxResult#ERROR}: a file
     *         behind the RAM was truncated by another process)
     */
    public int writeRom(long addr, MemTxAttrs attrs, byte[] buf, int off, int len) {
        Objects.requireNonNull(attrs, "attrs");
        Objects.checkFromIndexSize(off, len, buf.length);
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.writeRom(this, d, addr, null, buf, off, len);
    }

    /** {@link #writeRom(long, MemTxAttrs, byte[], int, int)} from {@code src[off..off+len)}, offsets in bytes. */
    public int writeRom(long addr, MemTxAttrs attrs, MemorySegment src, long off, long len) {
        Objects.requireNonNull(attrs, "attrs");
        Objects.checkFromIndexSize(off, len, src.byteSize());
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.writeRom(this, d, addr, src, null, off, len);
    }

    /**
     * QEMU's {@code address_space_set}: writes {@code len} bytes of {@code c} at guest-physical {@code addr}, as
     * {@link #write} would: what is mapped is filled, and the result is {@link MemTxResult#DECODE_ERROR} if any part
     * was not.
     *
     * <p>Cost: bounded by what is mapped, not by {@code len}. A stretch where nothing is mapped, or where a region
     * accepts no access ({@link MemoryRegionOps#UNASSIGNED}: a reservation, a hole), is passed over whole as one
     * decode error, where QEMU tries it eight bytes at a time; so a fill of 2^62 bytes over a map of RAM and holes
     * costs what filling the RAM costs. A device region still gets every access the fill makes in it, as in QEMU.
     *
     * @param len bytes, at least 0
     */
    public int set(long addr, byte c, long len, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        if (len < 0) {
            throw new IllegalArgumentException("addr=" + U64.hex(addr) + " len=" + len + ": negative length");
        }
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        final FlatView view = d.view();
        final int chunk = AccessPath.FILL_CHUNK;
        int result = MemTxResult.OK;
        // done stays a multiple of the chunk, so the pieces a device sees are those of one AccessPath.set of it all.
        long done = 0;
        while (done < len) {
            long a = addr + done;
            long left = len - done;
            MemoryRegionSection s = view.findSection(a, U64.saturatingAdd(a, left - 1));
            long step;
            if (s != null && s.offsetWithinAddressSpace() == a && s.region().ops() != MemoryRegionOps.UNASSIGNED) {
                // Mapped: fill through to the chunk border at or after the section's end.
                step = roundUp(done + U64.clip(left, s.lastAddress() - a), chunk, len) - done;
                result |= AccessPath.set(this, d, a, c, step, attrs);
            } else {
                // A hole (nothing mapped, or a region that accepts nothing) up to the next section or 2^64: skip
                // to the last chunk border inside it; a hole shorter than that leaves one chunk to fill as usual.
                long hole = s == null ? U64.clip(left, -1L - a)
                        : s.offsetWithinAddressSpace() != a ? s.offsetWithinAddressSpace() - a
                        : U64.clip(left, s.lastAddress() - a);
                step = ((done + hole) & -chunk) - done;
                if (step > 0) {
                    result |= MemTxResult.DECODE_ERROR;
                } else {
                    step = Math.min(chunk, left);
                    result |= AccessPath.set(this, d, a, c, step, attrs);
                }
            }
            done += step;
        }
        return result;
    }

    /** {@code x} rounded up to a multiple of {@code chunk} (a power of two), but at most {@code max}. */
    private static long roundUp(long x, int chunk, long max) {
        long up = (x + chunk - 1) & -chunk;
        return up < 0 || up > max ? max : up;
    }

    /**
     * QEMU's {@code address_space_ldub}: the byte at guest-physical {@code addr}, 0..255.
     *
     * @param result null, or an array whose element 0 receives the {@link MemTxResult}
     */
    public int ldub(long addr, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return (int) AccessPath.load(this, d, addr, 1, false, attrs, result);
    }

    /** QEMU's {@code address_space_lduw_le}: 0..65535. See {@link #ldub} for {@code result}. */
    public int lduwLe(long addr, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return (int) AccessPath.load(this, d, addr, 2, false, attrs, result);
    }

    /** QEMU's {@code address_space_lduw_be}: 0..65535. */
    public int lduwBe(long addr, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return (int) AccessPath.load(this, d, addr, 2, true, attrs, result);
    }

    /** QEMU's {@code address_space_ldl_le}: the 32 bits as an {@code int} (unsigned in QEMU). */
    public int ldlLe(long addr, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return (int) AccessPath.load(this, d, addr, 4, false, attrs, result);
    }

    /** QEMU's {@code address_space_ldl_be}. */
    public int ldlBe(long addr, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return (int) AccessPath.load(this, d, addr, 4, true, attrs, result);
    }

    /** QEMU's {@code address_space_ldq_le}. */
    public long ldqLe(long addr, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.load(this, d, addr, 8, false, attrs, result);
    }

    /** QEMU's {@code address_space_ldq_be}. */
    public long ldqBe(long addr, MemTxAttrs attrs, int[] result) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.load(this, d, addr, 8, true, attrs, result);
    }

    /** QEMU's {@code address_space_stb}: stores the low 8 bits of {@code val}; returns the {@link MemTxResult}. */
    public int stb(long addr, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.store(this, d, addr, val, 1, false, attrs);
    }

    /** QEMU's {@code address_space_stw_le}: stores the low 16 bits of {@code val}. */
    public int stwLe(long addr, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.store(this, d, addr, val, 2, false, attrs);
    }

    /** QEMU's {@code address_space_stw_be}: stores the low 16 bits of {@code val}. */
    public int stwBe(long addr, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.store(this, d, addr, val, 2, true, attrs);
    }

    /** QEMU's {@code address_space_stl_le}. */
    public int stlLe(long addr, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.store(this, d, addr, val & 0xffff_ffffL, 4, false, attrs);
    }

    /** QEMU's {@code address_space_stl_be}. */
    public int stlBe(long addr, int val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.store(this, d, addr, val & 0xffff_ffffL, 4, true, attrs);
    }

    /** QEMU's {@code address_space_stq_le}. */
    public int stqLe(long addr, long val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.store(this, d, addr, val, 8, false, attrs);
    }

    /** QEMU's {@code address_space_stq_be}. */
    public int stqBe(long addr, long val, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AccessPath.store(this, d, addr, val, 8, true, attrs);
    }

    // ---------------------------------------------------------------- atomics

    /**
     * QEMU's {@code cpu_atomic_xchg} and {@code cpu_atomic_fetch_*} on guest RAM: atomically replaces the
     * {@code size}-byte value (4 or 8) at guest-physical {@code addr} by {@code op}'s function of it and
     * {@code operand}, and returns the old value, zero-extended. Done as one atomic instruction on the RAM (see
     * {@code AtomicAccess} in the source): marked dirty and reported to {@link CodeProtection} as a store of the same
     * bytes is. An address that is misaligned, MMIO, ROM, a hole or an IOMMU is refused with
     * {@link MemTxResult#ATOMIC_REFUSED} (nothing read or written, 0 returned); RAM that faults gives
     * {@link MemTxResult#ERROR}. Plain stores of other threads through any path are atomic against it.
     *
     * @param bigEndian the value's byte order in guest memory
     * @param result    null, or an array whose element 0 receives the {@link MemTxResult}
     * @throws IllegalArgumentException if {@code size} is not 4 or 8
     */
    public long atomicFetchOp(AtomicOp op, long addr, long operand, int size, boolean bigEndian, int[] result) {
        final int code = op.ordinal(); // the null check
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AtomicAccess.atomic(this, d, code, addr, operand, 0, size, bigEndian, false, result);
    }

    /**
     * QEMU's {@code cpu_atomic_cmpxchg}: atomically stores {@code desired} at guest-physical {@code addr} if the
     * {@code size}-byte value there (4 or 8) equals {@code expected} (its low {@code size} bytes), and returns the
     * value found, zero-extended: the exchange happened exactly when that equals {@code expected}. Otherwise as
     * {@link #atomicFetchOp}; a compare-and-exchange that did not match wrote nothing and marks nothing.
     */
    public long atomicCmpxchg(long addr, long expected, long desired, int size, boolean bigEndian, int[] result) {
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole access
        return AtomicAccess.atomic(this, d, AtomicAccess.CMPXCHG, addr, expected, desired, size, bigEndian, false,
                result);
    }

    // ---------------------------------------------------------------- listeners

    /**
     * QEMU's {@code memory_listener_register}: attaches a listener and replays the current view to it (begin,
     * {@code regionAdd} and {@code logStart} for every section, commit).
     *
     * @throws IllegalStateException when the listener throws during that replay: it is then not registered (every
     *         list as before the call) and not called again; the message names it and the callback, the cause is
     *         what it threw
     */
    public void registerListener(MemoryListener listener) {
        system.registerListener(this, listener);
    }

    /** QEMU's {@code memory_listener_unregister}: tells the listener every section is gone, then detaches it. */
    public void unregisterListener(MemoryListener listener) {
        system.unregisterListener(this, listener);
    }

    /** The listeners of this address space in priority order. */
    public List<MemoryListener> listeners() {
        system.begin();
        try {
            return List.copyOf(listeners);
        } finally {
            system.commit();
        }
    }

    /** Publishes a new view. Writer only, topology lock held. */
    void publish(FlatView view) {
        final AddressSpaceDispatch d = dispatchOf(view, pageBits);
        // Volatile store, the commit's one store: a reader that loads this dispatch sees it and its view fully built,
        // and everything the writer did before. View and dispatch travel together, so no reader can pair one commit's
        // view with another's dispatch.
        currentDispatch = d;
        generation = generation + 1;
    }

    /** The dispatch {@code view} carries for {@code pageBits}, which the writer built before publishing the view. */
    private static AddressSpaceDispatch dispatchOf(FlatView view, int pageBits) {
        final AddressSpaceDispatch d = view.dispatchFor(pageBits);
        assert d != null && d.view() == view : "view=" + view + " pageBits=" + pageBits + " dispatch=" + d;
        return d;
    }

    @Override
    public String toString() {
        return "AddressSpace[" + name + ", root=" + root.name() + (pageBits == MemorySystem.DEFAULT_PAGE_BITS ? ""
                : ", pageBits=" + pageBits) + "]";
    }

    // ---------------------------------------------------------------- caches and DMA (MemoryRegionCache, DmaMap)

    /** The bounce-buffer budget and map clients of this address space. */
    private final DmaMap dmaMap = new DmaMap(this);

    /** QEMU's {@code address_space_cache_init}: {@link MemoryRegionCache#init} on this address space. */
    public MemoryRegionCache cacheInit(long addr, long len, boolean isWrite) {
        return MemoryRegionCache.init(this, addr, len, isWrite);
    }

    /**
     * QEMU's {@code address_space_map}: host memory standing for up to {@code len} bytes of guest-physical memory
     * from {@code addr}, for a device to read ({@code isWrite} false) or write, not both. Translated once, on the
     * current view. Returns null when nothing can be mapped: {@code len} is 0, or the bytes at {@code addr} would
     * need a bounce buffer and this address space's budget is used up (see {@link #registerMapClient}).
     * <ul>
     *   <li><b>Direct</b>: where the access path would access the memory directly (RAM, ROM, RAM devices and romd
     *   for reading; writable RAM and RAM devices for writing), the mapping is a slice of the RAM block itself, so
     *   writes through it are guest writes and guest writes are visible through it. It covers the section at
     *   {@code addr} and every following one of the same region at consecutive offsets (QEMU's
     *   {@code flatview_extend_translation}), so a mapping never crosses into another region: the caller maps the
     *   rest separately.</li>
     *   <li><b>Bounce buffer</b>: for anything else (MMIO, ROM devices out of romd mode, ROM or read-only RAM for a
     *   write, holes, IOMMU regions until translation follows them, and RAM whose memory can fault because another
     *   process may truncate the file behind it, which a device must never touch directly: a fault in its copies
     *   reads as zeros and is logged, see {@link AbstractRamBlock#mayFault()}), zeroed memory of its own, of
     *   {@code min(len, budget left)} bytes, QEMU 9.1's rule: not cut at the section's end, not cut at a page. For
     *   reading it is filled here, once, through the access path (devices see their reads now); for writing,
     *   {@link #unmap} writes the bytes the caller says it wrote back through the access path (devices see their
     *   writes then). Both copies use {@code attrs} (QEMU 9.1 uses unspecified attributes for both).</li>
     * </ul>
     * The budget is per address space, {@link #maxBounceBufferSize()} bytes of bounce buffers mapped at once (4096
     * unless set), counted with one atomic counter: concurrent maps together never take more than the limit, a map
     * that finds less room than it wants gets a shorter buffer, and one that finds none gets null.
     *
     * <p>The memory is referenced, not copied, so it stays valid while the mapping is held, whatever the map does
     * (as QEMU's {@code memory_region_ref}); the mapping does not follow later commits.
     *
     * @param len bytes wanted, unsigned
     * @return the mapping, {@link DmaMapping#length()} at most {@code len}; null when nothing was mapped
     */
    public DmaMapping map(long addr, long len, boolean isWrite, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole mapping
        return dmaMap.map(d, addr, len, isWrite, attrs);
    }

    /** {@link #map} on a view loaded earlier, for tests of mappings that race with a region's destruction. */
    DmaMapping mapOn(AddressSpaceDispatch d, long addr, long len, boolean isWrite, MemTxAttrs attrs) {
        return dmaMap.map(d, addr, len, isWrite, attrs);
    }

    /**
     * QEMU's {@code address_space_unmap}: ends {@code mapping}, of which the caller accessed the first
     * {@code accessLen} bytes. With {@code isWrite}, those bytes were written: a bounce buffer writes them back to
     * guest memory through the access path (on the view current now), and direct RAM is marked dirty. A bounce
     * buffer's bytes go back to the budget, and every registered map client is then told, on this thread.
     *
     * @param accessLen bytes, 0 to {@code mapping.length()}
     * @throws IllegalStateException    if the mapping was already unmapped
     * @throws IllegalArgumentException if it belongs to another address space, or {@code accessLen} is out of range
     */
    public void unmap(DmaMapping mapping, boolean isWrite, long accessLen) {
        dmaMap.unmap(mapping, isWrite, accessLen);
    }

    /**
     * QEMU's {@code address_space_access_valid}: whether every byte of guest-physical {@code [addr, addr + len)}
     * accepts the access. Memory accessed directly always does; a device must pass its {@code valid} rules for each
     * piece the access would be split into (QEMU's {@code memory_region_access_valid}); a hole never does.
     *
     * @param len bytes, unsigned; 0 is always valid
     */
    public boolean accessValid(long addr, long len, boolean isWrite, MemTxAttrs attrs) {
        Objects.requireNonNull(attrs, "attrs");
        final AddressSpaceDispatch d = dispatch(); // one acquire load: one snapshot for the whole check
        return DmaMap.accessValid(d, addr, len, isWrite, attrs);
    }

    /**
     * QEMU's {@code max_bounce_buffer_size} (the PCI property {@code x-max-bounce-buffer-size}): bytes of bounce
     * buffers this address space hands out at once. 4096 by default.
     */
    public long maxBounceBufferSize() {
        return dmaMap.maxBounceBufferSize();
    }

    /**
     * Sets the bounce-buffer budget, any time, from any thread. Mappings already made are kept: a limit below what is
     * in use only makes new bounce maps fail until enough is unmapped. Raising it tells the map clients.
     *
     * @param bytes at least 0; 0 makes every map that needs a bounce buffer fail
     */
    public void setMaxBounceBufferSize(long bytes) {
        dmaMap.setMaxBounceBufferSize(bytes);
    }

    /** QEMU's {@code bounce_buffer_size}: bytes of bounce buffers mapped now. */
    public long bounceBufferSize() {
        return dmaMap.bounceBufferSize();
    }

    /**
     * QEMU's {@code address_space_register_map_client}: runs {@code client} once, the next time bounce-buffer budget
     * is freed here (by {@link #unmap}, or by raising the limit), or at once, on this thread, if some is free now.
     * A client is forgotten once run; to wait again it registers again. Clients run on the thread that frees the
     * budget, outside any lock, in registration order; like QEMU's bottom halves they should only schedule the retry
     * (a client that maps at once competes with every other thread for the budget).
     */
    public void registerMapClient(Runnable client) {
        dmaMap.registerMapClient(client);
    }

    /** QEMU's {@code address_space_unregister_map_client}: forgets one registration of {@code client}, if any. */
    public boolean unregisterMapClient(Runnable client) {
        return dmaMap.unregisterMapClient(client);
    }
}
