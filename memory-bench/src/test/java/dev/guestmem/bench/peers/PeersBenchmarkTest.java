package dev.guestmem.bench.peers;

import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.SoftTlb;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The benchmark compares like with like: every row reads the same words at the same addresses (the sum the pattern
 * predicts), the copies move the same pages, the stores leave the same memory behind, and the logged stores mark
 * their pages.
 */
class PeersBenchmarkTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final ValueLayout.OfLong LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest
    @ValueSource(ints = {1, 1000})
    void everyGuestmemRowReadsAndWritesThePatternsWords(int regions) {
        PeersPattern pattern = new PeersPattern(regions);
        PeersBenchmark bench = new PeersBenchmark();
        PeersBenchmark.Raw raw = new PeersBenchmark.Raw();
        raw.setup();
        PeersBenchmark.Guest guest = new PeersBenchmark.Guest();
        guest.regions = regions;
        guest.setup();
        assertEquals(regions, guest.map.addressSpace().flatView().rangeCount(), "one flat range per region");

        long expected = 0;
        for (long offset : PeersPattern.wordOffsets(PeersPattern.SEED)) {
            expected += PeersPattern.initialWord(offset);
        }
        assertNotEquals(0, expected);
        assertEquals(expected, bench.rawRead8(raw));
        assertEquals(expected, bench.addressSpaceRead8(guest));
        assertEquals(expected, bench.softTlbRead8(guest));

        // A copied page holds its own words: the last page of each pass was read into the buffer.
        long last = PeersPattern.pageOffsets(PeersPattern.SEED)[PeersPattern.COPIES - 1];
        assertEquals(pattern.guestAddress(last), guest.map.pages()[PeersPattern.COPIES - 1]);
        bench.rawRead4k(raw);
        bench.addressSpaceRead4k(guest);
        for (int off = 0; off < PeersPattern.PAGE_SIZE; off += 8) {
            assertEquals(PeersPattern.initialWord(last + off), raw.buffer.get(LE, off));
            assertEquals(PeersPattern.initialWord(last + off), guest.map.buffer().get(LE, off));
        }

        assertEquals(MemTxResult.OK, bench.addressSpaceWrite8(guest));
        bench.rawWrite8(raw);
        long stored = bench.rawRead8(raw);
        assertEquals(stored, bench.addressSpaceRead8(guest));
        assertEquals(MemTxResult.OK, bench.softTlbWrite8(guest));
        assertEquals(stored, bench.softTlbRead8(guest));
        assertEquals(MemTxResult.OK, bench.addressSpaceWrite4k(guest));
        bench.rawWrite4k(raw);
        assertEquals(bench.rawRead8(raw), bench.addressSpaceRead8(guest), "the same pages were overwritten");
        assertTrue(guest.map.tlb().missCount() > 0);
        assertEquals(pattern.regions(), guest.map.ram().size());

        guest.tearDown();
        assertTrue(guest.map.system().addressSpaces().isEmpty(), "the map is taken down");
        assertTrue(guest.map.ram().getFirst().isDestroyed(), "its RAM is destroyed, to be freed");
    }

    @ParameterizedTest
    @ValueSource(ints = {1000})
    void loggedStoresMarkTheirPagesForMigration(int regions) {
        PeersBenchmark.LoggedGuest logged = new PeersBenchmark.LoggedGuest();
        logged.regions = regions;
        logged.setup();
        for (MemoryRegion r : logged.map.ram()) {
            r.snapshotAndClearDirty(0, r.size(), DirtyMemoryClient.MIGRATION);
            assertFalse(r.getDirty(0, r.size(), DirtyMemoryClient.MIGRATION), r.name() + " clean after the snapshot");
        }
        PeersBenchmark bench = new PeersBenchmark();
        assertEquals(MemTxResult.OK, bench.addressSpaceWrite8Dirty(logged));
        assertAllWordPagesDirty(new PeersPattern(regions), logged.map);
        for (MemoryRegion r : logged.map.ram()) {
            r.snapshotAndClearDirty(0, r.size(), DirtyMemoryClient.MIGRATION);
        }
        assertEquals(MemTxResult.OK, bench.softTlbWrite8Dirty(logged));
        assertAllWordPagesDirty(new PeersPattern(regions), logged.map);
        logged.tearDown();
    }

    private static void assertAllWordPagesDirty(PeersPattern pattern, PeersBenchmark.GuestMap map) {
        long[] offsets = PeersPattern.wordOffsets(PeersPattern.SEED);
        for (int i = 0; i < offsets.length; i += 997) {
            int r = pattern.regionOf(offsets[i]);
            long inRegion = offsets[i] - pattern.regionOffset(r);
            assertTrue(map.ram().get(r).getDirty(inRegion, 8, DirtyMemoryClient.MIGRATION),
                    "i=" + i + " r=" + r + " offset=" + inRegion);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1000})
    void theSoftTlbOfTheDefaultSizeMostlyMissesOn64MiB(int regions) {
        double hitRate = PeersBenchmark.softTlbHitRate(regions);
        // 1,024 entries of 16,384 pages hit about 1/16 of uniformly random accesses.
        double reach = (double) SoftTlb.DEFAULT_ENTRIES * PeersPattern.PAGE_SIZE / PeersPattern.RAM_SIZE;
        assertEquals(reach, hitRate, 0.01, "hitRate=" + hitRate);
    }

    @ParameterizedTest
    @ValueSource(ints = {1000})
    void unicornReadsAndWritesWhatGuestmemDoes(int regions) {
        Assumptions.assumeTrue(UnicornEngine.unavailable().isEmpty(), () -> UnicornEngine.unavailable().get());
        PeersBenchmark bench = new PeersBenchmark();
        PeersBenchmark.Guest guest = new PeersBenchmark.Guest();
        guest.regions = regions;
        guest.setup();
        PeersBenchmark.Unicorn uc = new PeersBenchmark.Unicorn();
        uc.regions = regions;
        uc.setup();
        try {
            assertEquals(bench.addressSpaceRead8(guest), bench.unicornRead8(uc));
            bench.unicornRead4k(uc);
            bench.addressSpaceRead4k(guest);
            assertEquals(-1, uc.buffer.mismatch(guest.map.buffer()));

            assertEquals(0, bench.unicornWrite8(uc));
            assertEquals(MemTxResult.OK, bench.addressSpaceWrite8(guest));
            assertEquals(bench.addressSpaceRead8(guest), bench.unicornRead8(uc));
            uc.buffer.fill((byte) 0x5a);
            guest.map.buffer().fill((byte) 0x5a);
            assertEquals(0, bench.unicornWrite4k(uc));
            assertEquals(MemTxResult.OK, bench.addressSpaceWrite4k(guest));
            assertEquals(bench.addressSpaceRead8(guest), bench.unicornRead8(uc));
            long page = guest.map.pages()[0];
            assertEquals(0x5a5a_5a5a_5a5a_5a5aL, uc.engine.readLong(page + 8));
            assertEquals(0x5a5a_5a5a_5a5a_5a5aL, guest.map.addressSpace().ldqLe(page + 8, U, null));
        } finally {
            uc.tearDown();
            guest.tearDown();
        }
    }
}
