package dev.guestmem.memory;

import java.util.Collections;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The part of QEMU's {@code RAMBlock} that the memory system owns rather than the backend: the ram_addr offset,
 * the used length of a resizeable block, the flags and the resize callback. Backends (anonymous memory here; files,
 * fds and memfds in memory-offheap) extend it and supply the host memory.
 *
 * <p>Threading: {@link #offset()} is written once, by the {@link RamList} under its lock, before the block is
 * published to any reader, so readers that reach the block through the ram list or a published view see it.
 * {@link #usedLength()} is a volatile field written only by the topology writer (inside the topology lock).
 */
public abstract class AbstractRamBlock implements RamBlock {
    /** The {@link #offset()} of a block that no memory system has taken yet. */
    public static final long UNPLACED = -1L;

    private final String idstr;
    private final long maxLength;
    private final EnumSet<RamFlag> flags;
    /** Written once by {@link RamList#add} before publication; see the class comment. */
    long offset = UNPLACED;
    /** Written only by the topology writer; read by any thread. */
    private volatile long usedLength;
    /** QEMU's {@code resized}; set before the block is registered, read by the topology writer. */
    Resized resized;
    /** The order of registration, which breaks ties in QEMU's list order (see {@link RamList}). */
    long registration;
    /**
     * References that keep the memory from being freed (QEMU's {@code memory_region_ref} on the owner): one for the
     * region until {@link MemoryRegion#destroy()}, one per direct {@link DmaMapping} and per
     * {@link MemoryRegionCache} until they end. 0 means freeing has begun and nothing may take a new one.
     */
    private final AtomicInteger refs = new AtomicInteger(1);
    /** Set once, just before {@link #freeMemory()}: accesses that fail from then on lost a race with the free. */
    private volatile boolean released;

    /**
     * @param idstr     the block's name
     * @param maxLength bytes of host memory (and of ram_addr space) the block reserves, at least 1
     * @param flags     what the backend's memory is; {@link RamFlag#RESIZEABLE} is added by the memory system
     */
    protected AbstractRamBlock(String idstr, long maxLength, Set<RamFlag> flags) {
        this.idstr = Objects.requireNonNull(idstr, "idstr");
        if (maxLength <= 0) {
            throw new IllegalArgumentException("block=" + idstr + " maxLength=" + U64.sizeHex(maxLength)
                    + ": a RAM block must be between 1 byte and 2^63-1 bytes");
        }
        this.maxLength = maxLength;
        this.flags = flags.isEmpty() ? EnumSet.noneOf(RamFlag.class) : EnumSet.copyOf(flags);
        this.usedLength = maxLength;
    }

    /**
     * Whether the block has memory behind it: false for the blocks of {@link MemorySystem#LAYOUT_ONLY}, which can
     * never be written, so no dirty bitmap needs to cover them.
     */
    boolean hasMemory() {
        return true;
    }

    @Override
    public final String idstr() {
        return idstr;
    }

    @Override
    public final long usedLength() {
        return usedLength;
    }

    @Override
    public final long maxLength() {
        return maxLength;
    }

    @Override
    public final long offset() {
        return offset;
    }

    @Override
    public final Set<RamFlag> flags() {
        return Collections.unmodifiableSet(flags);
    }

    /**
     * Whether {@link #hostSegment()} has memory behind it now; false for a block that only has a size (QEMU's
     * {@code host == NULL}). Blocks without host memory are never found by host address.
     */
    protected boolean hasHostMemory() {
        return true;
    }

    /**
     * Whether an access to {@link #hostSegment()} can fault because something outside this JVM shrinks the memory
     * under the mapping: a file or an unsealed memfd that another process truncates (SIGBUS). The access families
     * then take the guarded paths of {@link RamFaults}, which turn a fault into {@link MemTxResult#ERROR}; memory that
     * cannot fault (anonymous memory, a sealed memfd) keeps the plain, faster ones. Asked once, when the block's
     * region is made. The default is the safe answer, true: backends whose memory nobody can shrink override it.
     */
    protected boolean mayFault() {
        return true;
    }

    /** Whether {@code f} is set, without building a view. */
    final boolean hasFlag(RamFlag f) {
        return flags.contains(f);
    }

    /** Makes a block that is not yet registered resizeable with {@code usedLength} bytes in use. Writer only. */
    final void makeResizeable(long usedLength, Resized callback) {
        assert offset == UNPLACED : "block=" + idstr + " is already placed";
        flags.add(RamFlag.RESIZEABLE);
        this.resized = callback;
        this.usedLength = usedLength;
    }

    /** Sets the used length; the caller has checked it against {@link #maxLength()}. Topology writer only. */
    final void setUsedLength(long usedLength) {
        assert Long.compareUnsigned(usedLength, maxLength) <= 0;
        this.usedLength = usedLength; // volatile: a reader that sees the new length sees the block as it now is
    }

    /**
     * Frees the backend's memory: called exactly once, on the {@link Rcu} reclaimer thread, after the last reference
     * is gone and a grace period has passed, so no reader can reach the block any more. After it, accesses to
     * {@link #hostSegment()} must fail cleanly (an exception), never touch freed memory: backends close the
     * {@code Arena} (or unmap the mapping) the segment belongs to. Memory the caller owns is left alone.
     */
    protected void freeMemory() {
    }

    /** Whether the block's memory has been (or is being) freed; see {@link MemoryRegion#destroy()}. */
    public final boolean isReleased() {
        return released;
    }

    /**
     * Takes a reference for a mapping or cache that keeps using the memory after the access that found it (QEMU's
     * {@code memory_region_ref}). Any thread.
     *
     * @return false if freeing has already begun: the caller found the block through a view that is no longer
     *         current and must look again
     */
    final boolean retain() {
        for (int r = refs.get(); r > 0; r = refs.get()) {
            if (refs.compareAndSet(r, r + 1)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Drops a reference; the last one queues the free for after a grace period of {@code rcu}. Any thread.
     */
    final void release(Rcu rcu) {
        int r = refs.decrementAndGet();
        assert r >= 0 : "block=" + idstr + " refs=" + r;
        if (r == 0) {
            rcu.call(this::reclaim);
        }
    }

    /** References held now (1 for a block whose region is alive and unused by mappings), for tests. */
    final int refCount() {
        return refs.get();
    }

    private void reclaim() {
        released = true; // volatile: an access that fails after the free below sees why
        freeMemory();
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + idstr + " offset=" + U64.hex(offset) + " used="
                + U64.hex(usedLength) + " max=" + U64.hex(maxLength) + " flags=" + flags + "]";
    }
}
