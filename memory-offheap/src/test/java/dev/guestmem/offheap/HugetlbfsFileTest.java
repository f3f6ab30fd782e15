package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code memory-backend-file,mem-path=/hugetlbfs/...}: a file on hugetlbfs gets that file system's huge pages,
 * reported by {@code pageSize()}, and offsets and sizes must be whole huge pages. The test mounts a hugetlbfs of its
 * own (as root) and reserves pages for it; skipped, with the reason printed, where the host refuses either.
 */
class HugetlbfsFileTest {
    private static final long HUGE = 2L << 20;

    @TempDir
    Path dir;

    private static int run(String... command) throws IOException, InterruptedException {
        return new ProcessBuilder(command).inheritIO().start().waitFor();
    }

    @Test
    void aFileOnHugetlbfsGetsHugePages() throws IOException, InterruptedException {
        HugePages hugePages = new HugePages();
        String refused = hugePages.reserve(4);
        Path mount = Files.createDirectory(dir.resolve("hugetlbfs"));
        if (refused == null && run("mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", mount.toString()) != 0) {
            refused = "mount -t hugetlbfs failed";
        }
        if (refused != null) {
            System.out.println("HugetlbfsFileTest skipped: " + refused);
            hugePages.restore();
        }
        assumeTrue(refused == null, refused);
        MemorySystem sys = new MemorySystem();
        MemoryRegion ram = null;
        try {
            Path file = mount.resolve("guest.ram");
            ram = sys.ram("huge", 2 * HUGE,
                    HostMemoryBackend.file(file).share(true).create(true).offset(HUGE).build());
            assertEquals(HUGE, ram.ramBlock().pageSize());
            assertEquals(Set.of(RamFlag.SHARED, RamFlag.NORESERVE), ram.ramBlock().flags());
            assertEquals(3 * HUGE, Files.size(file));
            ram.ramSegment().set(ValueLayout.JAVA_LONG, 2 * HUGE - 8, 77);
            assertEquals(HUGE, ProcSelf.residentBytes(ram.ramSegment()), "one 8-byte write, one whole huge page");

            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> sys.ram("unaligned",
                    HUGE, HostMemoryBackend.file(file).share(true).offset(0x1000).build()));
            assertEquals("region=unaligned backend=memory-backend-file path=" + file + " offset=0x1000 "
                    + "pageSize=0x200000: the offset must be a multiple of the page size", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> sys.ram("odd", HUGE + 0x1000,
                    HostMemoryBackend.file(file).share(true).create(true).offset(2 * HUGE).build()));
            assertEquals("region=odd backend=memory-backend-file path=" + file + " size=0x201000 "
                    + "pageSize=0x200000: huge page memory must be a multiple of the page size", e.getMessage());
            assertEquals(3 * HUGE, Files.size(file), "a refused request does not grow the file");
            MemoryRegion inMount = sys.ram("in-mount", HUGE, HostMemoryBackend.file(mount).share(true).build());
            assertEquals(HUGE, inMount.ramBlock().pageSize(), "a file made in the mount, as QEMU's mem-path=DIR");
            inMount.destroy();
        } finally {
            if (ram != null) {
                ram.destroy();
                sys.rcu().barrier(); // unmapped and closed, so the file system can be unmounted
            }
            run("umount", mount.toString());
            hugePages.restore();
        }
    }
}
