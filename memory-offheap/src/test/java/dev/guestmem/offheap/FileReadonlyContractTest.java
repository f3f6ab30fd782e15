package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import java.util.Set;

/** The contract on {@code memory-backend-file,readonly=on}: O_RDONLY, PROT_READ, a read-only region. */
class FileReadonlyContractTest extends FileBackendContract {
    @Override
    protected MemorySystem.RamAllocator backend() {
        return HostMemoryBackend.file(newFile()).offset(OFFSET).readonly(true).build();
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of(RamFlag.READONLY, RamFlag.READONLY_FD, RamFlag.NORESERVE);
    }

    @Override
    protected boolean readonly() {
        return true;
    }

    @Override
    protected byte discardedByte(long offset) {
        return pattern(offset);
    }

    @Override
    protected boolean returnsMemory() {
        return false; // the pages are the file's page cache, which stays
    }
}
