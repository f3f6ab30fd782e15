package dev.guestmem.offheap;

import java.util.Map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import dev.guestmem.offheap.internal.linux.Linux;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every size, offset, alignment, flag and path error is refused at creation with a one-line {@code key=value} message,
 * leaving no mapping, no fd open, no file created and the ram_addr space unchanged.
 */
class BackendBadInputTest {
    /** An unusual size, so that a mapping left behind would be recognisable in /proc/self/maps. */
    private static final long SIZE = 0x305000;

    private final MemorySystem sys = new MemorySystem();

    @TempDir
    Path dir;

    /** Checks that allocating {@code SIZE} from {@code backend} is refused with {@code type} and leaves nothing. */
    private String refused(Class<? extends RuntimeException> type, Supplier<MemorySystem.RamAllocator> backend) {
        Map<Integer, String> fds = ProcSelf.openFds();
        int blocks = sys.ramList().blocks().size();
        RuntimeException e = assertThrows(type, () -> sys.ram("guest", SIZE, backend.get()));
        String message = e.getMessage();
        assertFalse(message.contains("\n"), message);
        assertTrue(message.matches("^[a-z-]+=\\S+ .*"), "starts with key=value: " + message);
        assertEquals(Map.of(), ProcSelf.openedSince(fds), "no fd left open: " + message);
        assertEquals(blocks, sys.ramList().blocks().size(), "the ram_addr space is unchanged");
        assertNoMappingLeft();
        return message;
    }

    private void assertNoMappingLeft() {
        List<String> left = ProcSelf.maps().stream().filter(line -> {
            String[] range = line.substring(0, line.indexOf(' ')).split("-");
            long len = Long.parseUnsignedLong(range[1], 16) - Long.parseUnsignedLong(range[0], 16);
            return len == SIZE || len == SIZE + (2 << 20) || line.contains(dir.toString());
        }).toList();
        assertEquals(List.of(), left, "nothing of the refused RAM stays mapped");
    }

