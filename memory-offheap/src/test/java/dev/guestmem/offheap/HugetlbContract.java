package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.guestmem.memory.MemorySystem;
import java.io.IOException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * The contract on hugetlb memory: 2 MiB pages reserved for the class (as root, through /proc/sys/vm/nr_hugepages)
 * and the old setting put back after it; skipped, with the reason printed, where the host has none to give.
 */
abstract class HugetlbContract extends RamBackendContract {
    private static final HugePages HUGE_PAGES = new HugePages();
    private static String refused;

    @BeforeAll
    static void reserve() {
        refused = HUGE_PAGES.reserve(8);
        if (refused != null) {
            System.out.println("hugetlb contract skipped: " + refused);
        }
    }

    @AfterAll
    static void restore() throws IOException {
        HUGE_PAGES.restore();
    }

    /** The hugetlb backend under test. */
    abstract MemorySystem.RamAllocator hugetlbBackend();

    @Override
    protected final MemorySystem.RamAllocator backend() {
        assumeTrue(refused == null, refused);
        return hugetlbBackend();
    }

    @Override
    protected long expectedPageSize() {
        return 2L << 20;
    }
}
