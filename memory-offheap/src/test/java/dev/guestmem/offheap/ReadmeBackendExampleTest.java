package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs README.md's backend example, the code between the markers below; memory-bench's {@code ReadmeExampleTest}
 * checks that the README shows it verbatim.
 */
class ReadmeBackendExampleTest {
    @TempDir
    Path dir;

    @Test
    void theExampleRuns() throws IOException {
        byte[] rom = new byte[64 << 10];
        rom[1] = (byte) 0xaa;
        Path image = Files.write(dir.resolve("firmware.bin"), rom);
        // README example begin
        // memory-backend-ram: lazily zeroed; 64 GiB costs only the pages the guest touches
        MemorySystem system = new MemorySystem(HostMemoryBackend.anonymous().build());
        MemoryRegion pcRam = system.ram("pc.ram", 64L << 30);

        // memory-backend-memfd: sealed (it cannot shrink or grow), its fd can go to another process
        MemoryRegion shared = system.ram("shared", 16 << 20, HostMemoryBackend.memfd().build());
        // memory_region_init_ram_from_fd: the caller's fd (here the memfd again), never closed by the block
        MemoryRegion sameMemory = system.ram("peer-view", 16 << 20, HostMemoryBackend.fd(shared.getFd()).build());

        // memory-backend-file,share=on,pmem=on: writes reach the file, writeback msyncs them
        MemoryRegion nvdimm = system.ram("nvdimm", 16 << 20,
                HostMemoryBackend.file(dir.resolve("nvdimm.img")).share(true).create(true).pmem(true).build());
        // memory-backend-file,readonly=on: O_RDONLY, PROT_READ, a read-only region
        MemoryRegion firmware = system.ram("firmware", 64 << 10, HostMemoryBackend.file(image).readonly(true).build());

        // prealloc=on,prealloc-threads=4: every page resident before the guest starts
        MemoryRegion pinned = system.ram("pinned", 32 << 20,
                HostMemoryBackend.anonymous().prealloc(true).preallocThreads(4).build());

        // ram_block_discard_range: the memory goes back to the host and reads as zeros again
        ((AbstractRamBlock) pcRam.ramBlock()).discardRange(0, 2 << 20);
        // README example end

        shared.ramSegment().set(ValueLayout.JAVA_LONG, 8, 42);
        assertEquals(42, sameMemory.ramSegment().get(ValueLayout.JAVA_LONG, 8), "two mappings of one memfd");
        nvdimm.ramSegment().set(ValueLayout.JAVA_BYTE, 3, (byte) 7);
        nvdimm.msync(0, 4096);
        assertEquals(7, Files.readAllBytes(dir.resolve("nvdimm.img"))[3]);
        assertTrue(nvdimm.ramBlock().flags().contains(RamFlag.NONVOLATILE));
        assertTrue(firmware.isReadonly());
        assertEquals((byte) 0xaa, firmware.ramSegment().get(ValueLayout.JAVA_BYTE, 1));
        assertEquals(32 << 20, ProcSelf.residentBytes(pinned.ramSegment()));
        assertEquals(0, pcRam.ramSegment().get(ValueLayout.JAVA_LONG, 0));
        for (MemoryRegion mr : List.of(pcRam, shared, sameMemory, nvdimm, firmware, pinned)) {
            mr.destroy();
        }
        system.rcu().barrier();
    }
}
