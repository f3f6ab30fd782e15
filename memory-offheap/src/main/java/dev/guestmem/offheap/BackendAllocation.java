package dev.guestmem.offheap;

import dev.guestmem.memory.RamFlag;
import dev.guestmem.offheap.HostMemoryBackend.Kind;
import dev.guestmem.offheap.internal.linux.Errno;
import dev.guestmem.offheap.internal.linux.FileStat;
import dev.guestmem.offheap.internal.linux.FileSystemStat;
import dev.guestmem.offheap.internal.linux.Linux;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;

/**
 * One allocation of a {@link HostMemoryBackend}: QEMU's {@code file_ram_alloc}, {@code qemu_ram_alloc_from_fd} and
 * {@code qemu_anon_ram_alloc} in steps (open or create the fd, check it, size and seal it, map it, populate it),
 * each of which undoes everything before it when a later one fails, so a refused allocation leaves nothing behind.
 *
 * <p>Threading: used once, by the thread that allocates.
 */
final class BackendAllocation {
    /** Errnos that mean the request (the path, the fd, the flags) was wrong rather than the host short of memory. */
    private static final int[] INPUT_ERRNOS = {Errno.EPERM, Errno.ENOENT, Errno.EBADF, Errno.EACCES, Errno.EEXIST,
        Errno.ENODEV, Errno.ENOTDIR, Errno.EISDIR, Errno.EINVAL, Errno.EROFS, Errno.ENAMETOOLONG, Errno.ELOOP};

    private final HostMemoryBackend backend;
    private final String name;
    private final long size;
    private final String where;

    private int fd = -1;
    private boolean ownsFd;
    private Path createdFile;
    /** Whether the fd is an unlinked file this allocation made in a directory, which it may size as it likes. */
    private boolean tempFile;
    private long mapAddress;
    private long mapLength;

    BackendAllocation(HostMemoryBackend backend, String name, long size) {
        this.backend = backend;
        this.name = name;
        this.size = size;
        this.where = "region=" + name + " backend=" + backend.kind.qemuName
                + (backend.path != null ? " path=" + backend.path : "")
                + (backend.kind == Kind.FD ? " fd=" + backend.callerFd : "");
    }

    MappedRamBlock run() {
        Linux.checkPlatform();
        if (size <= 0) {
            throw new IllegalArgumentException(where + " size=" + size + ": RAM must be at least 1 byte");
        }
        try {
            return allocate();
        } catch (RuntimeException | Error e) {
            undo(e);
            throw e;
        }
    }

    private MappedRamBlock allocate() {
        EnumSet<RamFlag> flags = EnumSet.noneOf(RamFlag.class);
        long pageSize = backend.hugetlb ? backend.hugetlbSize : HostMemoryBackend.HOST_PAGE;
        boolean writable = !backend.readonly;
        switch (backend.kind) {
            case ANONYMOUS -> {
            }
            case MEMFD -> {
                int memfdFlags = Linux.MFD_CLOEXEC | (backend.seal ? Linux.MFD_ALLOW_SEALING : 0)
                        | (backend.hugetlb
                            ? Linux.MFD_HUGETLB | Long.numberOfTrailingZeros(pageSize) << Linux.MAP_HUGE_SHIFT : 0);
                fd = call(() -> Linux.memfdCreate("guestmem:" + name, memfdFlags), "memfd_create");
                ownsFd = true;
            }
            case FILE -> {
                openFile();
                ownsFd = true;
            }
            case FD -> fd = backend.callerFd;
        }
        if (fd >= 0 && backend.kind != Kind.MEMFD) {
            pageSize = checkFile(flags);
        } else {
            checkAlignment(pageSize);
        }
        long length = (size + pageSize - 1) & -pageSize;
        if (backend.kind == Kind.MEMFD) {
            sizeMemfd(length);
        }
        int prot = writable ? Linux.PROT_READ | Linux.PROT_WRITE : Linux.PROT_READ;
        int mapFlags = (backend.share ? Linux.MAP_SHARED : Linux.MAP_PRIVATE)
                | (backend.reserve ? 0 : Linux.MAP_NORESERVE);
        if (fd < 0) {
            mapFlags |= Linux.MAP_ANONYMOUS;
            if (backend.hugetlb) {
                mapFlags |= Linux.MAP_HUGETLB | (Long.numberOfTrailingZeros(pageSize) << Linux.MAP_HUGE_SHIFT);
            }
        }
        boolean transparentHuge = !backend.hugetlb && pageSize == HostMemoryBackend.HOST_PAGE
                && backend.kind == Kind.ANONYMOUS;
        long alignment = Math.max(Math.max(backend.align, pageSize), transparentHuge ? HostMemoryBackend.HUGE_2M : 0);
        map(length, alignment, prot, mapFlags);
        if (transparentHuge) {
            try {
                Linux.madvise(mapAddress, mapLength, Linux.MADV_HUGEPAGE);
            } catch (ErrnoException e) {
                // Only a hint, as QEMU takes it: kernels without THP refuse it, and the memory works the same.
            }
        }
        if (backend.share) {
            flags.add(RamFlag.SHARED);
        }
        if (!backend.reserve) {
            flags.add(RamFlag.NORESERVE);
        }
        if (backend.readonly) {
            flags.add(RamFlag.READONLY);
        }
        if (backend.pmem) {
            flags.add(RamFlag.NONVOLATILE);
        }
        if (backend.prealloc) {
            Preallocator.populate(where, mapAddress, length, writable, backend.preallocThreads);
        }
        MappedRamBlock block = new MappedRamBlock(name, size, flags, mapAddress, mapLength, pageSize, fd, ownsFd,
                backend.offset, backend.kind, backend.share);
        mapAddress = 0; // the block owns the mapping and the fd now
        fd = -1;
        createdFile = null;
        return block;
    }

