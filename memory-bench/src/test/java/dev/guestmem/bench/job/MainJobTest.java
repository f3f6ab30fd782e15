package dev.guestmem.bench.job;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A short run of the main job, everything at once on two vCPUs: every guest program that ended passed its checksum
 * and console check, the device thread's changes were all seen, the display took snapshots, the pre-copy migration
 * compared equal byte for byte, and the report holds its page and plots.
 */
class MainJobTest {
    @TempDir
    Path dir;

    @Test
    void aShortRunChecksEveryProgramAndWritesTheReport() throws Exception {
        MainJob.Options options = JobFlags.options(2, 2.0, "16M", "anonymous", true, null, null);
        JobResult result = MainJob.run(options);
        StringWriter summary = new StringWriter();
        result.printSummary(new PrintWriter(summary));

        assertTrue(result.programsPassed(), summary.toString());
        assertTrue(result.count(Vcpus.Outcome.PASSED) >= 1, summary.toString());
        assertTrue(result.devices().failures().isEmpty(), summary.toString());
        assertTrue(result.devices().commits().size() >= 4, summary.toString());
        assertTrue(result.display().snapshots() >= 1, summary.toString());
        assertTrue(result.vcpus().stream().allMatch(v -> v.retired > 0), "every vCPU ran: " + summary);
        assertTrue(result.mmioAccesses() > 0, "the UART and the finisher were used: " + summary);
        assertTrue(result.migration().ran(), summary.toString());
        assertTrue(result.migrationPassed(), "destination equal to the source: " + summary);
        assertTrue(result.migration().rounds() >= 2, "a full round and the paused one: " + summary);
        assertEquals(result.passed(), summary.toString().contains("result:               PASS"));
        assertTrue(result.passed(), summary.toString());

        Path page = JobReport.write(result, dir.resolve("report"));
        String html = Files.readString(page);
        assertTrue(html.contains("<h1>guestmem main job: PASS</h1>"), html);
        for (String png : new String[] {"latency.png", "mips.png", "migration.png", "commits.png", "display.png"}) {
            assertTrue(html.contains("src=\"" + png + "\""), png);
            assertPng(page.resolveSibling(png));
        }
    }

    private static void assertPng(Path file) throws IOException {
        BufferedImage image = ImageIO.read(file.toFile());
        assertNotNull(image, file + " is an image");
        assertTrue(image.getWidth() >= 320 && image.getHeight() >= 240, file.toString());
    }
}
