package dev.guestmem.memory.contract;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
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

    /**
     * The open file descriptors and what each refers to ("socket:[123]", a path...), the listing's own fd among them
     * (it differs from one listing to the next, so {@link #openedSince} leaves out what is no longer open).
     */
    public static Map<Integer, String> openFdTargets() {
        Map<Integer, String> out = new TreeMap<>();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path p : (Iterable<Path>) fds::iterator) {
                try {
                    out.put(Integer.valueOf(p.getFileName().toString()), Files.readSymbolicLink(p).toString());
                } catch (IOException gone) {
                    // closed since the listing (the listing's own fd, or another thread's): not open now
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /**
     * The descriptors open now that were not open, to the same target, in {@code before}: what a test left open. A
     * descriptor that other code closed meanwhile (a cleaner freeing an earlier test's memfd) is not counted against it.
     */
    public static Map<Integer, String> openedSince(Map<Integer, String> before) {
        Map<Integer, String> now = openFdTargets();
        now.entrySet().removeIf(e -> e.getValue().equals(before.get(e.getKey())) || !isOpen(e.getKey()));
        return now;
    }

    /**
     * What {@link #openedSince} finds other than pipes: the JDK opens and closes pipes of its own around a child
     * process at times of its choosing, while what a test of a peer could leak is a socket or a received descriptor.
     */
    public static List<String> openedSinceExceptPipes(Map<Integer, String> before) {
        return openedSince(before).values().stream().filter(t -> !t.startsWith("pipe:")).toList();
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