    /** Opens (or creates) the backend's file as asked: O_RDONLY when nothing is ever written back to it. */
    private void openFile() {
        String p = backend.path.toString();
        refuseUnopenable();
        if (!backend.readonly && Files.isDirectory(backend.path)) {
            openTempFile();
            return;
        }
        boolean needsWrite = backend.share && !backend.readonly || backend.create;
        int mode = (needsWrite ? Linux.O_RDWR : Linux.O_RDONLY) | Linux.O_CLOEXEC;
        if (backend.create) {
            try {
                fd = Linux.open(p, mode | Linux.O_CREAT | Linux.O_EXCL, 0600);
                createdFile = backend.path;
                return;
            } catch (ErrnoException e) {
                if (e.errno() != Errno.EEXIST) {
                    throw refuse("the file cannot be created", e);
                }
            }
        }
        try {
            fd = Linux.open(p, mode, 0);
        } catch (ErrnoException e) {
            throw refuse(switch (e.errno()) {
                case Errno.ENOENT -> "the file does not exist (create=on creates it)";
                case Errno.EISDIR -> "the path is a directory";
                case Errno.EACCES, Errno.EPERM ->
                        "the file cannot be opened " + (needsWrite ? "for writing" : "for reading");
                default -> "the file cannot be opened";
            }, e);
        }
    }

    /**
     * QEMU's {@code mem-path} naming a directory (a hugetlbfs mount such as /dev/hugepages): the RAM is a new file in
     * it, unlinked at once, so it lives exactly as long as its fd and no other process finds it by name.
     */
    private void openTempFile() {
        String prefix = "guestmem_" + name.replaceAll("[^A-Za-z0-9._-]", "_") + "_";
        for (int attempt = 0; fd < 0; attempt++) {
            Path temp = backend.path.resolve(prefix + Long.toHexString(System.nanoTime() ^ attempt));
            try {
                fd = Linux.open(temp.toString(), Linux.O_RDWR | Linux.O_CREAT | Linux.O_EXCL | Linux.O_CLOEXEC, 0600);
            } catch (ErrnoException e) {
                if (e.errno() != Errno.EEXIST || attempt >= 100) {
                    throw refuse("no file can be created in the directory", e);
                }
                continue;
            }
            createdFile = temp; // removed by undo() if the unlink below fails
            try {
                Files.delete(temp);
            } catch (IOException e) {
                throw new IllegalStateException(where + " file=" + temp + ": the new file cannot be unlinked: " + e,
                        e);
            }
            createdFile = null;
        }
        tempFile = true;
    }

    /**
     * Refuses a fifo or a socket before opening it: opening a fifo would wait for a writer, and neither can be
     * mapped. The fd's own check ({@link #checkFile}) still decides after the open.
     */
    private void refuseUnopenable() {
        int type;
        try {
            type = (Integer) Files.getAttribute(backend.path, "unix:mode") & 0xf000;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return; // missing (open reports it) or not a Unix file system: the open and fstat decide
        }
        if (type == 0x1000 || type == 0xc000) {
            throw new IllegalArgumentException(where + " type=" + (type == 0x1000 ? "fifo" : "socket")
                    + ": guest RAM maps a regular file or a memory device");
        }
    }

    /**
     * Checks the fd's file against what was asked (its type, its access mode, its size) and returns the page size
     * its memory comes in (the huge page size on hugetlbfs). Adds READONLY_FD for an fd opened read-only.
     */
    private long checkFile(EnumSet<RamFlag> flags) {
        FileStat st = call(() -> Linux.fstat(fd), "fstat");
        if (!st.isRegularFile() && !st.isDevice()) {
            throw new IllegalArgumentException(where + " type=" + st.typeName().replace(' ', '-')
                    + ": guest RAM maps a regular file or a memory device");
        }
        int accessMode = call(() -> Linux.fcntl(fd, Linux.F_GETFL, 0), "fcntl") & Linux.O_ACCMODE;
        if (accessMode == 1 /* O_WRONLY */) {
            throw new IllegalArgumentException(where + " accessMode=WRONLY: the fd must be readable to be mapped");
        }
        if (accessMode == Linux.O_RDONLY) {
            flags.add(RamFlag.READONLY_FD);
            if (backend.share && !backend.readonly) {
                throw new IllegalArgumentException(where + " accessMode=RDONLY share=on readonly=off: a shared "
                        + "writable mapping needs a file opened for writing");
            }
        }
        FileSystemStat fs = call(() -> Linux.fstatfs(fd), "fstatfs");
        long pageSize = fs.type() == Linux.HUGETLBFS_MAGIC ? fs.blockSize() : HostMemoryBackend.HOST_PAGE;
        checkAlignment(pageSize); // before the file is grown: a refused request changes nothing
        if (st.isRegularFile()) {
            long needed = backend.offset + ((size + pageSize - 1) & -pageSize);
            if (needed < 0) {
                throw new IllegalArgumentException(where + " offset=0x" + Long.toHexString(backend.offset)
                        + " size=0x" + Long.toHexString(size) + ": offset + size overflows");
            }
            if (st.size() < needed) {
                if (!backend.create && !tempFile) {
                    throw new IllegalArgumentException(where + " fileSize=0x" + Long.toHexString(st.size())
                            + " offset=0x" + Long.toHexString(backend.offset) + " size=0x" + Long.toHexString(size)
                            + ": the file is smaller than offset + size");
                }
                run(() -> Linux.ftruncate(fd, needed), "ftruncate");
            }
        }
        return pageSize;
    }

