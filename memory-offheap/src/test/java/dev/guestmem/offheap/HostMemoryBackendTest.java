package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Backend options the contract does not cover: alignment, reserve, and what a backend says it is. */
class HostMemoryBackendTest {
    private final MemorySystem sys = new MemorySystem();
    private final List<MemoryRegion> made = new ArrayList<>();

    @TempDir
    Path dir;

    @AfterEach
    void destroy() {
        made.forEach(MemoryRegion::destroy);
        sys.rcu().barrier();
    }

    private MemoryRegion ram(long size, HostMemoryBackend backend) {
        MemoryRegion mr = sys.ram("ram", size, backend);
        made.add(mr);
        return mr;
    }

    @Test
    void alignPlacesTheMappingOnTheBoundaryAsked() throws IOException {
        for (long align : new long[] {64L << 10, 1L << 30}) {
            long base = ram(1 << 20, HostMemoryBackend.anonymous().align(align).build()).ramSegment().address();
            assertEquals(0, base % align, "align=0x" + Long.toHexString(align));
        }
        Path file = Files.write(dir.resolve("f"), new byte[1 << 20]);
        long base = ram(1 << 20, HostMemoryBackend.file(file).align(32L << 20).build()).ramSegment().address();
        assertEquals(0, base % (32L << 20));
        base = ram(4096, HostMemoryBackend.anonymous().build()).ramSegment().address();
        assertEquals(0, base % (2L << 20), "anonymous RAM is aligned for transparent huge pages by default");
        base = ram(4096, HostMemoryBackend.memfd().build()).ramSegment().address();
        assertEquals(0, base % 4096);
    }

    @Test
    void aDirectoryGetsAnUnlinkedFileOfItsOwnPerRegion() throws IOException {
        HostMemoryBackend inDir = HostMemoryBackend.file(dir).share(true).build();
        MemoryRegion a = ram(1 << 20, inDir);
        MemoryRegion b = ram(1 << 20, inDir);
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count(), "the files are unlinked at once");
        }
        for (MemoryRegion mr : List.of(a, b)) {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/" + mr.getFd())).toString();
            assertTrue(target.startsWith(dir.resolve("guestmem_ram").toString()) && target.endsWith(" (deleted)"),
                    target);
        }
        a.ramSegment().set(ValueLayout.JAVA_LONG, 0, 1);
        assertEquals(0, b.ramSegment().get(ValueLayout.JAVA_LONG, 0), "each region has a file of its own");
        assertEquals(Set.of(RamFlag.SHARED, RamFlag.NORESERVE), a.ramBlock().flags());
    }

    @Test
    void reserveDecidesNoreserve() {
        assertEquals(Set.of(RamFlag.NORESERVE), ram(1 << 20, HostMemoryBackend.anonymous().build()).ramBlock().flags());
        assertEquals(Set.of(), ram(1 << 20, HostMemoryBackend.anonymous().reserve(true).build()).ramBlock().flags());
        assertEquals(Set.of(RamFlag.SHARED),
                ram(1 << 20, HostMemoryBackend.memfd().reserve(true).build()).ramBlock().flags());
    }

    @Test
    void aBackendSaysWhatItIsInQemuTerms() {
        assertEquals("memory-backend-ram share=off reserve=off", HostMemoryBackend.anonymous().build().toString());
        assertEquals("memory-backend-memfd share=on reserve=on hugetlb=on hugetlbsize=0x200000 prealloc=on "
                + "prealloc-threads=2", HostMemoryBackend.memfd().hugetlb(true).prealloc(true).preallocThreads(2)
                .build().toString());
        assertEquals("memory-backend-file mem-path=/x share=on reserve=off readonly=on offset=0x1000 align=0x200000 "
                + "pmem=on", HostMemoryBackend.file(Path.of("/x")).share(true).readonly(true).offset(0x1000)
                .align(2L << 20).pmem(true).build().toString());
        assertEquals("ram-from-fd fd=3 share=on reserve=off", HostMemoryBackend.fd(3).build().toString());
    }
}
