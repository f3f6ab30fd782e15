package dev.guestmem.offheap;

import dev.guestmem.offheap.internal.linux.Linux;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** What /proc/self and mincore say about this process's fds, mappings and resident memory, for the tests. */
final class ProcSelf {
    private ProcSelf() {
    }

    /** Open file descriptors, as /proc/self/fd lists them (the listing's own fd excluded). */
    static long openFds() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count() - 1;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static boolean isOpen(int fd) {
        return Files.exists(Path.of("/proc/self/fd/" + fd), java.nio.file.LinkOption.NOFOLLOW_LINKS);
    }

    /** Lines of /proc/self/maps. */
    static List<String> maps() {
        try {
            return Files.readAllLines(Path.of("/proc/self/maps"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Whether any mapping of this process covers {@code address}. */
    static boolean isMapped(long address) {
        for (String line : maps()) {
            int dash = line.indexOf('-');
            int space = line.indexOf(' ');
            long start = Long.parseUnsignedLong(line.substring(0, dash), 16);
            long end = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
            if (Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) < 0) {
                return true;
            }
        }
        return false;
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
