package dev.guestmem.bench.vhost;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The report on a small image: every request through the daemon is in its histogram, dd read the whole image at both
 * block sizes, the table has the four rows with their figures, and the image's directory is gone afterwards.
 */
class VhostReportTest {

    @Test
    void aShortReportHasEveryRequestAndDdOfTheWholeImage() throws Exception {
        VhostReport.Result r = VhostReport.run(2, 40);
        assertEquals(2L << 20, r.imageBytes());
        assertEquals(4, r.rows().size());
        for (int i = 0; i < 2; i++) {
            VhostReport.Row row = r.rows().get(i);
            assertEquals(40, row.requests(), row.name());
            assertEquals(40, row.latencies().getTotalCount(), row.name() + ": one latency per request");
            assertTrue(row.latencies().getValueAtPercentile(50) > 0, row.name());
            assertTrue(row.latencies().getMaxValue() >= row.latencies().getValueAtPercentile(99.9), row.name());
        }
        assertEquals(40L * 4096, r.rows().get(0).bytes());
        assertEquals(40L * 65536, r.rows().get(1).bytes());
        VhostReport.Row dd4k = r.rows().get(2);
        VhostReport.Row dd64k = r.rows().get(3);
        assertNull(dd4k.latencies());
        assertEquals(512, dd4k.requests());
        assertEquals(32, dd64k.requests());
        assertEquals(2L << 20, dd4k.bytes(), "dd read the whole image");
        assertEquals(2L << 20, dd64k.bytes());
        assertTrue(dd4k.name().startsWith("dd bs=4k"), dd4k.name());
        assertTrue(dd4k.name().endsWith(r.direct() ? " iflag=direct" : " (page cache)"), dd4k.name());

        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        VhostReport.print(r, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        String table = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(table.contains("vhost-user 4 KiB random                 40"), table);
        assertTrue(table.contains("vhost-user 64 KiB sequential            40"), table);
        assertTrue(table.contains("p99.9 us"), table);
        assertEquals(r.direct(), !table.contains("refuses O_DIRECT"), table);
        try (var left = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().startsWith("guestmem-vhost-bench")
                    && Files.exists(p.resolve("disk.img"))), "the image is deleted");
        }
    }

    @Test
    void badSizesAreOneLine() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> VhostReport.run(0, 10));
        assertEquals("imageMiB=0: from 1 to 65536", e.getMessage());
    }
}
