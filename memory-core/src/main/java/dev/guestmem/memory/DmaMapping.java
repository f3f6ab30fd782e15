package dev.guestmem.memory;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One mapping made by {@link AddressSpace#map}: what QEMU's {@code address_space_map} returns as a host pointer and
 * {@code *plen}, together with what {@code address_space_unmap} needs to undo it. A mapping is either
 * <em>direct</em>, a slice of the guest RAM itself, or a <em>bounce buffer</em>, memory of its own that stands for
 * guest memory which cannot be accessed directly (see {@link AddressSpace#map} for the rules).
 *
 * <p>The caller accesses {@link #segment()} (offsets 0 to {@link #length()}), then hands the mapping back to
 * {@link AddressSpace#unmap} exactly once. The segment must not be used after that: a direct one still aliases guest
 * RAM, so late writes land in memory the device no longer owns; a bounce buffer stays valid memory (it is freed by
 * the garbage collector once unreachable), but nothing reads it any more, so late writes are lost.
 *
 * <p>Threading: the mapping itself is immutable apart from its unmapped flag, which {@link AddressSpace#unmap}
 * sets with a CAS so that two racing unmaps cannot both release it. Accesses to the segment are the caller's to
 * order, as for any shared memory.
 */
public final class DmaMapping {
    private static final VarHandle UNMAPPED;

    static {
        try {
            UNMAPPED = MethodHandles.lookup().findVarHandle(DmaMapping.class, "unmapped", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final AddressSpace as;
    final long addr;
    final long length;
    final boolean isWrite;
    final MemTxAttrs attrs;
    /** What the caller sees: read-only when mapped for reading. */
    private final MemorySegment segment;
    /** The bounce buffer, writable, or null for a direct mapping. */
    final MemorySegment bounce;
    /** For a direct mapping, the RAM-backed region it slices, and the region-relative offset of its first byte. */
    final MemoryRegion region;
    final long regionOffset;
    /** Set once, by the unmap that wins the CAS. */
    @SuppressWarnings("unused")
    private volatile boolean unmapped;

    private DmaMapping(AddressSpace as, long addr, long length, boolean isWrite, MemTxAttrs attrs,
                       MemorySegment segment, MemorySegment bounce, MemoryRegion region, long regionOffset) {
        this.as = as;
        this.addr = addr;
        this.length = length;
        this.isWrite = isWrite;
        this.attrs = attrs;
        this.segment = segment;
        this.bounce = bounce;
        this.region = region;
        this.regionOffset = regionOffset;
    }

    static DmaMapping direct(AddressSpace as, long addr, boolean isWrite, MemTxAttrs attrs, MemorySegment slice,
                             MemoryRegion region, long regionOffset) {
        return new DmaMapping(as, addr, slice.byteSize(), isWrite, attrs, isWrite ? slice : slice.asReadOnly(), null,
                region, regionOffset);
    }

    static DmaMapping bounce(AddressSpace as, long addr, boolean isWrite, MemTxAttrs attrs, MemorySegment buffer) {
        return new DmaMapping(as, addr, buffer.byteSize(), isWrite, attrs, isWrite ? buffer : buffer.asReadOnly(),
                buffer, null, 0);
    }

    /** The address space this mapping belongs to. */
    public AddressSpace addressSpace() {
        return as;
    }

    /** Guest-physical address of the first mapped byte: the address given to {@link AddressSpace#map}. */
    public long address() {
        return addr;
    }

    /**
     * Bytes mapped, at least 1 and at most the length asked for (QEMU's {@code *plen}): the caller handles the rest
     * of its transfer with further mappings.
     */
    public long length() {
        return length;
    }

    /**
     * The host memory standing for guest-physical {@code [address(), address() + length())}, {@link #length()} bytes,
     * offsets relative to {@link #address()}. Read-only when mapped for reading ({@code isWrite} false), since such a
     * mapping is never written back.
     */
    public MemorySegment segment() {
        return segment;
    }

    /** Whether the segment is a bounce buffer rather than guest RAM itself. */
    public boolean isBounce() {
        return bounce != null;
    }

    /** Whether this was mapped for writing (the device writes guest memory) rather than for reading. */
    public boolean isWrite() {
        return isWrite;
    }

    /** Whether {@link AddressSpace#unmap} has been called on this mapping. */
    public boolean isUnmapped() {
        return unmapped;
    }

    /** Marks the mapping unmapped; false if it already was. */
    boolean markUnmapped() {
        // CAS: of several racing unmaps exactly one wins and releases the mapping; the others fail cleanly.
        return UNMAPPED.compareAndSet(this, false, true);
    }

    @Override
    public String toString() {
        return "DmaMapping[as=" + as.name() + " addr=" + U64.hex(addr) + " len=" + U64.hex(length)
                + (bounce != null ? " bounce" : " direct region=" + region.name() + " offset=" + U64.hex(regionOffset))
                + (isWrite ? " write" : " read") + (unmapped ? " unmapped" : "") + "]";
    }
}
