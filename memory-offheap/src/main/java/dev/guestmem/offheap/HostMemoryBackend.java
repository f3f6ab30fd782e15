package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import java.nio.file.Path;
import java.util.Objects;

/**
 * QEMU's {@code memory-backend-*} objects: where a region's guest RAM comes from when the operating system provides
 * it. A backend is a {@link MemorySystem.RamAllocator}, used for all of a system's RAM
 * ({@code new MemorySystem(HostMemoryBackend.anonymous().build())}) or for one region
 * ({@code system.ram("pc.ram", size, HostMemoryBackend.memfd().build())}); each region it allocates gets its own
 * mapping (and its own file descriptor, for memfds and files).
 * <ul>
 *   <li>{@link #anonymous()}: {@code memory-backend-ram}, lazily zeroed {@code mmap(MAP_ANONYMOUS)} memory;</li>
 *   <li>{@link #file(Path)}: {@code memory-backend-file}, a mapping of a file (hugetlbfs and DAX included);</li>
 *   <li>{@link #fd(int)}: QEMU's {@code memory_region_init_ram_from_fd}, a mapping of an fd the caller owns;</li>
 *   <li>{@link #memfd()}: {@code memory-backend-memfd}, a sealed memfd that other processes can map.</li>
 * </ul>
 * By default memory is mapped with {@code MAP_NORESERVE} (QEMU's {@code reserve=off}) so that large guests cost
 * only what they touch; hugetlb memory reserves its pages by default, so that running out of them fails at creation
 * rather than with a SIGBUS on first touch.
 *
 * <p>Creation failures are one-line {@code key=value} messages: {@link IllegalArgumentException} for what was asked
 * (a missing or too small file, an unaligned offset, a flag combination the backend has no meaning for) and
 * {@link IllegalStateException} for what the host could not give (memory, huge pages); the {@link ErrnoException}
 * of the failing call is the cause. A refused creation leaves nothing mapped, no fd open and no file created.
 *
 * <p>Host needs: Linux on x86_64, native access for this module ({@code --enable-native-access=dev.guestmem.offheap},
 * or {@code ALL-UNNAMED} on the class path). Threading: a built backend is immutable; any thread may allocate.
 */
public final class HostMemoryBackend implements MemorySystem.RamAllocator {
    /** The kind of backend, named after QEMU's object types. */
    enum Kind {
        ANONYMOUS("memory-backend-ram"),
        FILE("memory-backend-file"),
        FD("ram-from-fd"),
        MEMFD("memory-backend-memfd");

        final String qemuName;

        Kind(String qemuName) {
            this.qemuName = qemuName;
        }
    }

    static final long HOST_PAGE = 4096;
    static final long HUGE_2M = 2L << 20;
    static final long HUGE_1G = 1L << 30;

    final Kind kind;
    final Path path;
    final int callerFd;
    final boolean share;
    final boolean readonly;
    final boolean create;
    final long offset;
    final long align;
    final boolean pmem;
    final boolean reserve;
    final boolean prealloc;
    final int preallocThreads;
    final boolean hugetlb;
    final long hugetlbSize;
    final boolean seal;

    private HostMemoryBackend(Builder b) {
        this.kind = b.kind;
        this.path = b.path;
        this.callerFd = b.fd;
        this.share = b.share;
        this.readonly = b.readonly;
        this.create = b.create;
        this.offset = b.offset;
        this.align = b.align;
        this.pmem = b.pmem;
        this.reserve = b.reserve == null ? b.hugetlb : b.reserve;
        this.prealloc = b.prealloc;
        this.preallocThreads = b.preallocThreads;
        this.hugetlb = b.hugetlb;
        this.hugetlbSize = b.hugetlbSize;
        this.seal = b.seal;
    }

    /**
     * QEMU's {@code memory-backend-ram}: anonymous memory, zero until written, that costs resident memory only for
     * the pages the guest touches. Private by default; {@link Builder#share} maps it {@code MAP_SHARED} (kept across
     * {@code fork}, but with no fd to pass: use {@link #memfd()} to share with another process). Transparent huge
     * pages are asked for ({@code MADV_HUGEPAGE}, the mapping aligned to 2 MiB), as QEMU asks for all its RAM;
     * {@link Builder#hugetlb} maps {@code MAP_HUGETLB} pages from the host's reserved pool instead.
     */
    public static Builder anonymous() {
        return new Builder(Kind.ANONYMOUS, null, -1).share(false);
    }

