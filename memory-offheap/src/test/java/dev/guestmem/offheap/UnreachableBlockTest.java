package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.MemorySystem;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * RAM whose region is never destroyed is still given back: when the block becomes unreachable (its memory system,
 * regions and views gone), a Cleaner unmaps it and closes the memfd it owns, as memory-core's Arena RAM is closed.
 */
class UnreachableBlockTest {
    /** The memfd's name, as /proc/self/maps and /proc/self/fd show it. */
    private static final String NAME = "memfd:guestmem:abandoned-ram";

    /** Makes RAM in a memory system that nothing keeps. */
    private static void abandonRam() {
        MemorySystem sys = new MemorySystem(HostMemoryBackend.memfd().build());
        sys.ram("abandoned-ram", 4L << 20);
    }

    private static boolean mapped() {
        return ProcSelf.maps().stream().anyMatch(line -> line.contains(NAME));
    }

    private static boolean open() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.anyMatch(fd -> {
                try {
                    return Files.readSymbolicLink(fd).toString().contains(NAME);
                } catch (IOException e) {
                    return false; // the listing's own fd, gone by now
                }
            });
        }
    }

    @Test
    void aBlockNeverDestroyedIsUnmappedAndClosedOnceUnreachable() throws InterruptedException, IOException {
        abandonRam();
        assertTrue(mapped());
        assertTrue(open());
        // Bounded by collections, not by time: each round asks for one and gives the Cleaner's thread a chance.
        for (int round = 0; round < 200 && (mapped() || open()); round++) {
            System.gc();
            Thread.sleep(20);
        }
        assertFalse(mapped(), "unmapped by the Cleaner");
        assertFalse(open(), "its memfd closed");
    }
}
