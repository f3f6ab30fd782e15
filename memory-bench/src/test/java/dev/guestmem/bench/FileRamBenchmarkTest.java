package dev.guestmem.bench;

import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The benchmark compares like with like: both backings hold the same bytes and every path reads and writes them
 * alike, and only the file's RAM takes the guarded paths (its soft TLB misses every access).
 */
class FileRamBenchmarkTest {

    @Test
    void bothBackingsReadAndWriteTheSameBytes() throws IOException {
        FileRamBenchmark bench = new FileRamBenchmark();
        FileRamBenchmark.Guest anonymous = guest("anonymous");
        FileRamBenchmark.Guest file = guest("file");
        try {
            long sum = bench.addressSpaceLoad(anonymous);
            assertNotEquals(0, sum);
            assertEquals(sum, bench.tlbLoad(anonymous));
            assertEquals(sum, bench.addressSpaceLoad(file));
            assertEquals(sum, bench.tlbLoad(file));
            assertEquals(MemTxResult.OK, bench.read4k(file));
            assertEquals(MemTxResult.OK, bench.tlbStore(anonymous));
            assertEquals(MemTxResult.OK, bench.tlbStore(file));
            long stored = bench.addressSpaceLoad(anonymous);
            assertEquals(stored, bench.addressSpaceLoad(file));
            assertEquals(MemTxResult.OK, bench.addressSpaceStore(file));
            assertEquals(stored, bench.tlbLoad(file));
            assertTrue(anonymous.tlb.missCount() <= 256, "anonymous RAM is cached: " + anonymous.tlb.missCount());
            assertEquals(3L * SoftTlbBenchmark.ADDRESSES, file.tlb.missCount(), "file RAM is never cached");
        } finally {
            anonymous.tearDown();
            file.tearDown();
        }
    }

    private static FileRamBenchmark.Guest guest(String backing) throws IOException {
        FileRamBenchmark.Guest g = new FileRamBenchmark.Guest();
        g.backing = backing;
        g.setup();
        return g;
    }
}
