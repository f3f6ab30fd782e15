package dev.guestmem.offheap.internal.linux;

import dev.guestmem.offheap.ErrnoException;
import java.util.Arrays;

/**
 * The host address ranges this module mapped over memory that can fault: files and memfds some process may truncate,
 * huge pages that may run out, a vhost-user front-end's memory. Native code must never touch them (a SIGBUS there
 * kills the JVM, where the JDK's own accesses turn it into an exception), so {@link Memmove} asks here before it hands
 * a piece to the C library. Ranges never overlap (each is a live mapping of its own) and are kept sorted.
 *
 * <p>Threading: {@link #add} and {@link #remove} under this class's lock, publishing a new array each (copy on write);
 * {@link #overlaps} from any thread, one volatile read, no lock.
 */
public final class FaultingMappings {
    /** Start and end (exclusive) of each range, sorted by start: {@code [s0, e0, s1, e1, ...]}. */
    private static volatile long[] ranges = new long[0];

    private FaultingMappings() {
    }

    /**
     * Whether memory mapped from {@code fd} can lose pages to a truncation: true unless the file is sealed against
     * shrinking ({@code F_SEAL_SHRINK}, which no process can take back), as every file and an unsealed memfd can.
     */
    public static boolean faultsWhenTruncated(int fd) {
        if (fd < 0) {
            return false;
        }
        try {
            return (Linux.fcntl(fd, Linux.F_GET_SEALS, 0) & Linux.F_SEAL_SHRINK) == 0;
        } catch (ErrnoException e) {
            return true; // EINVAL: not a file that takes seals, so nothing keeps it from shrinking
        }
    }

    /** Records the mapping {@code [address, address+length)} (host address, bytes). */
    public static synchronized void add(long address, long length) {
        final long[] old = ranges;
        int i = insertionPoint(old, address);
        long[] now = new long[old.length + 2];
        System.arraycopy(old, 0, now, 0, i);
        now[i] = address;
        now[i + 1] = address + length;
        System.arraycopy(old, i, now, i + 2, old.length - i);
        ranges = now; // volatile: a reader sees the whole array or the old one
    }

    /** Forgets the mapping that starts at {@code address}, before it is unmapped; nothing if there is none. */
    public static synchronized void remove(long address) {
        final long[] old = ranges;
        int i = insertionPoint(old, address);
        if (i == old.length || old[i] != address) {
            return;
        }
        long[] now = new long[old.length - 2];
        System.arraycopy(old, 0, now, 0, i);
        System.arraycopy(old, i + 2, now, i, old.length - i - 2);
        ranges = now;
    }

    /** Whether {@code [address, address+length)} (host address, bytes, length at least 1) meets a recorded range. */
    public static boolean overlaps(long address, long length) {
        final long[] ranges = FaultingMappings.ranges;
        return ranges.length != 0 && overlaps(ranges, address, length);
    }

    /**
     * Whether {@code [a, a+length)} or {@code [b, b+length)} (host addresses, bytes, length at least 1) meets a
     * recorded range: both ends of one copy, on one read of the list ({@link Memmove} asks this once per copy, so
     * that a process with no faulting mapping pays one volatile read and one compare for both).
     */
    public static boolean overlapsEither(long a, long b, long length) {
        final long[] ranges = FaultingMappings.ranges;
        return ranges.length != 0 && (overlaps(ranges, a, length) || overlaps(ranges, b, length));
    }

    private static boolean overlaps(long[] ranges, long address, long length) {
        // The last range starting before the end of ours is the only one that can overlap it.
        int i = insertionPoint(ranges, address + length) - 2;
        return i >= 0 && Long.compareUnsigned(ranges[i + 1], address) > 0;
    }

    /** The index (even) of the first range whose start is at or above {@code address}, or the array's length. */
    private static int insertionPoint(long[] ranges, long address) {
        int lo = 0;
        int hi = ranges.length / 2;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(ranges[2 * mid], address) < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return 2 * lo;
    }

    /** The recorded ranges, for tests. */
    static long[] snapshot() {
        return Arrays.copyOf(ranges, ranges.length);
    }
}
