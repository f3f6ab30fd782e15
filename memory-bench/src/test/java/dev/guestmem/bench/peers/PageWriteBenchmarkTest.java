package dev.guestmem.bench.peers;

import dev.guestmem.memory.BulkCopier;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every row of {@link PageWriteBenchmark} puts the buffer's 4 KiB at each of the pattern's pages: the raw rows in
 * the raw segment (the sized rows at 4 KiB), the guest rows in guest RAM (read back through the address space).
 */
class PageWriteBenchmarkTest {
    @Test
    void theAddressSpaceRowsMeasureMemoryOffheapsCopier() {
        // The benchmark's JVM, like this one, has memory-offheap and native access: AddressSpace.write uses memmove.
        assertTrue(BulkCopier.installed().name().startsWith("memmove"), BulkCopier.installed().name());
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 100})
    void everyRowWritesTheBufferAtEveryPage(int regions) throws Throwable {
        withRows(regions, (raw, guest, bench) -> {
            MemorySegment page = MemorySegment.ofArray(new byte[PeersPattern.PAGE_SIZE]);
            MemorySegment fromGuest = Arena.ofAuto().allocate(PeersPattern.PAGE_SIZE);
            PageWriteBenchmark.Piece piece = new PageWriteBenchmark.Piece();
            piece.size = PeersPattern.PAGE_SIZE;
            for (int round = 1; round <= 6; round++) {
                fill(raw.buffer, round);
                fill(guest.map.buffer(), round);
                switch (round) {
                    case 1 -> bench.rawCopy(raw);
                    case 2 -> bench.rawLongs(raw);
                    case 3 -> bench.rawMemmove(raw, piece);
                    case 4 -> bench.rawCopyPiece(raw, piece);
                    case 5 -> bench.rawMemmoveAddress(raw);
                    default -> bench.copierWrite(raw);
                }
                assertEquals(MemTxResult.OK, round % 2 == 0 ? bench.rangeCopy(guest) : bench.addressSpaceWrite(guest));
                fill(page, round);
                for (int i = 0; i < PeersPattern.COPIES; i += 997) {
                    assertEquals(-1, MemorySegment.mismatch(raw.ram, raw.pages[i], raw.pages[i] + PeersPattern.PAGE_SIZE,
                            page, 0, PeersPattern.PAGE_SIZE), "raw page " + i + " round " + round);
                    assertEquals(MemTxResult.OK, guest.map.addressSpace().read(guest.map.pages()[i],
                            MemTxAttrs.UNSPECIFIED, fromGuest, 0, PeersPattern.PAGE_SIZE));
                    assertEquals(-1, fromGuest.mismatch(page), "guest page " + i + " round " + round);
                }
            }
        });
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 100})
    void everyReadRowLeavesTheLastPageInTheBuffer(int regions) throws Throwable {
        withRows(regions, (raw, guest, bench) -> {
            long lastRaw = raw.pages[PeersPattern.COPIES - 1];
            long lastGuest = guest.map.pages()[PeersPattern.COPIES - 1];
            MemorySegment expected = Arena.ofAuto().allocate(PeersPattern.PAGE_SIZE);
            MemorySegment.copy(raw.ram, lastRaw, expected, 0, PeersPattern.PAGE_SIZE);
            for (int row = 0; row < 3; row++) {
                raw.buffer.fill((byte) 0x5a);
                switch (row) {
                    case 0 -> bench.rawReadCopy(raw);
                    case 1 -> bench.rawReadMemmoveAddress(raw);
                    default -> bench.copierRead(raw);
                }
                assertEquals(-1, raw.buffer.mismatch(expected), "raw read row " + row);
            }
            // The guest's RAM holds the same words at the same offsets counted without holes.
            assertEquals(PeersPattern.initialWord(lastRaw), expected.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0));
            for (int row = 0; row < 3; row++) {
                guest.map.buffer().fill((byte) 0x5a);
                assertEquals(MemTxResult.OK, switch (row) {
                    case 0 -> bench.rangeRead(guest);
                    case 1 -> bench.rangeReadJdk(guest);
                    default -> bench.addressSpaceRead(guest);
                });
                assertEquals(-1, guest.map.buffer().mismatch(expected), "guest read row " + row);
            }
            assertTrue(lastGuest >= lastRaw, "guest-physical addresses count the holes too");
        });
    }

    /** The rows' states, as JMH sets them up, given to {@code rows}; the guest's torn down after. */
    private static void withRows(int regions, Rows rows) throws Throwable {
        PeersBenchmark.Raw raw = new PeersBenchmark.Raw();
        raw.setup();
        PeersBenchmark.Guest guest = new PeersBenchmark.Guest();
        guest.regions = regions;
        guest.setup();
        try {
            rows.run(raw, guest, new PageWriteBenchmark());
        } finally {
            guest.tearDown();
        }
    }

    private interface Rows {
        void run(PeersBenchmark.Raw raw, PeersBenchmark.Guest guest, PageWriteBenchmark bench) throws Throwable;
    }

    private static void fill(MemorySegment s, int round) {
        for (int i = 0; i < PeersPattern.PAGE_SIZE; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7 + round));
        }
    }
}
