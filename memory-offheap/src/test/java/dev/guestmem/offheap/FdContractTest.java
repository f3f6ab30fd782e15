package dev.guestmem.offheap;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamFlag;
import dev.guestmem.offheap.internal.linux.Linux;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;

/**
 * The contract on {@code memory_region_init_ram_from_fd}: an fd the test owns (a memfd it made), which freeing the
 * RAM must leave open.
 */
class FdContractTest extends RamBackendContract {
    private final List<Integer> fds = new ArrayList<>();

    @Override
    protected MemorySystem.RamAllocator backend() {
        int fd = Linux.memfdCreate("fd-contract", Linux.MFD_CLOEXEC);
        fds.add(fd);
        Linux.ftruncate(fd, SIZE);
        return HostMemoryBackend.fd(fd).build();
    }

    @AfterEach
    void closeFds() {
        for (int fd : fds) {
            Linux.close(fd);
        }
    }

    @Override
    protected Set<RamFlag> expectedFlags() {
        return Set.of(RamFlag.SHARED, RamFlag.NORESERVE);
    }

    @Override
    protected boolean mayFault() {
        return true;
    }

    @Override
    protected boolean hasFd() {
        return true;
    }

    @Override
    protected boolean ownsFd() {
        return false;
    }
}
