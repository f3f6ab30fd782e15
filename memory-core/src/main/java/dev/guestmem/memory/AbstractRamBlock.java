package dev.guestmem.memory;

import java.lang.foreign.Arena;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The part of QEMU's {@code RAMBlock} that the memory system owns rather than the backend: the ram_addr offset,
 * the used length of a resizeable block, the flags and the resize callback. Backends (anonymous memory here; files,
 * fds and memfds in memory-offheap) extend it and supply the host memory.
 *
 * <p>Threading: {@link #offset()} is written once, by the {@link RamList} under its lock, before the block is
 * published to any reader, so readers that reach the block through the ram list or a published view see it.
 * {@link #usedLength()} is a volatile field written only by the topology writer (inside the topology lock).
 */
public abstract non-sealed class AbstractRamBlock implements RamBlock {
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
     * Whether {@link #hostSegment()} has memory behind it; false for a block that only has a size (QEMU's
     * {@code host == NULL}), as those of {@link MemorySystem#LAYOUT_ONLY}. Such a block can never be read or
     * written: no dirty bitmap covers it, no host address finds it and no discard manager manages it.
     */
    protected boolean hasHostMemory() {
        return true;
    }

    /**
     * Whether an access to {@link #hostSegment()} can fault because something outside this JVM shrinks the memory
     * under the mapping: a file or an unsealed memfd that another process truncates (SIGBUS). The access families
     * then take the guarded paths of {@code internal.access.RamFaults}, which turn a fault into {@link MemTxResult#ERROR}; memory that
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
     * Tells the backend that {@link MemoryRegion#ramResize} changed the used length of this resizeable block, after
     * the view with the region's new size has been published, inside the topology lock and before the block's
     * {@link RamBlock.Resized} callback. This default does nothing; memory-offheap's backends give the memory beyond
     * a shrunk used length back to the host. A reader still on the old view may write there meanwhile, as it may to
     * RAM being unplugged; such a write can populate a page again, and a later grow then shows it.
     *
     * @param oldUsedLength the used length before, in bytes
     * @param newUsedLength the used length now, in bytes
     */
    protected void usedLengthChanged(long oldUsedLength, long newUsedLength) {
    }

    /**
     * Frees the backend's memory: called exactly once, on the {@link Rcu} reclaimer thread, after the last reference
     * is gone and a grace period has passed, so no reader can reach the block any more. After it, accesses to
     * {@link #hostSegment()} must fail cleanly (an exception), never touch freed memory: backends close the
     * {@code Arena} (or unmap the mapping) the segment belongs to. Memory the caller owns is left alone.
     */
    protected void freeMemory() {
    }

    /**
     * Closes {@code arena}, the shared arena a backend's memory belongs to, from {@link #freeMemory()} (or a cleaner):
     * {@link Arena#close()}, waiting out the copies in progress. An access through the JDK never holds an arena open
     * (its close makes such an access throw instead), but a {@link BulkCopier} that hands a piece to native code passes
     * the segment to a downcall, which keeps its arena alive for the call, and a close meanwhile fails. Each such copy
     * is short (memory-offheap's copies at most 1 MiB per call) and any that starts after the close fails cleanly, so
     * this retries, parked between tries, until the close succeeds. (A downcall of the caller's own that was given the
     * block's segment holds the free up the same way, for as long as it runs.) Throws, as the close does, for an arena
     * already closed or not shared.
     */
    protected static void closeArena(Arena arena) {
        long parkNanos = 1_000;
        while (true) {
            try {
                arena.close();
                return;
            } catch (IllegalStateException e) {
                if (!arena.scope().isAlive()) {
                    throw e; // closed already: not a copy in progress
                }
                // Held by a downcall (a bulk copy): it ends within one copy of at most 1 MiB, so waiting is bounded.
                LockSupport.parkNanos(parkNanos);
                parkNanos = Math.min(parkNanos * 2, 1_000_000);
            }
        }
    }

    /**
     * QEMU's {@code ram_block_discard_range}: gives the memory of block-relative bytes {@code [start, start+length)}
     * back to the host. Afterwards the range reads as zeros (anonymous and shared memory) or as the file's contents
     * again (a private mapping of a file), and is populated again by the next write, as in QEMU. Dirty bitmaps are not
     * touched. Any thread; the caller keeps the guest from using the range meanwhile (as a balloon or a discard
     * manager does).
     *
     * <p>Like QEMU's, it does not consult {@link RamBlockDiscard}: its callers (a balloon, a {@link RamDiscardManager})
     * take part in that coordination.
     *
     * @param start  block-relative offset in bytes, a multiple of {@link #pageSize()}
     * @param length bytes, a multiple of {@link #pageSize()}, with {@code start + length <= maxLength()}
     * @throws IllegalArgumentException if the range is unaligned or leaves the block
     * @throws IllegalStateException    if the block's memory has been freed, or the backend cannot discard
     */
    public final void discardRange(long start, long length) {
        long page = pageSize();
        if (start < 0 || length < 0 || (start & (page - 1)) != 0 || (length & (page - 1)) != 0
                || length > maxLength - start) {
            throw new IllegalArgumentException("block=" + idstr + " start=" + U64.hex(start) + " length="
                    + U64.hex(length) + " pageSize=" + U64.hex(page) + " maxLength=" + U64.hex(maxLength)
                    + ": a discard must be page-aligned and inside the block");
        }
        if (length != 0) {
            discardMemory(start, length);
        }
    }

    /**
     * The backend's part of {@link #discardRange}, with the range checked. This default, for memory the OS cannot be
     * asked to take back (an {@code Arena}'s), gives the range the contents a discard leaves (zeros) without
     * returning it to the host. Backends over mmap override it (MADV_DONTNEED, fallocate PUNCH_HOLE).
     *
     * @param start  block-relative offset in bytes, page-aligned
     * @param length bytes, page-aligned, at least one page
     */
    protected void discardMemory(long start, long length) {
        hostSegment().asSlice(start, length).fill((byte) 0);
    }

    /**
     * QEMU's {@code qemu_ram_msync} behind {@link MemoryRegion#msync}: makes block-relative bytes
     * {@code [start, start+length)} durable in the file behind the block. This default, for memory with no file,
     * does nothing, as QEMU does for a block without an fd.
     *
     * @param start  block-relative offset in bytes, inside the used length
     * @param length bytes, with {@code start + length <= usedLength()}
     */
    protected void msyncMemory(long start, long length) {
    }

    /** Checks an msync range and hands it to {@link #msyncMemory}; see {@link MemoryRegion#msync}. */
    final void msync(long start, long length) {
        if (start < 0 || length < 0 || length > usedLength - start) {
            throw new IllegalArgumentException("block=" + idstr + " start=" + U64.hex(start) + " length="
                    + U64.hex(length) + " usedLength=" + U64.hex(usedLength)
                    + ": msync must stay inside the used length");
        }
        if (length != 0) {
            msyncMemory(start, length);
        }
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
