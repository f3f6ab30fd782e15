package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.GlobalLock;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.Arrays;

/**
 * MMIO dispatch, as QEMU's {@code memory_region_dispatch_read} and {@code memory_region_dispatch_write}: one guest
 * access of 1, 2, 4 or 8 bytes to a terminating region that is not accessed directly, carried to the region's
 * {@link MemoryRegionOps}.
 *
 * <p>The steps, in QEMU's order:
 * <ol>
 *   <li>Validity ({@code memory_region_access_valid}): the {@code accepts} callback, then alignment to the access
 *   size unless {@code valid.unaligned}, then the size against {@code valid} min..max, where a {@code valid} max of
 *   0 allows every size. A refused access never reaches the callbacks: it reads 0 (QEMU's
 *   {@code unassigned_mem_read}) and the result is {@link MemTxResult#DECODE_ERROR}.</li>
 *   <li>Byte order: the value is converted between the caller's order and the device's ({@link DeviceEndian#NATIVE}
 *   being the target's, {@link MemorySystem#targetBigEndian()}), before a write is split and after a read is
 *   assembled.</li>
 *   <li>The re-entrancy guard (QEMU's fix for CVE-2021-3750): an access to an I/O region whose callbacks are already
 *   running on this thread fails with {@link MemTxResult#ACCESS_ERROR} (a read gives 0) unless the ops set
 *   {@link MemoryRegionOps#disableReentrancyGuard()}. QEMU guards each owning device; guestmem has no owner objects
 *   and guards each region. The guard is per thread: two vCPU threads may be inside one device at once. Like QEMU,
 *   ROM devices and read-only regions are not guarded.</li>
 *   <li>Splitting and widening ({@code access_with_adjusted_size}): each callback gets
 *   {@code max(min(size, impl.max), impl.min)} bytes (impl defaults 1..4), at {@code addr}, {@code addr + n},
 *   ... in ascending order. The pieces are placed in the value little-endian first for a little-endian device and
 *   most significant first for a big-endian one. A widened access (size below {@code impl.min}) goes to the
 *   callback at {@code addr} itself, not aligned down, as in QEMU; a read keeps the bytes that belong to the guest
 *   access, a write passes the guest's bytes with zeros around them. Results of the pieces are OR-ed.</li>
 * </ol>
 * Before all of these, the {@link GlobalLock}: ops that keep global locking (the default) are dispatched under the
 * machine's lock, taken here unless the calling thread holds it; coalesced MMIO is flushed first for a region that
 * asks for it. Ops that clear global locking cost one more test of a final field, and nothing else.
 *
 * <p>When both a plain callback and one with attributes are set, the one with attributes is used (guestmem's
 * documented rule; QEMU devices set only one). A region without the callback an access needs ignores the access:
 * reads give 0, writes are dropped, and the result is {@link MemTxResult#OK}.
 *
 * <p>Threading: any thread. State per access lives in the calling thread's {@link IoContext}, so dispatch allocates
 * nothing once a thread has made its first accesses.
 */
public final class MmioDispatch {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();


    private MmioDispatch() {
    }

    /**
     * What one thread needs while it performs accesses: the regions whose callbacks are running on it (the
     * re-entrancy guard), a value slot per nesting level for read callbacks with attributes (a callback may make a
     * nested access before it stores its value, so levels never share a slot), and the result of the last read.
     *
     * <p>Threading: confined to its thread.
     */
    public static final class IoContext {
        private static final ThreadLocal<IoContext> CURRENT = ThreadLocal.withInitial(IoContext::new);

        /** Per nesting level: the region in I/O if it is guarded, else null. */
        private MemoryRegion[] inIo = new MemoryRegion[4];
        private long[][] slots = new long[4][];
        private int depth;
        /** The {@link MemTxResult} of the last {@link #read}. */
        public int result;
        /** How many IOMMUs the access in progress on this thread has passed through. */
        public int iommuHops;

        private IoContext() {
        }

        /** The calling thread's context. */
        public static IoContext current() {
            return CURRENT.get();
        }

        boolean inIo(MemoryRegion mr) {
            for (int i = 0; i < depth; i++) {
                if (inIo[i] == mr) {
                    return true;
                }
            }
            return false;
        }

