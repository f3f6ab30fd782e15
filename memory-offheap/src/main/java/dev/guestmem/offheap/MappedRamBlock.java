package dev.guestmem.offheap;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.RamFlag;
import dev.guestmem.offheap.HostMemoryBackend.Kind;
import dev.guestmem.offheap.internal.linux.Errno;
import dev.guestmem.offheap.internal.linux.FaultingMappings;
import dev.guestmem.offheap.internal.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.Set;
import java.util.function.Consumer;

/**
 * QEMU's {@code RAMBlock} over an {@code mmap}: anonymous memory, a file, an fd or a memfd, as a
 * {@link HostMemoryBackend} made it. The segment belongs to a shared {@link Arena} of its own whose close unmaps the
 * memory and then closes the fd the block owns: {@link #freeMemory()} closes it after the last reader is gone, or the
 * {@link Cleaner} does when a block that was never destroyed becomes unreachable, and whichever comes first does it
 * once. A segment kept past that throws {@link IllegalStateException}; the JVM's handshake on closing a shared arena
 * keeps any access from reaching unmapped memory.
 *
 * <p>Threading: immutable after construction; {@link #discardMemory}, {@link #msyncMemory} and the hooks may run on
 * any thread, as {@link AbstractRamBlock} allows.
 */
final class MappedRamBlock extends AbstractRamBlock {
    private static final System.Logger LOG = System.getLogger(MappedRamBlock.class.getName());
    private static final Cleaner CLEANER = Cleaner.create();

    private final MemorySegment segment;
    private final long address;
    private final long pageSize;
    private final int fd;
    private final long fdOffset;
    private final Kind kind;
    private final boolean shared;
    /** See {@link #mayFault()}; decided once, when the block is made. */
    private final boolean mayFault;
    private final Cleaner.Cleanable closer;

    /**
     * Takes the mapping {@code [address, address+mappedLength)} and, if {@code ownsFd}, the fd.
     *
     * @param size bytes of guest RAM, at most {@code mappedLength}
     */
    @SuppressWarnings("restricted") // gives the mmap'd memory its size and the arena that unmaps it
    MappedRamBlock(String idstr, long size, Set<RamFlag> flags, long address, long mappedLength, long pageSize,
                   int fd, boolean ownsFd, long fdOffset, Kind kind, boolean shared) {
        super(idstr, size, flags);
        this.address = address;
        this.pageSize = pageSize;
        this.fd = fd;
        this.fdOffset = fd < 0 ? 0 : fdOffset;
        this.kind = kind;
        this.shared = shared;
        this.mayFault = FaultingMappings.faultsWhenTruncated(fd) || (pageSize > HostMemoryBackend.HOST_PAGE
                && flags.contains(RamFlag.NORESERVE));
        if (mayFault) {
            FaultingMappings.add(address, mappedLength); // never handed to native code, see Memmove
        }
        Arena arena = Arena.ofShared();
        MemorySegment mapped = MemorySegment.ofAddress(address)
                .reinterpret(size, arena, new Unmap(idstr, address, mappedLength, ownsFd ? fd : -1));
        // A PROT_READ mapping written through FFM would be a SIGSEGV; a read-only segment throws instead.
        this.segment = flags.contains(RamFlag.READONLY) ? mapped.asReadOnly() : mapped;
        // The action holds the arena only, never the block, or the block could never become unreachable.
        this.closer = CLEANER.register(this, () -> closeArena(arena));
    }

    /**
     * Whether an access can meet a SIGBUS: memory over a file or fd that some process could truncate (every file, and
     * a memfd without {@code F_SEAL_SHRINK}), or huge pages mapped without reserving them, which run out on first
     * touch. Anonymous memory and sealed memfds never fault, so their accesses keep memory-core's fast paths.
     */
    @Override
    protected boolean mayFault() {
        return mayFault;
    }

