package dev.guestmem.bench;

import dev.guestmem.memory.AsymmetricFence;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The benchmark measures what it says: {@code clients} clients log the RAM (VGA; VGA, CODE and MIGRATION), the
 * address-space and both TLBs' stores write the bytes the raw baseline writes, and each marks every page it touched for
 * exactly the logging clients, again after a take (the TLBs' fast entries of logged pages re-armed).
 */
class DirtyLoggingBenchmarkTest {
    private static final long WORKING_SET = 1 << 20;
    private static final long PAGES = WORKING_SET >>> SoftTlbBenchmark.PAGE_BITS;

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 3})
    void storesWriteTheRawBytesAndMarkEveryPageForTheLoggingClients(int clients) {
        SoftTlbBenchmark.WorkingSet set = new SoftTlbBenchmark.WorkingSet();
        set.workingSet = WORKING_SET;
        set.setup();
        DirtyLoggingBenchmark.Logged guest = new DirtyLoggingBenchmark.Logged();
        guest.clients = clients;
        guest.fence = AsymmetricFence.installed() == AsymmetricFence.fallback() ? "fallback" : "membarrier";
        guest.setup(set);
        int expectedMask = switch (clients) {
            case 0 -> 0;
            case 1 -> DirtyMemoryClient.VGA.mask();
            default -> DirtyMemoryClient.ALL_MASK;
        };
        assertEquals(expectedMask, guest.ram.dirtyLogMask());

        DirtyLoggingBenchmark bench = new DirtyLoggingBenchmark();
        bench.rawStore(set);
        clearAll(guest.ram);
        assertEquals(MemTxResult.OK, bench.addressSpaceStore(guest));
        assertEquals(-1, MemorySegment.mismatch(set.raw, 0, WORKING_SET, guest.ram.ramSegment(), 0, WORKING_SET));
        assertDirtyPages(guest.ram, expectedMask, "addressSpaceStore");

        SoftTlbBenchmark.fill(guest.ram.ramSegment()); // as before the stores
        assertEquals(MemTxResult.OK, bench.tlbStore(guest));
        assertEquals(-1, MemorySegment.mismatch(set.raw, 0, WORKING_SET, guest.ram.ramSegment(), 0, WORKING_SET));
        assertDirtyPages(guest.ram, expectedMask, "tlbStore");

        SoftTlbBenchmark.fill(guest.ram.ramSegment());
        assertEquals(MemTxResult.OK, bench.hostTlbStore(guest));
        assertEquals(-1, MemorySegment.mismatch(set.raw, 0, WORKING_SET, guest.ram.ramSegment(), 0, WORKING_SET));
        assertDirtyPages(guest.ram, expectedMask, "hostTlbStore");

        // Again, after the takes above: the TLBs' fast entries of logged pages were re-armed, and mark again.
        SoftTlbBenchmark.fill(guest.ram.ramSegment());
        assertEquals(MemTxResult.OK, bench.tlbStore(guest));
        assertDirtyPages(guest.ram, expectedMask, "tlbStore after a take");
        SoftTlbBenchmark.fill(guest.ram.ramSegment());
        assertEquals(MemTxResult.OK, bench.hostTlbStore(guest));
        assertDirtyPages(guest.ram, expectedMask, "hostTlbStore after a take");
        guest.tearDown();
    }

    /** Clears every client's bits of {@code ram} (a new block starts dirty for all of them, as in QEMU). */
    private static void clearAll(MemoryRegion ram) {
        for (DirtyMemoryClient client : DirtyMemoryClient.values()) {
            ram.resetDirty(0, WORKING_SET, client);
        }
    }

    /**
     * Every page of {@code ram} is dirty for the clients in {@code mask} but CODE, and clean for the others; then
     * clears. A store never sets CODE's bits: with them clear every page counts as holding translated code, so the
     * stores are reported to {@code CodeProtection}'s listeners instead (as QEMU's {@code invalidate_and_set_dirty}
     * leaves CODE to the invalidation of translated code).
     */
    private static void assertDirtyPages(MemoryRegion ram, int mask, String path) {
        for (DirtyMemoryClient client : DirtyMemoryClient.values()) {
            long expected = (mask & client.mask() & ~DirtyMemoryClient.CODE.mask()) != 0 ? PAGES : 0;
            assertEquals(expected, ram.snapshotAndClearDirty(0, WORKING_SET, client).dirtyPageCount(),
                    path + " client=" + client);
        }
    }
}
