package dev.guestmem.memory.internal.dispatch;

import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.internal.dirty.DirtyMarks;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * What the access path needs to serve an access to one flat range directly, worked out once when the range is put
 * into a dispatch instead of on every access (QEMU reads the same things from its {@code MemoryRegionSection} and
 * {@code MemoryRegion} per access): the range's guest-physical bounds, the region offset of its addresses, the host
 * segment, whether loads and stores may go straight to it, its dirty-log mask and the marks its stores make. The rules deciding {@code READ}
 * and {@code WRITE} are {@code internal.access.DirectAccess}'s, applied by {@code DirectAccess.rangeAccess}; this
 * class only holds their outcome, so that a direct access reads one object and no {@link MemoryRegion} field.
 *
 * <p>Everything here is a function of the {@link FlatRange} (and of its region's final fields), which is immutable
 * and belongs to the views that hold it; a change of the region's flags renders a new range and so a new record.
 *
 * <p>Threading: immutable but for {@link #armedEpoch()}, final fields: safe to publish through the racy
 * most-recently-used hint of {@link AddressSpaceDispatch#rangeAccess}; the armed epoch is a hint any thread may set.
 */
public final class RangeAccess {
    /** Loads of the range are a segment access: direct for reading, memory behind it, never faulting. */
    public static final int READ = 1;
    /** Stores likewise: direct for writing (the region's own read-only flag), memory behind it, never faulting. */
    public static final int WRITE = 2;
    /**
     * A soft TLB may cache the range's pages for loads and stores alike with nothing to mark: {@link #READ}, native
     * memory, writable through this mapping (the range's own read-only flag too, QEMU's {@code TLB_DISCARD_WRITE}
     * otherwise) and logged by no client. The common refill tests this one bit.
     */
    public static final int TLB_PLAIN = 4;
    /**
     * As {@link #TLB_PLAIN} but logged by CODE alone (the RAM of translated code): a soft TLB may cache the range's
     * pages for loads with nothing to check, and for stores with the CODE protocol. A TLB's refill for such RAM
     * tests this bit.
     */
    public static final int TLB_CODE = 8;
    /** The memory of a range that is not accessed directly: no byte at all, so every fast check on it fails. */
    public static final MemorySegment NO_MEMORY = MemorySegment.NULL;

    /**
     * The record of addresses nothing maps: every access the general way. It covers only the last byte of the space,
     * which makes it the harmless start value of a most-recently-used hint.
     */
    public static final RangeAccess NONE = new RangeAccess(null, null, 0, 0, null, -1L, -1L, 0, 0, null, null);

    /** The range, or null for {@link #NONE}. */
    public final FlatRange range;
    /** Its region. */
    public final MemoryRegion region;
    /**
     * {@link #READ}, {@link #WRITE}, {@link #TLB_PLAIN} and {@link #TLB_CODE} as they apply; 0 sends every access the
     * general way.
     */
    public final int flags;
    /** The dirty-memory clients logging the range (the range's own mask). */
    public final int dirtyLogMask;
    /** The region's host memory when {@link #flags} is not 0, else null. */
    public final MemorySegment ram;
    /**
     * The host address of guest-physical address 0 through this range ({@code ram.address() + delta}) where
     * {@link #ram} is native memory, else 0: a soft TLB entry's addend.
     */
    public final long hostAddend;
    /** Guest-physical first byte of the range. */
    public final long first;
    /** Bytes in the range minus one (unsigned). */
    public final long sizeM1;
    /** Guest-physical last byte of the range, inclusive. */
    public final long last;
    /** The region offset of guest-physical {@code addr} in the range is {@code addr + delta}. */
    public final long delta;
    /** The ram_addr of region offset {@code off} is {@code ramBase + off} (the region's block offset); 0 without one. */
    public final long ramBase;
    /**
     * The marks of the clients in {@link #dirtyLogMask} but CODE, resolved for the range; null when there are none,
     * or when they must go through the bitmaps' general walk.
     */
    public final DirtyMarks marks;
    /**
     * The CODE client's bitmap words for the range, resolved as {@link #marks} are (a record of the CODE bitmap
     * alone), where the range logs CODE, stores go direct and one bitmap block holds its pages; else null. A soft
     * TLB's fill reads a page's CODE bit here ({@link DirtyMarks#clean}: clear is protected code) instead of walking
     * the bitmap's table.
     */
    public final DirtyMarks codeBits;
    /**
     * The range's own bytes of {@link #ram} when loads are direct ({@link #READ}): byte {@code addr - first} of it is
     * guest-physical {@code addr}. Otherwise {@link #NO_MEMORY}. The access path's fast check is this segment's size
     * alone, so a load needs neither {@link #flags}, {@link #last} nor {@link #delta}, and FFM's own bounds check of
     * the access is the same comparison.
     */
    public final MemorySegment loadRam;
    /** The same for stores ({@link #WRITE}), else {@link #NO_MEMORY}. Often the same segment as {@link #loadRam}. */
    public final MemorySegment storeRam;
    /**
     * The dirty epoch ({@code internal.dirty.DirtyEpoch}) in which every page of the range was found marked for every
     * client of {@link #marks}, or -1 (no epoch is ever -1). Only where {@code DirtyEpoch.REARMING} holds, and never
     * for a range that logs CODE (whose stores must each be reported). Read and written opaque by any thread: the one
     * field of a record that changes. See {@link #armedEpoch()}.
     */
    @SuppressWarnings("unused") // through ARMED
    private long armedEpoch = -1;
    private static final VarHandle ARMED;

    static {
        try {
            ARMED = MethodHandles.lookup().findVarHandle(RangeAccess.class, "armedEpoch", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * A record for {@code range} (null for {@link #NONE}).
     *
     * @param flags {@link #READ}, {@link #WRITE}, {@link #TLB_PLAIN} and {@link #TLB_CODE}; not 0 only with a
     *              {@code ram} segment
     * @param ram   the region's host memory, or null
     * @param first the range's first guest-physical byte
     * @param last  its last, inclusive
     * @param delta region offset minus guest-physical address
     * @param ramBase the ram_addr of region offset 0
     * @param marks the range's {@link #marks}, or null
     * @param codeBits the range's {@link #codeBits}, or null
     */
    public RangeAccess(FlatRange range, MemoryRegion region, int flags, int dirtyLogMask, MemorySegment ram, long first,
                       long last, long delta, long ramBase, DirtyMarks marks, DirtyMarks codeBits) {
        if (flags != 0 && ram == null) {
            throw new IllegalArgumentException("range=" + range + " flags=" + flags + ": direct access without memory");
        }
        this.range = range;
        this.region = region;
        this.flags = flags;
        this.dirtyLogMask = dirtyLogMask;
        this.ram = ram;
        this.first = first;
        this.sizeM1 = last - first;
        this.last = last;
        this.delta = delta;
        this.hostAddend = ram != null && ram.isNative() ? ram.address() + delta : 0;
        this.ramBase = ramBase;
        this.marks = marks;
        this.codeBits = codeBits;
        MemorySegment own = flags == 0 ? NO_MEMORY : own(ram, first + delta, sizeM1);
        this.loadRam = (flags & READ) != 0 ? own : NO_MEMORY;
        this.storeRam = (flags & WRITE) != 0 ? own : NO_MEMORY;
    }

    /**
     * The bytes of {@code ram} from region offset {@code offset} for the range's {@code sizeM1} + 1 bytes, or fewer
     * where the segment ends first (what lies beyond takes the general path, as an access there always did).
     */
    private static MemorySegment own(MemorySegment ram, long offset, long sizeM1) {
        long size = ram.byteSize();
        if (offset < 0 || offset >= size) {
            return NO_MEMORY;
        }
        long left = size - offset; // at least 1
        return ram.asSlice(offset, Long.compareUnsigned(sizeM1, left - 1) < 0 ? sizeM1 + 1 : left);
    }

    /**
     * The epoch in which the whole range was last found marked, -1 if never: a direct store to the range that reads
     * this value from {@code DirtyEpoch.current()} <em>after</em> storing makes no mark (QEMU's {@code TLB_NOTDIRTY}
     * logic, for the range instead of a TLB entry). Why that loses no store: every page was marked after the last take
     * of that epoch swapped its bits, so the next take carries every page; a take that swaps them advances the epoch
     * before its heavy fence, whose barrier on the storing thread comes either before the store's read of the epoch
     * (which then sees the new epoch and marks) or after the store (which the take's reader then sees).
     */
    public long armedEpoch() {
        return (long) ARMED.getOpaque(this);
    }

    /**
     * Records that every page of the range was found marked for every client of {@link #marks} by reads made after an
     * acquire read of the dirty epoch that returned {@code epoch}.
     */
    public void arm(long epoch) {
        ARMED.setOpaque(this, epoch);
    }

    /** Whether guest-physical {@code addr} lies in the range. */
    public boolean covers(long addr) {
        return Long.compareUnsigned(addr - first, sizeM1) <= 0;
    }

    @Override
    public String toString() {
        return "RangeAccess[" + range + " flags=" + flags + "]";
    }
}
