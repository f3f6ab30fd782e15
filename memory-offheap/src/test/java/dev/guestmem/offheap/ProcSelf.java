package dev.guestmem.offheap;

import java.util.Map;
import dev.guestmem.memory.contract.ProcFs;
import dev.guestmem.offheap.internal.linux.Linux;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** What /proc/self and mincore say about this process's fds, mappings and resident memory, for the tests. */
final class ProcSelf {
    private ProcSelf() {
    }

    /** The open file descriptors and their targets, for {@link #openedSince}. */
    static Map<Integer, String> openFds() {
        return ProcFs.openFdTargets();
    }

    /** The descriptors opened since {@code before} and still open (see {@link ProcFs#openedSince}). */
    static Map<Integer, String> openedSince(Map<Integer, String> before) {
        return ProcFs.openedSince(before);
    }

    static boolean isOpen(int fd) {
        return ProcFs.isOpen(fd);
    }

    /** Lines of /proc/self/maps. */
    static List<String> maps() {
        return ProcFs.maps();
    }

    /** Whether any mapping of this process covers {@code address}. */
    static boolean isMapped(long address) {
        return ProcFs.isMapped(address);
    }

    /** Bytes of {@code segment}'s pages that are resident (mincore, 4 KiB pages; page cache for shared memory). */
    static long residentBytes(MemorySegment segment) {
        long start = segment.address() & -4096L;
        long end = (segment.address() + segment.byteSize() + 4095) & -4096L;
        return Linux.residentPages(start, end - start) * 4096;
    }

    /** VmRSS of /proc/self/status, in bytes. */
    static long vmRss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.substring(6).trim().split("\\s+")[0]) * 1024;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        throw new IllegalStateException("/proc/self/status has no VmRSS");
    }
}
