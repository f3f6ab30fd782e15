package dev.guestmem.offheap;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reserves 2 MiB hugetlb pages for a test class (as root, through /proc/sys/vm/nr_hugepages) and puts the old
 * setting back afterwards. Where the host refuses, {@link #reserve} says why, and the test is skipped with it.
 */
final class HugePages {
    private static final Path NR_HUGEPAGES = Path.of("/proc/sys/vm/nr_hugepages");
    private static final Path FREE = Path.of("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");

    private Long previous;

    /**
     * Makes at least {@code pages} free 2 MiB pages available.
     *
     * @return null if they are, or why not
     */
    String reserve(int pages) {
        try {
            long free = Long.parseLong(Files.readString(FREE).trim());
            if (free >= pages) {
                return null;
            }
            long old = Long.parseLong(Files.readString(NR_HUGEPAGES).trim());
            Files.writeString(NR_HUGEPAGES, Long.toString(old + pages - free));
            previous = old;
            free = Long.parseLong(Files.readString(FREE).trim());
            return free >= pages ? null : "the host gave " + free + " free 2 MiB huge pages of " + pages + " asked";
        } catch (IOException | RuntimeException e) {
            return "huge pages cannot be reserved here: " + e;
        }
    }

    void restore() throws IOException {
        if (previous != null) {
            Files.writeString(NR_HUGEPAGES, Long.toString(previous));
            previous = null;
        }
    }
}