    /** Refuses a size or offset that is not whole pages of huge page memory. */
    private void checkAlignment(long pageSize) {
        if ((size & (pageSize - 1)) != 0 && pageSize != HostMemoryBackend.HOST_PAGE) {
            throw new IllegalArgumentException(where + " size=0x" + Long.toHexString(size) + " pageSize=0x"
                    + Long.toHexString(pageSize) + ": huge page memory must be a multiple of the page size");
        }
        if ((backend.offset & (pageSize - 1)) != 0) {
            throw new IllegalArgumentException(where + " offset=0x" + Long.toHexString(backend.offset)
                    + " pageSize=0x" + Long.toHexString(pageSize) + ": the offset must be a multiple of the page size");
        }
    }

    /** Sizes a new memfd and seals it: its size is final, since resizeable RAM asks for its max length. */
    private void sizeMemfd(long length) {
        run(() -> Linux.ftruncate(fd, length), "ftruncate");
        if (backend.seal) {
            call(() -> Linux.fcntl(fd, Linux.F_ADD_SEALS, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW), "fcntl");
        }
    }

    /**
     * Maps {@code length} bytes at an address aligned to {@code alignment}: an inaccessible reservation with room to
     * spare, the real mapping placed over its aligned part with MAP_FIXED, the spare ends unmapped.
     */
    private void map(long length, long alignment, int prot, int flags) {
        if (alignment <= HostMemoryBackend.HOST_PAGE) {
            mapAddress = call(() -> Linux.mmap(0, length, prot, flags, fd, backend.offset), "mmap");
            mapLength = length;
            return;
        }
        long reserveLength = length + alignment;
        if (reserveLength < 0) {
            throw new IllegalArgumentException(where + " size=0x" + Long.toHexString(length) + " align=0x"
                    + Long.toHexString(alignment) + ": too large to map");
        }
        long base = call(() -> Linux.mmap(0, reserveLength, Linux.PROT_NONE,
                Linux.MAP_PRIVATE | Linux.MAP_ANONYMOUS | Linux.MAP_NORESERVE, -1, 0), "mmap");
        long aligned = (base + alignment - 1) & -alignment;
        try {
            run(() -> Linux.mmap(aligned, length, prot, flags | Linux.MAP_FIXED, fd, backend.offset), "mmap");
        } catch (RuntimeException e) {
            Linux.munmap(base, reserveLength);
            throw e;
        }
        if (aligned > base) {
            Linux.munmap(base, aligned - base);
        }
        long end = aligned + length;
        if (base + reserveLength > end) {
            Linux.munmap(end, base + reserveLength - end);
        }
        mapAddress = aligned;
        mapLength = length;
    }

    /** Gives back what the failed allocation took: the mapping, the fd it opened, the file it created. */
    private void undo(Throwable failure) {
        try {
            if (mapAddress != 0) {
                Linux.munmap(mapAddress, mapLength);
            }
            if (ownsFd && fd >= 0) {
                Linux.close(fd);
            }
            if (createdFile != null) {
                Files.deleteIfExists(createdFile);
            }
        } catch (RuntimeException | IOException e) {
            failure.addSuppressed(e);
        }
    }

    private interface Call<T> {
        T run();
    }

    private interface VoidCall {
        void run();
    }

    private <T> T call(Call<T> c, String what) {
        try {
            return c.run();
        } catch (ErrnoException e) {
            throw refuse(what + " failed", e);
        }
    }

    private void run(VoidCall c, String what) {
        try {
            c.run();
        } catch (ErrnoException e) {
            throw refuse(what + " failed", e);
        }
    }

    /** The failure of a call as the backend reports it: bad input or a host that cannot give the memory. */
    private RuntimeException refuse(String what, ErrnoException e) {
        String message = where + " size=0x" + Long.toHexString(size) + ": " + what + ": " + e.getMessage();
        for (int input : INPUT_ERRNOS) {
            if (e.errno() == input) {
                return new IllegalArgumentException(message, e);
            }
        }
        return new IllegalStateException(message, e);
    }
}
