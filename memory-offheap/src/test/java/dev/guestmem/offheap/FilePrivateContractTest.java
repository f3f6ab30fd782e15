package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The contract on {@code memory-backend-file,share=off}: a private copy-on-write mapping of a file opened read-only;
 * guest writes never reach the file, and a discard brings the file's contents back.
 */
class FilePrivateContractTest extends FileBackendContract {
    @Override
    protected MemorySystem.RamAllocator backend() {
        return HostMemoryBackend.file(newFile()).offset(OFFSET).build();
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of(RamFlag.NORESERVE, RamFlag.READONLY_FD);
    }

    @Override
    protected byte discardedByte(long offset) {
        return pattern(offset);
    }

    @Override
    protected boolean returnsMemory() {
        return false; // mincore counts the file's page cache, which a private discard rightly keeps
    }

    @Test
    void guestWritesNeverReachTheFile() throws IOException {
        Path file = newFile();
        byte[] before = Files.readAllBytes(file);
        MemoryRegion ram = sys.ram("cow", SIZE, HostMemoryBackend.file(file).offset(OFFSET).build());
        root.addSubregion(BASE, ram);
        ram.ramSegment().fill((byte) 0x5a);
        assertEquals((byte) 0x5a, ram.ramSegment().get(ValueLayout.JAVA_BYTE, SIZE - 1));
        assertArrayEquals(before, Files.readAllBytes(file));
    }
}