    /**
     * QEMU's {@code memory-backend-file,mem-path=PATH}: a mapping of {@code path}, shared ({@code share=on}: guest
     * writes reach the file and other processes mapping it) or private copy-on-write (the default, as in QEMU).
     * The file must exist and hold {@link Builder#offset} plus the region's size, unless {@link Builder#create} is
     * set. A file on hugetlbfs gets that file system's huge pages. A directory (say a hugetlbfs mount) gets a new file
     * of the region's size made in it and unlinked at once, as QEMU makes one.
     */
    public static Builder file(Path path) {
        Objects.requireNonNull(path, "path");
        return new Builder(Kind.FILE, path, -1).share(false);
    }

    /**
     * QEMU's {@code memory_region_init_ram_from_fd}: a mapping of {@code fd}, which the caller owns and closes after
     * the RAM is freed (the block never closes it). Shared by default, as QEMU maps fds; checked as a file is.
     */
    public static Builder fd(int fd) {
        if (fd < 0) {
            throw new IllegalArgumentException("fd=" + fd + ": not a file descriptor");
        }
        return new Builder(Kind.FD, null, fd).share(true);
    }

    /**
     * QEMU's {@code memory-backend-memfd}: a {@code memfd_create(MFD_CLOEXEC|MFD_ALLOW_SEALING)} file sized to the
     * region's (max) size and sealed against shrinking and growing ({@code seal=on}, the default), mapped shared
     * ({@code share=on}, QEMU's default for memfds). Its fd ({@link RamBlock#fd()}) can be passed to other processes,
     * which then see the guest's memory; the seals keep any of them from truncating it under the guest.
     * {@link Builder#hugetlb} makes a {@code MFD_HUGETLB} memfd.
     */
    public static Builder memfd() {
        return new Builder(Kind.MEMFD, null, -1).share(true);
    }

    @Override
    public RamBlock allocate(String name, long size) {
        return new BackendAllocation(this, name, size).run();
    }

    /** The QEMU object this backend models, and what it was asked for, e.g. {@code memory-backend-memfd share=on}. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(kind.qemuName);
        if (path != null) {
            sb.append(" mem-path=").append(path);
        }
        if (kind == Kind.FD) {
            sb.append(" fd=").append(callerFd);
        }
        sb.append(" share=").append(share ? "on" : "off");
        sb.append(" reserve=").append(reserve ? "on" : "off");
        if (readonly) {
            sb.append(" readonly=on");
        }
        if (offset != 0) {
            sb.append(" offset=0x").append(Long.toHexString(offset));
        }
        if (align != 0) {
            sb.append(" align=0x").append(Long.toHexString(align));
        }
        if (pmem) {
            sb.append(" pmem=on");
        }
        if (hugetlb) {
            sb.append(" hugetlb=on hugetlbsize=0x").append(Long.toHexString(hugetlbSize));
        }
        if (prealloc) {
            sb.append(" prealloc=on prealloc-threads=").append(preallocThreads);
        }
        return sb.toString();
    }

    /**
     * The options of a backend, named after QEMU's object properties. {@link #build()} checks that they make sense
     * together; what depends on the file or the host is checked when RAM is allocated.
     *
     * <p>Threading: a builder belongs to one thread.
     */
    public static final class Builder {
        private final Kind kind;
        private final Path path;
        private final int fd;
        private boolean share;
        private boolean readonly;
        private boolean create;
        private long offset;
        private long align;
        private boolean pmem;
        private Boolean reserve;
        private boolean prealloc;
        private int preallocThreads = Math.min(Runtime.getRuntime().availableProcessors(), 16);
        private boolean hugetlb;
        private long hugetlbSize = HUGE_2M;
        private boolean seal = true;

        private Builder(Kind kind, Path path, int fd) {
            this.kind = kind;
            this.path = path;
            this.fd = fd;
        }

        /** QEMU's {@code share}: {@code MAP_SHARED} (RamFlag.SHARED) rather than a private copy-on-write mapping. */
        public Builder share(boolean share) {
            this.share = share;
            return this;
        }

        /**
         * QEMU's {@code readonly} (files and fds): the file is opened {@code O_RDONLY} and mapped {@code PROT_READ};
         * the region is read-only, so guest stores are refused as stores to ROM are (RamFlag.READONLY and
         * READONLY_FD), and the segment refuses writes.
         */
        public Builder readonly(boolean readonly) {
            this.readonly = readonly;
            return this;
        }

        /** Creates the file if it is missing and grows it to {@code offset + size} if it is shorter (files only). */
        public Builder create(boolean create) {
            this.create = create;
            return this;
        }

        /** QEMU's {@code offset} (files and fds): where in the file the RAM starts, in bytes, page-aligned. */
        public Builder offset(long offset) {
            this.offset = offset;
            return this;
        }

        /** QEMU's {@code align}: the alignment in bytes of the mapping's address, a power of two; 0 for the default. */
        public Builder align(long align) {
            this.align = align;
            return this;
        }

