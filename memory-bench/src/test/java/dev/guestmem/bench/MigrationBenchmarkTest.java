package dev.guestmem.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.guestmem.offheap.migration.RamMigration;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link MigrationBenchmark} moves what it says: after a {@code save} operation and after a {@code rawCopy} one, the
 * destination's RAM is the source's, on both transports and both contents.
 */
class MigrationBenchmarkTest {
    @ParameterizedTest
    @CsvSource({"tcp, random", "unix, halfZero"})
    void bothSidesMoveTheWholeRam(String transport, String content) throws Exception {
        MigrationBenchmark b = new MigrationBenchmark();
        b.transport = transport;
        b.content = content;
        b.setup();
        try {
            byte[] source = b.sourceBytes();
            assertEquals("halfZero".equals(content), source[0] == 0 && source[MigrationBenchmark.PAGE] != 0);
            b.save();
            assertEquals(Optional.empty(), RamMigration.compare(b.source.ramList(), b.destination.ramList()));
            b.destinationRam.ramSegment().fill((byte) 0);
            b.rawCopy();
            assertArrayEquals(source, b.destinationBytes());
            b.save(); // the same connection carries the next stream
            assertArrayEquals(source, b.destinationBytes());
        } finally {
            b.tearDown();
        }
    }
}
