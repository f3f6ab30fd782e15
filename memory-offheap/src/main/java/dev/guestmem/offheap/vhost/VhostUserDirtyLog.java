package dev.guestmem.offheap.vhost;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.guestmem.memory.MemoryRegionSection;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.internal.linux.Linux;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The dirty log a vhost-user backend shares with the front-end (QEMU's {@code vhost_log}): a sealed memfd mapped by
 * both, one bit per 4 KiB page of guest-physical address (bit {@code p % 8} of byte {@code p / 8} for the page at
 * {@code p * 4096}), which the backend sets with atomic ORs for every page it writes while VHOST_F_LOG_ALL is on.
 * {@link #syncInto} takes a section's bits (atomic AND, so bits the backend sets meanwhile are kept for the next
 * sync) and marks those pages dirty in guestmem's bitmaps, as QEMU's {@code vhost_sync_dirty_bitmap} does.
 *
 * <p>The memfd is sealed against shrinking and growing, so the backend cannot truncate it under this process; it
 * covers guest-physical addresses below the size chosen at creation. {@link VhostUserMemoryListener#startLogging}
 * makes one and replaces it as the map grows or shrinks.
 *
 * <p>Threading: {@link #syncInto} runs on the writer's thread (a {@code logSync}); the backend writes concurrently.
 * The mapping is read and unmapped under this object's lock, so {@link #close()} may come from any thread, also
 * while a sync runs; a closed log merges nothing. Close it after the backend stopped logging or was disconnected.
 */
public final class VhostUserDirtyLog implements AutoCloseable {
    /** Bytes of guest-physical address one log bit stands for (VHOST_LOG_PAGE). */
    public static final long LOG_PAGE = 4096;

    private static final VarHandle WORD = JAVA_LONG.varHandle();

    private final int fd;
    private final long address;
    private final long size;
    private final MemorySegment log;
    private boolean closed;

    @SuppressWarnings("restricted")   // the mapping made just before; unmapped only by close, under this lock
    private VhostUserDirtyLog(int fd, long address, long size) {
        this.fd = fd;
        this.address = address;
        this.size = size;
        this.log = MemorySegment.ofAddress(address).reinterpret(size);
    }

    /**
     * A zeroed log for guest-physical addresses {@code [0, guestBytes)}.
     *
     * @param guestBytes bytes of guest-physical address space covered, at least 1
     */
    static VhostUserDirtyLog create(long guestBytes) {
        if (guestBytes <= 0) {
            throw new IllegalArgumentException("guestBytes=" + guestBytes + ": must be positive");
        }
        long size = sizeFor(guestBytes);
        int fd = Linux.memfdCreate("guestmem:vhost-log", Linux.MFD_CLOEXEC | Linux.MFD_ALLOW_SEALING);
        try {
            Linux.ftruncate(fd, size);
            Linux.fcntl(fd, Linux.F_ADD_SEALS, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW | Linux.F_SEAL_SEAL);
            long addr = Linux.mmap(0, size, Linux.PROT_READ | Linux.PROT_WRITE, Linux.MAP_SHARED, fd, 0);
            return new VhostUserDirtyLog(fd, addr, size);
        } catch (RuntimeException e) {
            Linux.close(fd);
            throw e;
        }
    }

    /**
     * Bytes of log that cover guest-physical addresses {@code [0, guestBytes)}: a bit per page, in whole host pages
     * (so whole 64-bit words).
     *
     * @param guestBytes unsigned; 0 stands for 2^64
     */
    static long sizeFor(long guestBytes) {
        long pages = guestBytes == 0 ? 1L << 52 : Long.divideUnsigned(guestBytes - 1, LOG_PAGE) + 1;
        return ((pages + 7) / 8 + 4095) & ~4095L;
    }

    /** The memfd, passed with SET_LOG_BASE; owned by this log. */
    public int fd() {
        return fd;
    }

    /** The log's size in bytes, as SET_LOG_BASE sends it. */
    public long size() {
        return size;
    }

    /** Whether the page holding guest-physical address {@code addr} is marked in the log (not taken). */
    public synchronized boolean isMarked(long addr) {
        long page = addr >>> 12;
        if (closed || page >= size * 8) {
            return false;
        }
        return ((long) WORD.getVolatile(log, (page >>> 6) << 3) & (1L << (page & 63))) != 0;
    }

    /**
     * Takes the log's bits for {@code section}'s guest-physical range and marks those pages dirty in the section's
     * region ({@link dev.guestmem.memory.MemoryRegion#setDirty}, every client that logs it, MIGRATION included).
     */
    public synchronized void syncInto(MemoryRegionSection section) {
        if (closed) {
            return;   // a sync racing the log's close merges nothing rather than touch unmapped memory
        }
        long first = section.offsetWithinAddressSpace();
        long last = section.lastAddress();
        long firstPage = first >>> 12;
        long lastPage = Math.min(last >>> 12, size * 8 - 1);
        if (Long.compareUnsigned(firstPage, lastPage) > 0) {
            return;
        }
        for (long word = firstPage >>> 6; word <= lastPage >>> 6; word++) {
            long lo = Math.max(firstPage, word << 6) & 63;
            long hi = Math.min(lastPage, (word << 6) + 63) & 63;
            long mask = (hi == 63 ? -1L : (1L << (hi + 1)) - 1) & (-1L << lo);
            // Take only this section's bits: a neighbouring section may share the word.
            long taken = (long) WORD.getAndBitwiseAnd(log, word << 3, ~mask) & mask;
            while (taken != 0) {
                long page = (word << 6) + Long.numberOfTrailingZeros(taken);
                taken &= taken - 1;
                long start = U64.max(page << 12, first);
                long end = U64.min((page << 12) + LOG_PAGE - 1, last);
                section.region().setDirty(section.offsetWithinRegion() + (start - first), end - start + 1);
            }
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            Linux.munmap(address, size);
            Linux.close(fd);
        }
    }
}
