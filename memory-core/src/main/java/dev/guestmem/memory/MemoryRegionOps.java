package dev.guestmem.memory;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * The callbacks and access rules of an I/O region, as QEMU's {@code MemoryRegionOps}: read and write callbacks
 * (plain, or with {@link MemTxAttrs} and a {@link MemTxResult}), the device's byte order, the {@code valid}
 * constraints that decide whether a guest access is allowed at all, and the {@code impl} constraints that decide
 * how an allowed access is split or widened before it reaches the callbacks. Immutable; build with
 * {@link #builder()}.
 *
 * <p>Addresses passed to the callbacks are region-relative (offsets inside the I/O region); sizes are in bytes.
 *
 * <p>Threading: callbacks run on the thread that performed the access, under the machine's {@link GlobalLock} unless
 * the ops {@link Builder#clearGlobalLocking() clear global locking}; then a device that is reached from several vCPU
 * threads synchronizes itself.
 */
public final class MemoryRegionOps {
    /** A read callback: returns the value, zero-extended, of {@code size} bytes at region offset {@code addr}. */
    @FunctionalInterface
    public interface Read {
        long read(long addr, int size);
    }

    /** A write callback: {@code data} holds {@code size} bytes in its low bits. */
    @FunctionalInterface
    public interface Write {
        void write(long addr, long data, int size);
    }

    /**
     * A read callback with attributes: stores the value into {@code data[0]} and returns a {@link MemTxResult}.
     * The array is the caller's scratch slot, so no allocation is needed per access.
     */
    @FunctionalInterface
    public interface ReadWithAttrs {
        int read(long addr, long[] data, int size, MemTxAttrs attrs);
    }

    /** A write callback with attributes, returning a {@link MemTxResult}. */
    @FunctionalInterface
    public interface WriteWithAttrs {
        int write(long addr, long data, int size, MemTxAttrs attrs);
    }

    /**
     * QEMU 2.9's {@code request_ptr}: execute-in-place for part of an I/O region (a flash in command mode, a ROM
     * behind a controller). Called on an instruction fetch at region offset {@code addr} that no soft TLB has
     * cached; returns the window of the region around {@code addr} whose code instruction fetches may read directly
     * from memory, or null to serve the fetch through the read callback. Fetches keep reading the window until the
     * device calls {@link ExecuteInPlace#invalidate}. Runs under the {@link GlobalLock} like the other callbacks.
     */
    @FunctionalInterface
    public interface RequestPtr {
        MmioPtr requestPtr(long addr);
    }

    /**
     * What {@link RequestPtr} hands out: region offsets {@code [offset, offset + size)} read as the first
     * {@code size} bytes of {@code code}.
     *
     * @param offset region-relative offset of the window's first byte
     * @param size   bytes, at least 1, at most {@code code.byteSize()}
     * @param code   the bytes, which the device keeps unchanged (and alive) until it invalidates the window
     */
    public record MmioPtr(long offset, long size, MemorySegment code) {
        public MmioPtr {
            Objects.requireNonNull(code, "code");
            if (size == 0 || Long.compareUnsigned(size, code.byteSize()) > 0
                    || Long.compareUnsigned(offset + size - 1, offset) < 0) {
                throw new IllegalArgumentException("offset=" + U64.hex(offset) + " size=" + U64.hex(size)
                        + " codeSize=" + U64.hex(code.byteSize()) + ": not a window of the code");
            }
        }

        /** Whether region offsets {@code [first, last]} lie inside the window. */
        boolean covers(long first, long last) {
            return U64.le(offset, first) && U64.le(first, last) && U64.le(last, offset + size - 1);
        }
    }

    /** QEMU's {@code valid.accepts}: whether the device takes this access at all. */
    @FunctionalInterface
    public interface Accepts {
        boolean accepts(long addr, int size, boolean isWrite, MemTxAttrs attrs);
    }

    /**
     * Access-size rules. A size of 0 means "not given". For {@code impl} QEMU's defaults apply: 1 for the minimum, 4
     * for the maximum ({@link #min()}, {@link #max()}). For {@code valid}, QEMU reads a maximum of 0 as "every size
     * is valid" (its {@code memory_region_access_valid} checks sizes only when a maximum is given), while bulk
     * accesses still split into pieces of at most 4 bytes for such a device ({@code memory_access_size}).
     *
     * @param minAccessSize smallest access in bytes (1, 2, 4 or 8), or 0 for the default of 1
     * @param maxAccessSize largest access in bytes (1, 2, 4 or 8), or 0 for the default of 4
     * @param unaligned     whether accesses not aligned to their size are allowed (valid) or supported (impl)
     */
    public record AccessSizes(int minAccessSize, int maxAccessSize, boolean unaligned) {
        public static final AccessSizes DEFAULT = new AccessSizes(0, 0, false);

        public AccessSizes {
            checkSize("minAccessSize", minAccessSize);
            checkSize("maxAccessSize", maxAccessSize);
            if (effectiveMin(minAccessSize) > effectiveMax(maxAccessSize)) {
                throw new IllegalArgumentException("minAccessSize=" + minAccessSize + " maxAccessSize=" + maxAccessSize
                        + ": the minimum exceeds the maximum");
            }
        }

        /** The minimum with QEMU's {@code impl} default applied. */
        public int min() {
            return effectiveMin(minAccessSize);
        }

        /** The maximum with QEMU's {@code impl} default applied. */
        public int max() {
            return effectiveMax(maxAccessSize);
        }

        private static int effectiveMin(int v) {
            return v == 0 ? 1 : v;
        }

        private static int effectiveMax(int v) {
            return v == 0 ? 4 : v;
        }

        private static void checkSize(String key, int v) {
            if (v != 0 && v != 1 && v != 2 && v != 4 && v != 8) {
                throw new IllegalArgumentException(key + "=" + v + " is not 0, 1, 2, 4 or 8");
            }
        }
    }

    /**
     * QEMU's {@code unassigned_mem_ops}: accepts nothing, so every access is a decode error. It calls no device, so
     * it takes no {@link GlobalLock}.
     */
    public static final MemoryRegionOps UNASSIGNED = builder()
            .accepts((addr, size, isWrite, attrs) -> false)
            .clearGlobalLocking()
            .build();

    private final Read read;
    private final Write write;
    private final ReadWithAttrs readWithAttrs;
    private final WriteWithAttrs writeWithAttrs;
    private final DeviceEndian endianness;
    private final AccessSizes valid;
    private final Accepts accepts;
    private final AccessSizes impl;
    private final boolean disableReentrancyGuard;
    private final RequestPtr requestPtr;
    private final long offset;
    /**
     * Whether accesses run under the {@link GlobalLock} (QEMU's {@code global_locking}); final, so that MMIO dispatch
     * pays one test of it and nothing else for the ops that clear it.
     */
    final boolean globalLocking;
    /**
     * Sizes for the MMIO fast path, worked out once: accesses of {@code directMin..directMax} bytes reach the plain
     * callback in one call with nothing to adjust (no {@code accepts}, no with-attrs callback, within both the
     * {@code valid} and the {@code impl} sizes); {@code directAligned} says whether they must also be aligned.
     * Empty ({@code directMin > directMax}) when the ops have no such case.
     */
    final int directMin;
    final int directMax;
    final boolean directAligned;

    private MemoryRegionOps(Builder b) {
        final long off = b.offset;
        // QEMU 2012's memory_region_set_offset: the callbacks see the offset added, checks and splitting do not.
        this.read = off == 0 || b.read == null ? b.read : OffsetCallbacks.read(b.read, off);
        this.write = off == 0 || b.write == null ? b.write : OffsetCallbacks.write(b.write, off);
        this.readWithAttrs = off == 0 || b.readWithAttrs == null ? b.readWithAttrs
                : OffsetCallbacks.readWithAttrs(b.readWithAttrs, off);
        this.writeWithAttrs = off == 0 || b.writeWithAttrs == null ? b.writeWithAttrs
                : OffsetCallbacks.writeWithAttrs(b.writeWithAttrs, off);
        this.offset = off;
        this.requestPtr = b.requestPtr;
        this.globalLocking = b.globalLocking;
        this.endianness = b.endianness;
        this.valid = b.valid;
        this.accepts = b.accepts;
        this.impl = b.impl;
        this.disableReentrancyGuard = b.disableReentrancyGuard;
        boolean plain = b.accepts == null && b.readWithAttrs == null && b.writeWithAttrs == null;
        int min = Math.max(b.impl.min(), b.valid.maxAccessSize() == 0 ? 1 : b.valid.min());
        int max = Math.min(b.impl.max(), b.valid.maxAccessSize() == 0 ? 8 : b.valid.max());
        this.directMin = plain ? min : 1;
        this.directMax = plain ? max : 0;
        this.directAligned = !b.valid.unaligned();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The plain read callback, or null. */
    public Read read() {
        return read;
    }

    /** The plain write callback, or null. */
    public Write write() {
        return write;
    }

    /** The read-with-attributes callback, or null; when set it takes precedence over {@link #read()}. */
    public ReadWithAttrs readWithAttrs() {
        return readWithAttrs;
    }

    /** The write-with-attributes callback, or null; when set it takes precedence over {@link #write()}. */
    public WriteWithAttrs writeWithAttrs() {
        return writeWithAttrs;
    }

    public DeviceEndian endianness() {
        return endianness;
    }

    /** Which guest accesses are allowed. */
    public AccessSizes valid() {
        return valid;
    }

    /** The {@code valid.accepts} callback, or null when every access that fits {@link #valid()} is accepted. */
    public Accepts accepts() {
        return accepts;
    }

    /** Which access sizes the callbacks implement; other sizes are split or widened to fit. */
    public AccessSizes impl() {
        return impl;
    }

    /**
     * QEMU's {@code disable_reentrancy_guard}: when true, a callback of this region may access the region again
     * (through an address space) and the nested access reaches the callbacks instead of failing with
     * {@link MemTxResult#ACCESS_ERROR}. For devices that rely on it, as a few of QEMU's do; false by default.
     */
    public boolean disableReentrancyGuard() {
        return disableReentrancyGuard;
    }

    /**
     * Whether accesses run under the machine's {@link GlobalLock} (QEMU's {@code global_locking}): true unless the
     * ops were built with {@link Builder#clearGlobalLocking()}.
     */
    public boolean globalLocking() {
        return globalLocking;
    }

    /** The execute-in-place callback ({@code request_ptr}), or null. */
    public RequestPtr requestPtr() {
        return requestPtr;
    }

    /**
     * QEMU 2012's {@code memory_region_set_offset}: what is added to the region offset the read and write callbacks
     * receive ({@link #read()} and the others return the callbacks with the offset applied); 0 by default.
     */
    public long offset() {
        return offset;
    }

    /** Builds a {@link MemoryRegionOps}; every setting has QEMU's default. */
    public static final class Builder {
        private Read read;
        private Write write;
        private ReadWithAttrs readWithAttrs;
        private WriteWithAttrs writeWithAttrs;
        private DeviceEndian endianness = DeviceEndian.NATIVE;
        private AccessSizes valid = AccessSizes.DEFAULT;
        private Accepts accepts;
        private AccessSizes impl = AccessSizes.DEFAULT;
        private boolean disableReentrancyGuard;
        private boolean globalLocking = true;
        private RequestPtr requestPtr;
        private long offset;

        private Builder() {
        }

        public Builder read(Read read) {
            this.read = Objects.requireNonNull(read, "read");
            return this;
        }

        public Builder write(Write write) {
            this.write = Objects.requireNonNull(write, "write");
            return this;
        }

        public Builder readWithAttrs(ReadWithAttrs read) {
            this.readWithAttrs = Objects.requireNonNull(read, "readWithAttrs");
            return this;
        }

        public Builder writeWithAttrs(WriteWithAttrs write) {
            this.writeWithAttrs = Objects.requireNonNull(write, "writeWithAttrs");
            return this;
        }

        public Builder endianness(DeviceEndian endianness) {
            this.endianness = Objects.requireNonNull(endianness, "endianness");
            return this;
        }

        /** {@code valid.min_access_size}, {@code valid.max_access_size} and {@code valid.unaligned}. */
        public Builder valid(int minAccessSize, int maxAccessSize, boolean unaligned) {
            this.valid = new AccessSizes(minAccessSize, maxAccessSize, unaligned);
            return this;
        }

        public Builder accepts(Accepts accepts) {
            this.accepts = Objects.requireNonNull(accepts, "accepts");
            return this;
        }

        /** {@code impl.min_access_size}, {@code impl.max_access_size} and {@code impl.unaligned}. */
        public Builder impl(int minAccessSize, int maxAccessSize, boolean unaligned) {
            this.impl = new AccessSizes(minAccessSize, maxAccessSize, unaligned);
            return this;
        }

        /** QEMU's {@code disable_reentrancy_guard}; see {@link MemoryRegionOps#disableReentrancyGuard()}. */
        public Builder disableReentrancyGuard(boolean disable) {
            this.disableReentrancyGuard = disable;
            return this;
        }

        /**
         * QEMU's {@code memory_region_clear_global_locking}: accesses are dispatched without the machine's
         * {@link GlobalLock}, because the device synchronizes itself (several vCPU threads may be in its callbacks at
         * once). Coalesced MMIO is still flushed under the lock before an access to a region that asks for it.
         */
        public Builder clearGlobalLocking() {
            this.globalLocking = false;
            return this;
        }

        /** QEMU 2.9's {@code request_ptr}: execute-in-place; see {@link RequestPtr}. */
        public Builder requestPtr(RequestPtr requestPtr) {
            this.requestPtr = Objects.requireNonNull(requestPtr, "requestPtr");
            return this;
        }

        /**
         * QEMU 2012's {@code memory_region_set_offset}: {@code offset} is added to the region offset every read and
         * write callback receives (wrapping modulo 2^64), after the {@code valid} checks and the {@code impl}
         * splitting, which see the access's own offset. Deprecated in QEMU since 2012; for devices ported from
         * then.
         */
        public Builder offset(long offset) {
            this.offset = offset;
            return this;
        }

        public MemoryRegionOps build() {
            return new MemoryRegionOps(this);
        }
    }
}
