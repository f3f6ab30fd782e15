package dev.guestmem.offheap;

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
 * The contract on {@code memory-backend-file,share=on,offset=64K}: guest writes reach the file, discards punch holes
 * in it; and as {@code pmem=on}, msync makes them durable.
 */
class FileSharedContractTest extends FileBackendContract {
    @Override
    protected MemorySystem.RamAllocator backend() {
        return HostMemoryBackend.file(newFile()).share(true).offset(OFFSET).build();
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of(RamFlag.SHARED, RamFlag.NORESERVE);
    }

    @Test
    void guestWritesReachTheFileAndPmemMsyncsThem() throws IOException {
        Path file = newFile();
        MemoryRegion ram = sys.ram("pmem", SIZE,
                HostMemoryBackend.file(file).share(true).offset(OFFSET).pmem(true).build());
        root.addSubregion(BASE, ram);
        assertEquals(Set.of(RamFlag.SHARED, RamFlag.NORESERVE, RamFlag.NONVOLATILE), ram.ramBlock().flags());
        assertEquals(OFFSET, ram.ramBlock().fdOffset());
        ram.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x2001, 0x0123456789abcdefL);
        ram.msync(0x2001, 8);
        ram.setLog(true, dev.guestmem.memory.DirtyMemoryClient.MIGRATION);
        ram.writeback(0, SIZE);
        byte[] content = Files.readAllBytes(file);
        assertEquals((byte) 0xef, content[(int) OFFSET + 0x2001]);
        assertEquals((byte) 0x01, content[(int) OFFSET + 0x2008]);
        assertEquals(pattern(0x2000), content[(int) OFFSET + 0x2000]);
        assertEquals(0, content[0], "bytes before the offset are not the RAM's");
    }
}