        /** Enters one nesting level; {@code guarded} is the region to refuse re-entry into, or null. */
        int enter(MemoryRegion guarded) {
            int d = depth;
            if (d == inIo.length) {
                grow();
            }
            inIo[d] = guarded;
            depth = d + 1;
            return d;
        }

        void exit(int d) {
            assert depth == d + 1 : "depth=" + depth + " level=" + d;
            inIo[d] = null;
            depth = d;
        }

        long[] slot(int d) {
            long[] s = slots[d];
            if (s == null) {
                s = new long[1];
                slots[d] = s;
            }
            return s;
        }

        private void grow() {
            inIo = Arrays.copyOf(inIo, inIo.length * 2);
            slots = Arrays.copyOf(slots, slots.length * 2);
        }
    }

    /**
     * Reads {@code size} bytes at region offset {@code addr}; the result goes to {@code ctx.result}.
     *
     * @param mr        the region (used for its byte order and the guard; may be null only with ops that refuse
     *                  every access, such as {@link MemoryRegionOps#UNASSIGNED} for a hole)
     * @param ops       the ops to dispatch to: the region's, or {@link MemoryRegionOps#UNASSIGNED}
     * @param addr      region-relative offset
     * @param size      1, 2, 4 or 8 bytes
     * @param bigEndian the byte order the caller wants the value in
     * @return the value, zero-extended from {@code size} bytes
     */
    public static long read(IoContext ctx, MemoryRegion mr, MemoryRegionOps ops, long addr, int size, boolean bigEndian,
                     MemTxAttrs attrs) {
        if (ops.globalLocking()) {
            return readLocked(ctx, mr, ops, addr, size, bigEndian, attrs);
        }
        if (mr != null && mr.flushCoalesced()) {
            mr.system().globalLock().flushCoalescedMmio();
        }
        return readUnlocked(ctx, mr, ops, addr, size, bigEndian, attrs);
    }

    /** {@link #read} under the region's {@link GlobalLock}, QEMU's {@code prepare_mmio_access}. */
    private static long readLocked(IoContext ctx, MemoryRegion mr, MemoryRegionOps ops, long addr, int size,
                                   boolean bigEndian, MemTxAttrs attrs) {
        final GlobalLock bql = mr.system().globalLock();
        final boolean release = bql.prepare(mr);
        try {
            return readUnlocked(ctx, mr, ops, addr, size, bigEndian, attrs);
        } finally {
            if (release) {
                bql.unlock();
            }
        }
    }

    private static long readUnlocked(IoContext ctx, MemoryRegion mr, MemoryRegionOps ops, long addr, int size,
                                     boolean bigEndian, MemTxAttrs attrs) {
        assert size == 1 || size == 2 || size == 4 || size == 8 : "size=" + size;
        // In the fast path ops are the region's own (QEMU's unassigned ops, which the others use, have accepts).
        if (CORE.plainCall(ops, addr, size) && ops.read() != null) {
            return readDirect(ctx, mr, ops, addr, size, bigEndian);
        }
        if (!accessValid(ops, addr, size, false, attrs)) {
            ctx.result = MemTxResult.DECODE_ERROR;
            return 0;
        }
        MemoryRegion guarded = guarded(mr, ops);
        if (guarded != null && ctx.inIo(guarded)) {
            ctx.result = MemTxResult.ACCESS_ERROR;
            return 0;
        }
        boolean deviceBig = deviceBigEndian(mr, ops);
        int accessSize = Math.max(Math.min(size, ops.impl().max()), ops.impl().min());
        long accessMask = mask(accessSize);
        MemoryRegionOps.ReadWithAttrs withAttrs = ops.readWithAttrs();
        MemoryRegionOps.Read plain = ops.read();
        long value = 0;
        int r = MemTxResult.OK;
        int level = ctx.enter(guarded);
        try {
            long[] slot = withAttrs != null ? ctx.slot(level) : null;
            for (int i = 0; i < size; i += accessSize) {
                long piece;
                if (withAttrs != null) {
                    slot[0] = 0;
                    r |= withAttrs.read(addr + i, slot, accessSize, attrs);
                    piece = slot[0];
                } else if (plain != null) {
                    piece = plain.read(addr + i, accessSize);
                } else {
                    piece = 0;
                }
                piece &= accessMask;
                // Where this piece sits in the guest's value; negative when a widened read holds more than the
                // guest asked for and the guest's bytes are at its low end (big-endian device).
                int shift = deviceBig ? (size - accessSize - i) * 8 : i * 8;
                value |= shift >= 0 ? piece << shift : piece >>> -shift;
            }
        } finally {
            ctx.exit(level);
        }
        value &= mask(size);
        ctx.result = r;
        return deviceBig == bigEndian ? value : swap(value, size);
    }

