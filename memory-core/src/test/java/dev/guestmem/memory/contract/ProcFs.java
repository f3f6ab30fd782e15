package dev.guestmem.memory.contract;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** What /proc/self says about this process's fds and mappings, for tests of RAM that must leave neither behind. */
public final class ProcFs {
    private ProcFs() {
    }

    /** Open file descriptors, as /proc/self/fd lists them (the listing's own fd excluded). */
    public static long openFds() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count() - 1;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Whether {@code fd} is open in this process. */
    public static boolean isOpen(int fd) {
        return Files.exists(Path.of("/proc/self/fd/" + fd), LinkOption.NOFOLLOW_LINKS);
    }

    /** Lines of /proc/self/maps. */
    public static List<String> maps() {
        try {
            return Files.readAllLines(Path.of("/proc/self/maps"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Whether any mapping of this process covers {@code address}. */
    public static boolean isMapped(long address) {
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
}
