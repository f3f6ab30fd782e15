package dev.guestmem.offheap.internal.linux;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.guestmem.offheap.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * Every native call of memory-offheap: the Linux (glibc) memory, file and memfd calls as FFM downcalls. Each captures
 * {@code errno} ({@link Linker.Option#captureCallState}) and turns a failure into an {@link ErrnoException} naming
 * the call, its arguments and the errno. Addresses are passed as plain numbers: no guest RAM segment is ever handed
 * to native code, so a call never holds a segment's scope open, and no call here reads or writes guest RAM
 * (madvise and msync ask the kernel, which reports a truncated file as an errno rather than a SIGBUS).
 *
 * <p>Layouts and constants are those of x86_64 Linux (struct stat and struct statfs as x86_64 glibc lays them out);
 * {@link #checkPlatform} refuses other hosts. Threading: every method is safe on any thread.
 */
public final class Linux {
    public static final int PROT_NONE = 0;
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;

    public static final int MAP_SHARED = 0x01;
    public static final int MAP_PRIVATE = 0x02;
    public static final int MAP_FIXED = 0x10;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_NORESERVE = 0x4000;
    public static final int MAP_HUGETLB = 0x40000;
    public static final int MAP_HUGE_SHIFT = 26;

    public static final int MADV_DONTNEED = 4;
    public static final int MADV_REMOVE = 9;
    public static final int MADV_HUGEPAGE = 14;
    public static final int MADV_POPULATE_READ = 22;
    public static final int MADV_POPULATE_WRITE = 23;

    public static final int MFD_CLOEXEC = 0x1;
    public static final int MFD_ALLOW_SEALING = 0x2;
    public static final int MFD_HUGETLB = 0x4;

    public static final int F_GETFL = 3;
    public static final int F_ADD_SEALS = 1033;
    public static final int F_GET_SEALS = 1034;
    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;

    public static final int O_RDONLY = 0;
    public static final int O_RDWR = 2;
    public static final int O_ACCMODE = 3;
    public static final int O_CREAT = 0x40;
    public static final int O_EXCL = 0x80;
    public static final int O_CLOEXEC = 0x80000;

    public static final int FALLOC_FL_KEEP_SIZE = 0x1;
    public static final int FALLOC_FL_PUNCH_HOLE = 0x2;

    public static final int MS_SYNC = 4;

    /** {@code f_type} of a hugetlbfs mount. */
    public static final long HUGETLBFS_MAGIC = 0x958458f6L;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CALL_STATE.varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle MMAP = downcall("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = downcall("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle MPROTECT =
            downcall("mprotect", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MADVISE =
            downcall("madvise", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MSYNC =
            downcall("msync", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MINCORE =
            downcall("mincore", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
    private static final MethodHandle MEMFD_CREATE =
            downcall("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle FTRUNCATE =
            downcall("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle FALLOCATE =
            downcall("fallocate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));
    // int fcntl(int fd, int cmd, ...) and int open(const char *path, int flags, ...): the third argument is variadic.
    private static final MethodHandle FCNTL = downcall("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle OPEN = downcall("open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FSTAT = downcall("fstat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle FSTATFS =
            downcall("fstatfs", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));

    /** struct stat on x86_64: 144 bytes, st_mode at 24, st_size at 48, st_blksize at 56. */
    private static final long STAT_SIZE = 144;
    private static final long STAT_MODE = 24;
    private static final long STAT_SIZE_FIELD = 48;
    private static final long STAT_BLKSIZE = 56;
    /** struct statfs on x86_64: 120 bytes, f_type at 0, f_bsize at 8. */
    private static final long STATFS_SIZE = 120;
    private static final long STATFS_BSIZE = 8;

    private Linux() {
    }

    /**
     * Refuses hosts whose structs and constants this class does not describe.
     *
     * @throws UnsupportedOperationException on anything but Linux on x86_64
     */
    public static void checkPlatform() {
        if (!isSupportedPlatform()) {
            throw new UnsupportedOperationException("os=" + System.getProperty("os.name") + " arch="
                    + System.getProperty("os.arch") + ": OS-backed guest RAM needs Linux on x86_64");
        }
    }

    /** Whether this is the host whose structs and constants this class describes: Linux on x86_64. */
    static boolean isSupportedPlatform() {
        String arch = System.getProperty("os.arch");
        return "Linux".equals(System.getProperty("os.name")) && ("amd64".equals(arch) || "x86_64".equals(arch));
    }

    @SuppressWarnings("restricted") // this package is where the module's native calls are made, on purpose
    static MethodHandle downcall(String name, FunctionDescriptor fd, Linker.Option... extra) {
        Linker.Option[] options = new Linker.Option[extra.length + 1];
        options[0] = CAPTURE_ERRNO;
        System.arraycopy(extra, 0, options, 1, extra.length);
        MemorySegment symbol = LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new UnsupportedOperationException("symbol=" + name + ": not in the C library"));
        return LINKER.downcallHandle(symbol, fd, options);
    }

    static MemorySegment state(Arena arena) {
        return arena.allocate(CALL_STATE);
    }

    static ErrnoException failure(MemorySegment state, String call) {
        int errno = errno(state);
        return new ErrnoException(call, errno, Errno.name(errno));
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    /**
     * {@code mmap}: maps {@code length} bytes and returns the address of the mapping.
     *
     * @param addr a hint, or the address to map at with {@link #MAP_FIXED}; 0 for none
     */
    public static long mmap(long addr, long length, int prot, int flags, int fd, long offset) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            long r = ((MemorySegment) MMAP.invokeExact(state, MemorySegment.ofAddress(addr), length, prot, flags, fd,
                    offset)).address();
            if (r == -1L) {
                throw failure(state, "mmap(" + (addr == 0 ? "" : "addr=" + hex(addr) + ", ") + "length="
                        + hex(length) + ", prot=" + protName(prot) + ", flags=" + mapFlagsName(flags) + ", fd=" + fd
                        + ", offset=" + (offset == 0 ? "0" : hex(offset)) + ")");
            }
            return r;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code munmap}. */
    public static void munmap(long addr, long length) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            if ((int) MUNMAP.invokeExact(state, MemorySegment.ofAddress(addr), length) != 0) {
                throw failure(state, "munmap(addr=" + hex(addr) + ", length=" + hex(length) + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code mprotect}. */
    public static void mprotect(long addr, long length, int prot) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            if ((int) MPROTECT.invokeExact(state, MemorySegment.ofAddress(addr), length, prot) != 0) {
                throw failure(state, "mprotect(addr=" + hex(addr) + ", length=" + hex(length) + ", prot="
                        + protName(prot) + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code madvise}. The kernel, never this code, touches the memory (MADV_POPULATE_*). */
    public static void madvise(long addr, long length, int advice) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            if ((int) MADVISE.invokeExact(state, MemorySegment.ofAddress(addr), length, advice) != 0) {
                throw failure(state, "madvise(addr=" + hex(addr) + ", length=" + hex(length) + ", advice="
                        + adviceName(advice) + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code msync}. */
    public static void msync(long addr, long length, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            if ((int) MSYNC.invokeExact(state, MemorySegment.ofAddress(addr), length, flags) != 0) {
                throw failure(state, "msync(addr=" + hex(addr) + ", length=" + hex(length) + ", flags="
                        + (flags == MS_SYNC ? "SYNC" : hex(flags)) + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * {@code mincore}: how many of the 4 KiB pages of {@code [addr, addr+length)} are resident in memory (for a shared
     * mapping, in the page cache), as the tests and benchmarks measure returned memory.
     *
     * @param addr page-aligned
     */
    public static long residentPages(long addr, long length) {
        long pages = (length + 4095) >>> 12;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            MemorySegment vec = arena.allocate(pages);
            if ((int) MINCORE.invokeExact(state, MemorySegment.ofAddress(addr), length, vec) != 0) {
                throw failure(state, "mincore(addr=" + hex(addr) + ", length=" + hex(length) + ")");
            }
            long resident = 0;
            for (long i = 0; i < pages; i++) {
                resident += vec.get(JAVA_BYTE, i) & 1;
            }
            return resident;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code memfd_create}: a new anonymous file; returns its fd. */
    public static int memfdCreate(String name, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            int fd = (int) MEMFD_CREATE.invokeExact(state, arena.allocateFrom(name), flags);
            if (fd < 0) {
                throw failure(state, "memfd_create(name=" + name + ", flags=" + memfdFlagsName(flags) + ")");
            }
            return fd;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code ftruncate}. */
    public static void ftruncate(int fd, long length) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            if ((int) FTRUNCATE.invokeExact(state, fd, length) != 0) {
                throw failure(state, "ftruncate(fd=" + fd + ", length=" + hex(length) + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code fallocate}. */
    public static void fallocate(int fd, int mode, long offset, long length) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            if ((int) FALLOCATE.invokeExact(state, fd, mode, offset, length) != 0) {
                throw failure(state, "fallocate(fd=" + fd + ", mode=" + fallocateModeName(mode) + ", offset="
                        + hex(offset) + ", length=" + hex(length) + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code fcntl} with an int argument (F_GETFL, F_ADD_SEALS, F_GET_SEALS); returns what it returns. */
    public static int fcntl(int fd, int cmd, int arg) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            int r = (int) FCNTL.invokeExact(state, fd, cmd, arg);
            if (r == -1) {
                throw failure(state, "fcntl(fd=" + fd + ", cmd=" + fcntlCmdName(cmd) + ", arg=" + hex(arg) + ")");
            }
            return r;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code open}; returns the fd. */
    public static int open(String path, int flags, int mode) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path), flags, mode);
            if (fd < 0) {
                throw failure(state, "open(path=" + path + ", flags=" + openFlagsName(flags)
                        + ((flags & O_CREAT) != 0 ? ", mode=0" + Integer.toOctalString(mode) : "") + ")");
            }
            return fd;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code close}. */
    public static void close(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            if ((int) CLOSE.invokeExact(state, fd) != 0) {
                throw failure(state, "close(fd=" + fd + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code fstat}. */
    public static FileStat fstat(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            MemorySegment st = arena.allocate(STAT_SIZE, 8);
            if ((int) FSTAT.invokeExact(state, fd, st) != 0) {
                throw failure(state, "fstat(fd=" + fd + ")");
            }
            return new FileStat(st.get(JAVA_INT, STAT_MODE), st.get(JAVA_LONG, STAT_SIZE_FIELD),
                    st.get(JAVA_LONG, STAT_BLKSIZE));
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code fstatfs}: the type and block size of the file system the fd's file lives on. */
    public static FileSystemStat fstatfs(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            MemorySegment st = arena.allocate(STATFS_SIZE, 8);
            if ((int) FSTATFS.invokeExact(state, fd, st) != 0) {
                throw failure(state, "fstatfs(fd=" + fd + ")");
            }
            return new FileSystemStat(st.get(JAVA_LONG, 0) & 0xffff_ffffL, st.get(JAVA_LONG, STATFS_BSIZE));
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** PROT_* as the messages spell it: NONE, R, RW. */
    static String protName(int prot) {
        if (prot == PROT_NONE) {
            return "NONE";
        }
        return ((prot & PROT_READ) != 0 ? "R" : "") + ((prot & PROT_WRITE) != 0 ? "W" : "")
                + ((prot & ~(PROT_READ | PROT_WRITE)) != 0 ? "|" + hex(prot & ~(PROT_READ | PROT_WRITE)) : "");
    }

    static String mapFlagsName(int flags) {
        StringBuilder sb = new StringBuilder();
        int rest = flags & ~(0x3f << MAP_HUGE_SHIFT);
        rest = flag(sb, rest, MAP_SHARED, "SHARED");
        rest = flag(sb, rest, MAP_PRIVATE, "PRIVATE");
        rest = flag(sb, rest, MAP_FIXED, "FIXED");
        rest = flag(sb, rest, MAP_ANONYMOUS, "ANONYMOUS");
        rest = flag(sb, rest, MAP_NORESERVE, "NORESERVE");
        rest = flag(sb, rest, MAP_HUGETLB, "HUGETLB");
        int hugeShift = (flags >>> MAP_HUGE_SHIFT) & 0x3f;
        if (hugeShift != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append("HUGE_").append(hugeSizeName(hugeShift));
        }
        return rest(sb, rest);
    }

    static String memfdFlagsName(int flags) {
        StringBuilder sb = new StringBuilder();
        int rest = flags & ~(0x3f << MAP_HUGE_SHIFT);
        rest = flag(sb, rest, MFD_CLOEXEC, "CLOEXEC");
        rest = flag(sb, rest, MFD_ALLOW_SEALING, "ALLOW_SEALING");
        rest = flag(sb, rest, MFD_HUGETLB, "HUGETLB");
        int hugeShift = (flags >>> MAP_HUGE_SHIFT) & 0x3f;
        if (hugeShift != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append("HUGE_").append(hugeSizeName(hugeShift));
        }
        return rest(sb, rest);
    }

    static String openFlagsName(int flags) {
        StringBuilder sb = new StringBuilder((flags & O_ACCMODE) == O_RDWR ? "RDWR"
                : (flags & O_ACCMODE) == O_RDONLY ? "RDONLY" : "WRONLY");
        int rest = flags & ~O_ACCMODE;
        rest = flag(sb, rest, O_CREAT, "CREAT");
        rest = flag(sb, rest, O_EXCL, "EXCL");
        rest = flag(sb, rest, O_CLOEXEC, "CLOEXEC");
        return rest(sb, rest);
    }

    static String fallocateModeName(int mode) {
        StringBuilder sb = new StringBuilder();
        int rest = flag(sb, mode, FALLOC_FL_PUNCH_HOLE, "PUNCH_HOLE");
        rest = flag(sb, rest, FALLOC_FL_KEEP_SIZE, "KEEP_SIZE");
        return rest(sb, rest);
    }

    static String adviceName(int advice) {
        return switch (advice) {
            case MADV_DONTNEED -> "DONTNEED";
            case MADV_REMOVE -> "REMOVE";
            case MADV_HUGEPAGE -> "HUGEPAGE";
            case MADV_POPULATE_READ -> "POPULATE_READ";
            case MADV_POPULATE_WRITE -> "POPULATE_WRITE";
            default -> Integer.toString(advice);
        };
    }

    static String fcntlCmdName(int cmd) {
        return switch (cmd) {
            case F_GETFL -> "F_GETFL";
            case F_ADD_SEALS -> "F_ADD_SEALS";
            case F_GET_SEALS -> "F_GET_SEALS";
            default -> Integer.toString(cmd);
        };
    }

    private static String hugeSizeName(int shift) {
        return shift >= 30 ? (1 << (shift - 30)) + "GB" : (1 << (shift - 20)) + "MB";
    }

    private static int flag(StringBuilder sb, int flags, int bit, String name) {
        if ((flags & bit) != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append(name);
        }
        return flags & ~bit;
    }

    private static String rest(StringBuilder sb, int rest) {
        if (rest != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append(hex(rest));
        }
        return sb.isEmpty() ? "0" : sb.toString();
    }
}