    /**
     * The common case of {@link #read}, with the same outcome: the access is valid and the device implements its
     * size, so it is one plain callback call with only the re-entrancy guard and the byte order to see to.
     */
    private static long readDirect(IoContext ctx, MemoryRegion mr, MemoryRegionOps ops, long addr, int size,
                                   boolean bigEndian) {
        MemoryRegion guarded = guarded(mr, ops);
        if (guarded == null) {
            ctx.result = MemTxResult.OK;
            long v = ops.read().read(addr, size) & mask(size);
            return CORE.deviceBigEndian(mr) == bigEndian ? v : swap(v, size);
        }
        if (ctx.inIo(guarded)) {
            ctx.result = MemTxResult.ACCESS_ERROR;
            return 0;
        }
        long v;
        int level = ctx.enter(guarded);
        try {
            v = ops.read().read(addr, size) & mask(size);
        } finally {
            ctx.exit(level);
        }
        ctx.result = MemTxResult.OK;
        return CORE.deviceBigEndian(mr) == bigEndian ? v : swap(v, size);
    }

    /**
     * Writes the low {@code size} bytes of {@code data} at region offset {@code addr}.
     *
     * @param bigEndian the byte order {@code data} is in
     * @return the {@link MemTxResult}
     * @see #read
     */
    public static int write(IoContext ctx, MemoryRegion mr, MemoryRegionOps ops, long addr, long data, int size,
                     boolean bigEndian, MemTxAttrs attrs) {
        if (ops.globalLocking()) {
            return writeLocked(ctx, mr, ops, addr, data, size, bigEndian, attrs);
        }
        if (mr != null && mr.flushCoalesced()) {
            mr.system().globalLock().flushCoalescedMmio();
        }
        return writeUnlocked(ctx, mr, ops, addr, data, size, bigEndian, attrs);
    }

    /** {@link #write} under the region's {@link GlobalLock}, QEMU's {@code prepare_mmio_access}. */
    private static int writeLocked(IoContext ctx, MemoryRegion mr, MemoryRegionOps ops, long addr, long data,
                                   int size, boolean bigEndian, MemTxAttrs attrs) {
        final GlobalLock bql = mr.system().globalLock();
        final boolean release = bql.prepare(mr);
        try {
            return writeUnlocked(ctx, mr, ops, addr, data, size, bigEndian, attrs);
        } finally {
            if (release) {
                bql.unlock();
            }
        }
    }

    private static int writeUnlocked(IoContext ctx, MemoryRegion mr, MemoryRegionOps ops, long addr, long data,
                                     int size, boolean bigEndian, MemTxAttrs attrs) {
        assert size == 1 || size == 2 || size == 4 || size == 8 : "size=" + size;
        if (CORE.plainCall(ops, addr, size) && ops.write() != null) {
            return writeDirect(ctx, mr, ops, addr, data, size, bigEndian);
        }
        if (!accessValid(ops, addr, size, true, attrs)) {
            return MemTxResult.DECODE_ERROR;
        }
        boolean deviceBig = deviceBigEndian(mr, ops);
        long value = data & mask(size);
        if (deviceBig != bigEndian) {
            value = swap(value, size);
        }
        // As QEMU without KVM's ioeventfds: a write matching a registration (compared in the device's byte
        // order) signals its notifier instead of reaching the device.
        if (CORE.dispatchWriteEventfds(mr, addr, value, size)) {
            return MemTxResult.OK;
        }
        MemoryRegion guarded = guarded(mr, ops);
        if (guarded != null && ctx.inIo(guarded)) {
            return MemTxResult.ACCESS_ERROR;
        }
        int accessSize = Math.max(Math.min(size, ops.impl().max()), ops.impl().min());
        long accessMask = mask(accessSize);
        MemoryRegionOps.WriteWithAttrs withAttrs = ops.writeWithAttrs();
        MemoryRegionOps.Write plain = ops.write();
        int r = MemTxResult.OK;
        int level = ctx.enter(guarded);
        try {
            for (int i = 0; i < size; i += accessSize) {
                int shift = deviceBig ? (size - accessSize - i) * 8 : i * 8;
                long piece = (shift >= 0 ? value >>> shift : value << -shift) & accessMask;
                if (withAttrs != null) {
                    r |= withAttrs.write(addr + i, piece, accessSize, attrs);
                } else if (plain != null) {
                    plain.write(addr + i, piece, accessSize);
                }
            }
        } finally {
            ctx.exit(level);
        }
        return r;
    }

