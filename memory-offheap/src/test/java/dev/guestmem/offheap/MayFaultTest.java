package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.internal.linux.Linux;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which backends' memory a truncation by another process can take away (and so take memory-core's guarded paths),
 * and that file RAM truncated under the guest gives {@link MemTxResult#ERROR} through the access path and the soft
 * TLB, not an exception.
 */
class MayFaultTest {
    private static final long SIZE = 1 << 20;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @TempDir
    Path dir;

    private final MemorySystem system = new MemorySystem();

    private boolean mayFault(HostMemoryBackend backend) {
        MemoryRegion ram = system.ram("ram", SIZE, backend);
        try {
            return ((MappedRamBlock) ram.ramBlock()).mayFault();
        } finally {
            ram.destroy();
        }
    }

    @Test
    void anonymousMemoryAndSealedMemfdsNeverFaultFilesAndUnsealedMemfdsMay() {
        assertFalse(mayFault(HostMemoryBackend.anonymous().build()));
        assertFalse(mayFault(HostMemoryBackend.anonymous().share(true).build()));
        assertFalse(mayFault(HostMemoryBackend.memfd().build()), "sealed against shrinking");
        assertTrue(mayFault(HostMemoryBackend.memfd().seal(false).build()));
        assertTrue(mayFault(HostMemoryBackend.file(dir.resolve("shared")).share(true).create(true).build()));
        assertTrue(mayFault(HostMemoryBackend.file(dir.resolve("private")).create(true).build()),
                "a private mapping faults on the pages it has not copied");
    }

    @Test
    void aCallersFdFaultsUnlessItIsSealedAgainstShrinking() {
        int unsealed = Linux.memfdCreate("unsealed", Linux.MFD_CLOEXEC | Linux.MFD_ALLOW_SEALING);
        int sealed = Linux.memfdCreate("sealed", Linux.MFD_CLOEXEC | Linux.MFD_ALLOW_SEALING);
        try {
            Linux.ftruncate(unsealed, SIZE);
            Linux.ftruncate(sealed, SIZE);
            Linux.fcntl(sealed, Linux.F_ADD_SEALS, Linux.F_SEAL_SHRINK);
            assertTrue(mayFault(HostMemoryBackend.fd(unsealed).build()));
            assertFalse(mayFault(HostMemoryBackend.fd(sealed).build()));
        } finally {
            Linux.close(unsealed);
            Linux.close(sealed);
        }
    }

    @Test
    void fileRamTruncatedUnderTheGuestIsAnErrorNotAnException() throws IOException {
        Path file = dir.resolve("guest.img");
        MemoryRegion ram = system.ram("file-ram", SIZE, HostMemoryBackend.file(file).share(true).create(true).build());
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        root.addSubregion(0x4000_0000L, ram);
        AddressSpace as = system.addressSpace("memory", root);
        SoftTlb tlb = new SoftTlb(as, 64, U);
        long kept = 0x4000_0000L + 0x1000;
        long lost = 0x4000_0000L + SIZE - 0x1000;
        as.stqLe(kept, 0x1122334455667788L, U);
        as.stqLe(lost, 0x0102030405060708L, U);

        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(SIZE / 2);
        }

        int[] result = new int[1];
        assertEquals(0x1122334455667788L, as.ldqLe(kept, U, result));
        assertEquals(MemTxResult.OK, result[0]);
        as.ldqLe(lost, U, result);
        assertEquals(MemTxResult.ERROR, result[0], "the page past the end of the file");
        assertEquals(MemTxResult.ERROR, as.stqLe(lost, 1, U));
        assertEquals(0x1122334455667788L, tlb.ldqLe(kept));
        assertEquals(MemTxResult.OK, tlb.takeResult());
        tlb.ldqLe(lost);
        assertEquals(MemTxResult.ERROR, tlb.takeResult());
    }
}