    /** Unmaps, then closes the owned fd: the arena's cleanup, run once when the arena closes. */
    private record Unmap(String idstr, long address, long length, int ownedFd) implements Consumer<MemorySegment> {
        @Override
        public void accept(MemorySegment ignored) {
            // Implementation note: the arena's close has already handshaken every thread, so no thread can begin an
            // access through the block's segment. One crash seen on JDK 25.0.3 (a SIGSEGV in a C1-compiled
            // Unsafe.putLongUnaligned reached from a segment set, FreeUnderReadersTest) showed a thread that was
            // inside an access when that handshake ran and stored after it. Two more handshakes (closing empty
            // shared arenas) make every thread pass further safepoint polls, and so finish any such store, before
            // the memory goes away; they cost microseconds, once per freed block.
            for (int i = 0; i < 2; i++) {
                Arena.ofShared().close();
            }
            FaultingMappings.remove(address); // before the address can be mapped again
            try {
                Linux.munmap(address, length);
            } catch (ErrnoException e) {
                LOG.log(System.Logger.Level.ERROR, "block=" + idstr + ": " + e.getMessage());
            }
            if (ownedFd >= 0) {
                try {
                    Linux.close(ownedFd);
                } catch (ErrnoException e) {
                    LOG.log(System.Logger.Level.ERROR, "block=" + idstr + ": " + e.getMessage());
                }
            }
        }
    }

    @Override
    public MemorySegment hostSegment() {
        return segment;
    }

    @Override
    public int fd() {
        return fd;
    }

    @Override
    public long fdOffset() {
        return fdOffset;
    }

    @Override
    public long pageSize() {
        return pageSize;
    }

    @Override
    protected void freeMemory() {
        closer.clean(); // closes the arena at most once, whichever of this and the cleaner comes first
    }

    /**
     * QEMU's {@code ram_block_discard_range}: memory of a shared file or memfd is punched out of the file
     * ({@code fallocate(PUNCH_HOLE|KEEP_SIZE)}, which also drops it from every process's mapping); shared anonymous
     * memory is removed from its shmem object ({@code MADV_REMOVE}); private memory is dropped
     * ({@code MADV_DONTNEED}) and reads back as zeros, or as the file's contents for a private file mapping. A
     * read-only mapping only drops its pages: the file keeps its contents.
     */
    @Override
    protected void discardMemory(long start, long length) {
        if (!segment.scope().isAlive()) {
            throw new IllegalStateException("block=" + idstr() + ": the memory has been freed");
        }
        long addr = address + start;
        try {
            if (shared && fd >= 0 && !flags().contains(RamFlag.READONLY)) {
                Linux.fallocate(fd, Linux.FALLOC_FL_PUNCH_HOLE | Linux.FALLOC_FL_KEEP_SIZE, fdOffset + start, length);
            } else if (shared && kind == Kind.ANONYMOUS) {
                Linux.madvise(addr, length, Linux.MADV_REMOVE);
            } else {
                Linux.madvise(addr, length, Linux.MADV_DONTNEED);
            }
        } catch (ErrnoException e) {
            if (e.errno() == Errno.EOPNOTSUPP && shared && fd >= 0) {
                // A file system or device that cannot punch holes: at least drop the pages from this mapping.
                Linux.madvise(addr, length, Linux.MADV_DONTNEED);
                return;
            }
            throw new IllegalStateException("block=" + idstr() + " start=0x" + Long.toHexString(start) + " length=0x"
                    + Long.toHexString(length) + ": the host refused the discard: " + e.getMessage(), e);
        }
    }

    /** QEMU's {@code qemu_ram_msync}: {@code msync(MS_SYNC)} of the pages holding the range, for a shared file. */
    @Override
    protected void msyncMemory(long start, long length) {
        if (fd < 0 || !shared) {
            return; // nothing behind private or anonymous memory to make durable, as in QEMU
        }
        long first = start & -HostMemoryBackend.HOST_PAGE;
        try {
            Linux.msync(address + first, start + length - first, Linux.MS_SYNC);
        } catch (ErrnoException e) {
            throw new IllegalStateException("block=" + idstr() + " start=0x" + Long.toHexString(start) + " length=0x"
                    + Long.toHexString(length) + ": " + e.getMessage(), e);
        }
    }

    /**
     * Gives the memory beyond a shrunk used length back to the host (the whole max length stays mapped, readable and
     * writable, so no segment handed out can reach an inaccessible page; see the README's resizeable RAM).
     */
    @Override
    protected void usedLengthChanged(long oldUsedLength, long newUsedLength) {
        if (newUsedLength < oldUsedLength) {
            long start = (newUsedLength + pageSize - 1) & -pageSize;
            long end = Math.min((oldUsedLength + pageSize - 1) & -pageSize, (maxLength() + pageSize - 1) & -pageSize);
            if (end > start && segment.scope().isAlive()) {
                discardMemory(start, end - start);
            }
        }
    }
}