    /**
     * The common case of {@link #write}, with the same outcome: valid, implemented in one call; ioeventfds and the
     * re-entrancy guard are still seen to.
     */
    private static int writeDirect(IoContext ctx, MemoryRegion mr, MemoryRegionOps ops, long addr, long data, int size,
                                   boolean bigEndian) {
        long value = data & mask(size);
        if (CORE.deviceBigEndian(mr) != bigEndian) {
            value = swap(value, size);
        }
        if (CORE.dispatchWriteEventfds(mr, addr, value, size)) {
            return MemTxResult.OK;
        }
        MemoryRegion guarded = guarded(mr, ops);
        if (guarded == null) {
            ops.write().write(addr, value, size);
            return MemTxResult.OK;
        }
        if (ctx.inIo(guarded)) {
            return MemTxResult.ACCESS_ERROR;
        }
        int level = ctx.enter(guarded);
        try {
            ops.write().write(addr, value, size);
        } finally {
            ctx.exit(level);
        }
        return MemTxResult.OK;
    }

    /** QEMU's {@code memory_region_access_valid}, with its order of checks. */
    public static boolean accessValid(MemoryRegionOps ops, long addr, int size, boolean isWrite, MemTxAttrs attrs) {
        MemoryRegionOps.Accepts accepts = ops.accepts();
        if (accepts != null && !accepts.accepts(addr, size, isWrite, attrs)) {
            return false;
        }
        MemoryRegionOps.AccessSizes valid = ops.valid();
        if (!valid.unaligned() && (addr & (size - 1)) != 0) {
            return false;
        }
        int max = valid.maxAccessSize();
        return max == 0 || (size <= max && size >= valid.minAccessSize());
    }

    /**
     * QEMU's {@code memory_access_size}: how many bytes of the {@code len} still to copy one MMIO access takes at
     * region offset {@code addr} (the largest power of two within {@code valid.max}, 4 when not given, and within
     * the alignment of {@code addr} unless {@code impl.unaligned}).
     *
     * @param len bytes left, at least 1
     */
    public static int accessSize(MemoryRegionOps ops, long len, long addr) {
        int max = ops.valid().maxAccessSize();
        if (max == 0) {
            max = 4;
        }
        if (!ops.impl().unaligned()) {
            long alignment = addr & -addr;
            if (alignment != 0 && Long.compareUnsigned(alignment, max) < 0) {
                max = (int) alignment;
            }
        }
        return Integer.highestOneBit((int) Math.min(len, max));
    }

    /** The region to guard against re-entry, or null: QEMU guards I/O regions, not RAM, ROM devices or read-only ones. */
    private static MemoryRegion guarded(MemoryRegion mr, MemoryRegionOps ops) {
        return mr != null && mr.kind() == MemoryRegion.Kind.IO && !mr.isReadonly() && !ops.disableReentrancyGuard()
                ? mr : null;
    }

    private static boolean deviceBigEndian(MemoryRegion mr, MemoryRegionOps ops) {
        return switch (ops.endianness()) {
            case BIG -> true;
            case LITTLE -> false;
            case NATIVE -> mr.system().targetBigEndian();
        };
    }

    /** The low {@code size} bytes. */
    public static long mask(int size) {
        return size == 8 ? -1L : (1L << (size * 8)) - 1;
    }

    /** Reverses the low {@code size} bytes of {@code v}; {@code v} has nothing above them. */
    public static long swap(long v, int size) {
        return switch (size) {
            case 1 -> v;
            case 2 -> Short.reverseBytes((short) v) & 0xffffL;
            case 4 -> Integer.reverseBytes((int) v) & 0xffff_ffffL;
            default -> Long.reverseBytes(v);
        };
    }
}
