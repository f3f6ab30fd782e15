package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A shared file that another process truncates under the guest's RAM: the lost pages fault with SIGBUS, which the JVM
 * turns into an {@link InternalError} for segment accesses; the backend's own operations (discard, msync, free) make
 * no native access to the memory and carry on. The JVM survives all of it.
 */
class TruncatedFileTest {
    private static final long SIZE = 1L << 20;

    @TempDir
    Path dir;

    @Test
    void aFileTruncatedByAnotherProcessNeverKillsTheJvm() throws Exception {
        MemorySystem sys = new MemorySystem();
        Path file = dir.resolve("victim.ram");
        MemoryRegion ram = sys.ram("victim", SIZE, HostMemoryBackend.file(file).share(true).create(true).build());
        MemorySegment seg = ram.ramSegment();
        seg.set(ValueLayout.JAVA_LONG, SIZE - 8, 1);
        Process truncate = new ProcessBuilder("truncate", "-s", "4096", file.toString()).inheritIO().start();
        assertEquals(true, truncate.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, truncate.exitValue());
        assertEquals(4096, Files.size(file));

        seg.set(ValueLayout.JAVA_LONG, 0, 5); // the first page is still in the file
        assertEquals(5, seg.get(ValueLayout.JAVA_LONG, 0));
        assertThrows(InternalError.class, () -> seg.get(ValueLayout.JAVA_LONG, SIZE - 8), "a read past the end");
        assertThrows(InternalError.class, () -> seg.set(ValueLayout.JAVA_LONG, SIZE / 2, 3), "a write past the end");
        assertThrows(InternalError.class, () -> seg.asSlice(0, SIZE).fill((byte) 1), "a bulk fill across the end");

        AbstractRamBlock block = (AbstractRamBlock) ram.ramBlock();
        block.discardRange(0, SIZE); // hole punching past the end of a file is no error
        ram.msync(0, SIZE);
        assertEquals(0, seg.get(ValueLayout.JAVA_LONG, 0), "the discarded first page reads as zeros");
        int fd = block.fd();
        ram.destroy();
        sys.rcu().barrier();
        assertEquals(false, ProcSelf.isOpen(fd));
        assertThrows(IllegalStateException.class, () -> seg.get(ValueLayout.JAVA_LONG, 0));
    }
}
