package dev.guestmem.offheap;

import java.util.Map;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code prealloc=on}: every page is resident when the RAM is handed out, the work split over threads; and a host
 * that cannot provide the pages refuses the RAM at creation, leaving nothing mapped and no fd open.
 */
class PreallocTest {
    private static final Path FREE_HUGE = Path.of("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
    private final MemorySystem sys = new MemorySystem();

    @Test
    void everyPageIsResidentAtCreation() {
        long size = 64L << 20;
        for (HostMemoryBackend backend : new HostMemoryBackend[] {
            HostMemoryBackend.anonymous().prealloc(true).preallocThreads(4).build(),
            HostMemoryBackend.anonymous().prealloc(true).preallocThreads(1).build(),
            HostMemoryBackend.memfd().prealloc(true).preallocThreads(3).build()}) {
            MemoryRegion ram = sys.ram("ram", size, backend);
            assertEquals(size, ProcSelf.residentBytes(ram.ramSegment()), backend.toString());
            assertEquals(0, ram.ramSegment().get(java.lang.foreign.ValueLayout.JAVA_LONG, size - 8));
            ram.destroy();
        }
        MemoryRegion lazy = sys.ram("lazy", size, HostMemoryBackend.anonymous().build());
        assertEquals(0, ProcSelf.residentBytes(lazy.ramSegment()), "without prealloc nothing is resident");
        lazy.destroy();
        sys.rcu().barrier();
    }

    @Test
    void touchingPopulatesWhereTheKernelCannotAndKeepsTheContents() throws IOException {
        long size = 5 * 4096 + (8L << 20); // not a multiple of the parts: the last threads get less, or nothing
        MemoryRegion ram = sys.ram("touched", size, HostMemoryBackend.anonymous().build());
        ram.ramSegment().set(java.lang.foreign.ValueLayout.JAVA_LONG, 4096, 99);
        Preallocator.populate("region=touched", ram.ramSegment().address(), size, true, 7, false);
        assertEquals(size, ProcSelf.residentBytes(ram.ramSegment()));
        assertEquals(99, ram.ramSegment().get(java.lang.foreign.ValueLayout.JAVA_LONG, 4096), "touching keeps data");
        ram.destroy();
        sys.rcu().barrier();
    }

    @Test
    void touchingATruncatedFileFailsCleanlyInsteadOfKillingTheJvm(@TempDir Path dir)
            throws IOException, InterruptedException {
        Path file = dir.resolve("shrinking");
        long size = 1L << 20;
        MemoryRegion ram = sys.ram("shrinking", size, HostMemoryBackend.file(file).share(true).create(true).build());
        try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(4096); // as another process could, under the mapping
        }
        for (boolean kernel : new boolean[] {true, false}) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Preallocator.populate(
                    "region=shrinking", ram.ramSegment().address(), size, true, 2, kernel));
            System.out.println("PreallocTest: " + e.getMessage());
            assertTrue(e.getMessage().startsWith("region=shrinking size=0x100000 prealloc=on: the host cannot "
                    + "provide the memory: "), e.getMessage());
            Class<? extends Throwable> cause = kernel ? ErrnoException.class : InternalError.class;
            assertInstanceOf(cause, e.getCause(), "a SIGBUS is an errno to the kernel, an InternalError to Java");
        }
        ram.destroy();
        sys.rcu().barrier();
    }

    @Test
    void exhaustedHugePagesRefuseTheRamAtCreation() throws IOException {
        HugePages hugePages = new HugePages();
        String refused = hugePages.reserve(2);
        assumeTrue(refused == null, refused);
        try {
            long free = Long.parseLong(Files.readString(FREE_HUGE).trim());
            long size = (free + 2) * (2L << 20);
            Map<Integer, String> fds = ProcSelf.openFds();
            // Reserved (the default for hugetlb): mmap itself refuses.
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> sys.ram("big", size, HostMemoryBackend.memfd().hugetlb(true).build()));
            assertTrue(e.getMessage().endsWith("failed: ENOMEM"), e.getMessage());
            // Not reserved: the mapping succeeds, and preallocation finds the pages missing.
            e = assertThrows(IllegalStateException.class, () -> sys.ram("big", size,
                    HostMemoryBackend.memfd().hugetlb(true).reserve(false).prealloc(true).preallocThreads(2).build()));
            assertTrue(e.getMessage().startsWith("region=big backend="), "a refused RAM's name is free again: "
                    + e.getMessage());
            assertTrue(e.getMessage().contains(" prealloc=on: the host cannot provide the memory: madvise("),
                    e.getMessage());
            assertInstanceOf(ErrnoException.class, e.getCause());
            System.out.println("PreallocTest: " + e.getMessage());
            assertEquals(Map.of(), ProcSelf.openedSince(fds), "no fd left open");
            assertEquals(0, sys.ramList().blocks().size());
            assertEquals(free, Long.parseLong(Files.readString(FREE_HUGE).trim()), "every huge page is free again");
        } finally {
            hugePages.restore();
        }
    }
}