    private Path file(String name, long bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, new byte[(int) bytes]);
        return p;
    }

    @Test
    void aMissingFileIsRefusedUnlessCreateIsSet() throws IOException {
        Path missing = dir.resolve("missing");
        String m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.file(missing).share(true).build());
        assertEquals("region=guest backend=memory-backend-file path=" + missing + " size=0x305000: the file does not "
                + "exist (create=on creates it): open(path=" + missing + ", flags=RDWR|CLOEXEC) failed: ENOENT",
                m);
        assertFalse(Files.exists(missing));
    }

    @Test
    void createMakesAndSizesTheFileAndRemovesItWhenRefusedLater() throws IOException {
        Path made = dir.resolve("made");
        MemoryRegion ram = sys.ram("made", SIZE,
                HostMemoryBackend.file(made).share(true).create(true).offset(0x3000).build());
        assertEquals(0x3000 + SIZE, Files.size(made));
        ram.destroy();
        Path grown = file("grown", 0x1000);
        ram = sys.ram("grown", SIZE, HostMemoryBackend.file(grown).share(true).create(true).build());
        assertEquals(SIZE, Files.size(grown), "a shorter file is grown to offset + size");
        ram.destroy();
        sys.rcu().barrier();

        Path never = dir.resolve("never");
        refused(IllegalArgumentException.class, () -> HostMemoryBackend.file(never).create(true).offset(Long.MAX_VALUE
                & -4096L).build());
        assertFalse(Files.exists(never), "a file created for a refused RAM is removed");
    }

    @Test
    void aDirectoryReadOnlyOrUnwritableAFifoAndAnUnmappableDeviceAreRefused()
            throws IOException, InterruptedException {
        String m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.file(dir).readonly(true).build());
        assertTrue(m.contains(" type=directory: guest RAM maps a regular file or a memory device"), m);
        m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.file(Path.of("/proc")).build());
        assertTrue(m.startsWith("region=guest backend=memory-backend-file path=/proc size=0x305000: no file can be "
                + "created in the directory: open(path=/proc/guestmem_guest_"), m);
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start().waitFor());
        m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.file(fifo).build());
        assertTrue(m.endsWith(" type=fifo: guest RAM maps a regular file or a memory device"), m);
        m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.file(Path.of("/dev/null")).build());
        assertTrue(m.endsWith("failed: ENODEV"), m);
    }

    @Test
    void aFileTooSmallForOffsetPlusSizeIsRefused() throws IOException {
        Path small = file("small", SIZE);
        String m = refused(IllegalArgumentException.class,
                () -> HostMemoryBackend.file(small).offset(0x1000).share(true).build());
        assertEquals("region=guest backend=memory-backend-file path=" + small + " fileSize=0x305000 offset=0x1000 "
                + "size=0x305000: the file is smaller than offset + size", m);
        assertEquals(SIZE, Files.size(small), "a refused file is not grown");
        m = refused(IllegalArgumentException.class,
                () -> HostMemoryBackend.file(small).offset(Long.MAX_VALUE & -4096L).build());
        assertTrue(m.endsWith(": offset + size overflows"), m);
    }

    @Test
    void aFileThatCannotBeOpenedAsAskedIsRefused() throws IOException, InterruptedException {
        Path locked = file("locked", SIZE);
        Files.setPosixFilePermissions(locked, java.nio.file.attribute.PosixFilePermissions.fromString("r--r--r--"));
        // Root ignores permission bits; an immutable file is refused to root as well.
        boolean root = "root".equals(System.getProperty("user.name"));
        if (root) {
            int rc = new ProcessBuilder("chattr", "+i", locked.toString()).inheritIO().start().waitFor();
            assumeTrue(rc == 0, "chattr +i failed (rc=" + rc + "): no file here is unwritable to root");
        }
        try {
            String m = refused(IllegalArgumentException.class,
                    () -> HostMemoryBackend.file(locked).share(true).build());
            assertTrue(m.contains("the file cannot be opened for writing: open(path=" + locked), m);
            assertTrue(m.endsWith(root ? "EPERM" : "EACCES"), m);
            MemoryRegion ram = sys.ram("reader", SIZE, HostMemoryBackend.file(locked).readonly(true).build());
            assertTrue(ram.ramBlock().flags().contains(RamFlag.READONLY_FD), "readable, it maps read-only");
            ram.destroy();
        } finally {
            if (root) {
                new ProcessBuilder("chattr", "-i", locked.toString()).inheritIO().start().waitFor();
            }
        }
    }

    @Test
    void fdsAreCheckedAsFilesAreAndNeverClosed() throws IOException {
        assertEquals("fd=-1: not a file descriptor",
                assertThrows(IllegalArgumentException.class, () -> HostMemoryBackend.fd(-1)).getMessage());
        String m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.fd(999_999).build());
        assertTrue(m.endsWith("fstat(fd=999999) failed: EBADF"), m);
        Path f = file("f", SIZE);
        int readOnly = Linux.open(f.toString(), Linux.O_RDONLY | Linux.O_CLOEXEC, 0);
        int writeOnly = Linux.open(f.toString(), 1 | Linux.O_CLOEXEC, 0);
        try {
            m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.fd(readOnly).build());
            assertTrue(m.endsWith(" accessMode=RDONLY share=on readonly=off: a shared writable mapping needs a file "
                    + "opened for writing"), m);
            m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.fd(writeOnly).readonly(true).build());
            assertTrue(m.endsWith(" accessMode=WRONLY: the fd must be readable to be mapped"), m);
            m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.fd(readOnly).offset(0x1000)
                    .readonly(true).build());
            assertTrue(m.endsWith(": the file is smaller than offset + size"), m);
            assertTrue(ProcSelf.isOpen(readOnly) && ProcSelf.isOpen(writeOnly), "the caller's fds stay open");
        } finally {
            Linux.close(readOnly);
            Linux.close(writeOnly);
        }
    }

    @Test
    void hugetlbSizesMustBeWholeHugePages() {
        String m = refused(IllegalArgumentException.class, () -> HostMemoryBackend.memfd().hugetlb(true).build());
        assertEquals("region=guest backend=memory-backend-memfd size=0x305000 pageSize=0x200000: huge page memory "
                + "must be a multiple of the page size", m);
    }

    @Test
    void memoryTheHostCannotGiveIsRefusedAsSuch() {
        Map<Integer, String> fds = ProcSelf.openFds();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> sys.ram("huge", 1L << 50, HostMemoryBackend.anonymous().reserve(true).build()));
        assertTrue(e.getMessage().startsWith("region=huge backend=memory-backend-ram size=0x4000000000000: mmap "
                + "failed: mmap(length="), e.getMessage());
        assertTrue(e.getMessage().endsWith("failed: ENOMEM"), e.getMessage());
        assertInstanceOf(ErrnoException.class, e.getCause());
        assertEquals("ENOMEM", ((ErrnoException) e.getCause()).errnoName());
        assertEquals(Map.of(), ProcSelf.openedSince(fds));
        assertEquals(0, sys.ramList().blocks().size());
    }

    @Test
    void optionsThatMeanNothingTogetherAreRefusedAtBuild() {
        Path p = dir.resolve("x");
        List<Supplier<HostMemoryBackend.Builder>> cases = List.of(
                () -> HostMemoryBackend.anonymous().readonly(true),
                () -> HostMemoryBackend.file(p).readonly(true).create(true),
                () -> HostMemoryBackend.memfd().create(true),
                () -> HostMemoryBackend.anonymous().pmem(true),
                () -> HostMemoryBackend.memfd().offset(0x1000),
                () -> HostMemoryBackend.file(p).offset(0x1800),
                () -> HostMemoryBackend.file(p).offset(-4096),
                () -> HostMemoryBackend.anonymous().align(0x3000),
                () -> HostMemoryBackend.anonymous().align(0x800),
                () -> HostMemoryBackend.file(p).hugetlb(true),
                () -> HostMemoryBackend.memfd().hugetlb(true).hugetlbSize(4L << 20),
                () -> HostMemoryBackend.file(p).seal(false),
                () -> HostMemoryBackend.anonymous().preallocThreads(0));
        List<String> expected = List.of(
                "backend=memory-backend-ram readonly=on: only files and fds can be read-only",
                "backend=memory-backend-file readonly=on create=on: a read-only file cannot be created or grown",
                "backend=memory-backend-memfd create=on: only a file backend creates its file",
                "backend=memory-backend-ram pmem=on: persistent memory is a file or an fd",
                "backend=memory-backend-memfd offset=0x1000: only files and fds have an offset",
                "backend=memory-backend-file offset=0x1800: the offset must be a multiple of the page size 0x1000",
                "backend=memory-backend-file offset=0xfffffffffffff000: the offset must be a multiple of the page "
                        + "size 0x1000",
                "backend=memory-backend-ram align=0x3000: the alignment must be a power of two of at least the page "
                        + "size 0x1000",
                "backend=memory-backend-ram align=0x800: the alignment must be a power of two of at least the page "
                        + "size 0x1000",
                "backend=memory-backend-file hugetlb=on: a file gets huge pages from a hugetlbfs path, not from this "
                        + "option",
                "backend=memory-backend-memfd hugetlbsize=0x400000: the huge page size must be 2 MiB or 1 GiB",
                "backend=memory-backend-file seal=off: only memfds are sealed",
                "backend=memory-backend-ram prealloc-threads=0: at least one thread preallocates");
        for (int i = 0; i < cases.size(); i++) {
            Supplier<HostMemoryBackend.Builder> c = cases.get(i);
            assertEquals(expected.get(i), assertThrows(IllegalArgumentException.class, () -> c.get().build())
                    .getMessage());
        }
        assertEquals("region=guest backend=memory-backend-ram size=0: RAM must be at least 1 byte",
                assertThrows(IllegalArgumentException.class,
                        () -> HostMemoryBackend.anonymous().build().allocate("guest", 0)).getMessage());
    }
}