        /**
         * QEMU's {@code pmem} (files and fds): the file is persistent memory; {@code MemoryRegion.msync} and
         * {@code writeback} make writes durable with {@code msync(MS_SYNC)}. Sets RamFlag.NONVOLATILE.
         */
        public Builder pmem(boolean pmem) {
            this.pmem = pmem;
            return this;
        }

        /**
         * QEMU's {@code reserve}: whether swap space (or huge pages) is reserved for the whole mapping up front.
         * Off by default ({@code MAP_NORESERVE}, RamFlag.NORESERVE) except for hugetlb memory.
         */
        public Builder reserve(boolean reserve) {
            this.reserve = reserve;
            return this;
        }

        /**
         * QEMU's {@code prealloc}: every page populated at creation ({@code MADV_POPULATE_WRITE}, or touched where
         * the kernel lacks it), so that a host without the memory refuses the RAM now instead of failing the guest
         * later.
         */
        public Builder prealloc(boolean prealloc) {
            this.prealloc = prealloc;
            return this;
        }

        /** QEMU's {@code prealloc-threads}: the threads that share preallocation; by default the CPUs, at most 16. */
        public Builder preallocThreads(int threads) {
            this.preallocThreads = threads;
            return this;
        }

        /**
         * QEMU's {@code hugetlb} (memfds; here anonymous memory too, with {@code MAP_HUGETLB}): pages from the host's
         * hugetlb pool ({@code /proc/sys/vm/nr_hugepages}), whose size sizes and offsets must be multiples of.
         */
        public Builder hugetlb(boolean hugetlb) {
            this.hugetlb = hugetlb;
            return this;
        }

        /** QEMU's {@code hugetlbsize}: the huge page size, 2 MiB (the default) or 1 GiB. */
        public Builder hugetlbSize(long bytes) {
            this.hugetlbSize = bytes;
            return this;
        }

        /** QEMU's {@code seal} (memfds): F_SEAL_SHRINK and F_SEAL_GROW on the memfd; on by default. */
        public Builder seal(boolean seal) {
            this.seal = seal;
            return this;
        }

        /**
         * The backend, with the options checked against each other.
         *
         * @throws IllegalArgumentException naming the option that has no meaning for this backend or this value
         */
        public HostMemoryBackend build() {
            String backend = "backend=" + kind.qemuName;
            boolean fileLike = kind == Kind.FILE || kind == Kind.FD;
            if (readonly && !fileLike) {
                throw new IllegalArgumentException(backend + " readonly=on: only files and fds can be read-only");
            }
            if (readonly && create) {
                throw new IllegalArgumentException(backend + " readonly=on create=on: a read-only file cannot be "
                        + "created or grown");
            }
            if (create && kind != Kind.FILE) {
                throw new IllegalArgumentException(backend + " create=on: only a file backend creates its file");
            }
            if (pmem && !fileLike) {
                throw new IllegalArgumentException(backend + " pmem=on: persistent memory is a file or an fd");
            }
            if (offset != 0 && !fileLike) {
                throw new IllegalArgumentException(backend + " offset=0x" + Long.toHexString(offset)
                        + ": only files and fds have an offset");
            }
            if (offset < 0 || (offset & (HOST_PAGE - 1)) != 0) {
                throw new IllegalArgumentException(backend + " offset=0x" + Long.toHexString(offset)
                        + ": the offset must be a multiple of the page size 0x" + Long.toHexString(HOST_PAGE));
            }
            if (align != 0 && (align < HOST_PAGE || Long.bitCount(align) != 1)) {
                throw new IllegalArgumentException(backend + " align=0x" + Long.toHexString(align)
                        + ": the alignment must be a power of two of at least the page size 0x"
                        + Long.toHexString(HOST_PAGE));
            }
            if (hugetlb && fileLike) {
                throw new IllegalArgumentException(backend + " hugetlb=on: a file gets huge pages from a hugetlbfs "
                        + "path, not from this option");
            }
            if (hugetlbSize != HUGE_2M && hugetlbSize != HUGE_1G) {
                throw new IllegalArgumentException(backend + " hugetlbsize=0x" + Long.toHexString(hugetlbSize)
                        + ": the huge page size must be 2 MiB or 1 GiB");
            }
            if (!seal && kind != Kind.MEMFD) {
                throw new IllegalArgumentException(backend + " seal=off: only memfds are sealed");
            }
            if (preallocThreads < 1) {
                throw new IllegalArgumentException(backend + " prealloc-threads=" + preallocThreads
                        + ": at least one thread preallocates");
            }
            return new HostMemoryBackend(this);
        }
    }
}
