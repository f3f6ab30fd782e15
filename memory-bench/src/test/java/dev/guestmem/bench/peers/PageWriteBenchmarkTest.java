package dev.guestmem.bench.peers;

import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Every row of {@link PageWriteBenchmark} puts the buffer's 4 KiB at each of the pattern's pages: the raw rows in
 * the raw segment, the guest rows in guest RAM (read back through the address space).
 */
class PageWriteBenchmarkTest {
    @ParameterizedTest
    @ValueSource(ints = {1, 100})
    void everyRowWritesTheBufferAtEveryPage(int regions) {
        PeersBenchmark.Raw raw = new PeersBenchmark.Raw();
        raw.setup();
        PeersBenchmark.Guest guest = new PeersBenchmark.Guest();
        guest.regions = regions;
        guest.setup();
        try {
            PageWriteBenchmark bench = new PageWriteBenchmark();
            MemorySegment page = MemorySegment.ofArray(new byte[PeersPattern.PAGE_SIZE]);
            MemorySegment fromGuest = Arena.ofAuto().allocate(PeersPattern.PAGE_SIZE);
            for (int round = 1; round <= 2; round++) {
                fill(raw.buffer, round);
                fill(guest.map.buffer(), round);
                if (round == 1) {
                    bench.rawCopy(raw);
                    assertEquals(MemTxResult.OK, bench.addressSpaceWrite(guest));
                } else {
                    bench.rawLongs(raw);
                    assertEquals(MemTxResult.OK, bench.rangeCopy(guest));
                }
                fill(page, round);
                for (int i = 0; i < PeersPattern.COPIES; i += 997) {
                    assertEquals(-1, MemorySegment.mismatch(raw.ram, raw.pages[i], raw.pages[i] + PeersPattern.PAGE_SIZE,
                            page, 0, PeersPattern.PAGE_SIZE), "raw page " + i + " round " + round);
                    assertEquals(MemTxResult.OK, guest.map.addressSpace().read(guest.map.pages()[i],
                            MemTxAttrs.UNSPECIFIED, fromGuest, 0, PeersPattern.PAGE_SIZE));
                    assertEquals(-1, fromGuest.mismatch(page), "guest page " + i + " round " + round);
                }
            }
        } finally {
            guest.tearDown();
        }
    }

    private static void fill(MemorySegment s, int round) {
        for (int i = 0; i < PeersPattern.PAGE_SIZE; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7 + round));
        }
    }
}
