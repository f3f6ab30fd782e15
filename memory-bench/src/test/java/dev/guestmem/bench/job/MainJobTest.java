package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

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

    @ParameterizedTest
    @ValueSource(strings = {"host", "soft"})
    void aShortRunChecksEveryProgramAndWritesTheReport(String tlb) throws Exception {
        MainJob.Options options = JobFlags.options(2, 2.0, "16M", "anonymous", tlb, true, null, null);
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
        LiveMigration.Result m = result.migration();
        assertTrue(m.downtimeNanos() > 0 && m.compareNanos() > 0 && m.drainNanos() >= 0 && m.catchUpNanos() >= 0,
                summary.toString());
        assertTrue(m.pausedNanos() >= m.downtimeNanos() + m.drainNanos() + m.compareNanos(),
                "the pause holds the downtime, the destination's last bytes and the comparison: " + summary);
        assertTrue(summary.toString().contains("vCPUs paused           "), summary.toString());
        assertEquals(result.passed(), summary.toString().contains("result:               PASS"));
        assertTrue(summary.toString().contains("TLB " + tlb + " ("), "the summary names the TLB: " + summary);
        assertTrue(result.passed(), summary.toString());

        Path page = JobReport.write(result, dir.resolve("report-" + tlb));
        String html = Files.readString(page);
        assertTrue(html.contains("<h1>guestmem main job: PASS</h1>"), html);
        for (String png : new String[] {"latency.png", "mips.png", "migration.png", "commits.png", "display.png"}) {
            assertTrue(html.contains("src=\"" + png + "\""), png);
            assertPng(page.resolveSibling(png));
        }
    }

    /**
     * A migration that would never end on its own (it waits to be cut off) does not hold the job past its deadline
     * and grace: the job cuts it off and reports it, and the guest checks still decide the result. Without the bound
     * this run would wait for ever; the timeout only turns such a hang into a failure.
     */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void aMigrationThatDoesNotEndInTimeIsCutOffAndReported() throws Exception {
        CountDownLatch cut = new CountDownLatch(1);
        LiveMigration endless = new LiveMigration() {
            @Override
            public String status() {
                return "round 1";
            }

            @Override
            public Result run(dev.guestmem.bench.riscv.RiscvVirtMachine machine, Vm vm) throws InterruptedException {
                cut.await();
                return Result.notRun("cut off at the deadline in round 1, not compared");
            }

            @Override
            public void cancel() {
                cut.countDown();
            }
        };
        MainJob.Options options = new MainJob.Options(1, 0.3, 16 << 20, RamBackend.parse("anonymous"),
                MemoryPath.HOST_TLB, true, null, endless, null);
        JobResult result = MainJob.run(options);
        StringWriter summary = new StringWriter();
        result.printSummary(new PrintWriter(summary));
        assertEquals(0, cut.getCount(), "the job cut the migration off");
        assertTrue(summary.toString().contains("migration rounds       none (cut off at the deadline in round 1"),
                summary.toString());
        assertTrue(summary.toString().contains("migration comparison: not run"), summary.toString());
        assertEquals(result.programsPassed() && result.devices().failures().isEmpty(), result.passed());
    }

    private static void assertPng(Path file) throws IOException {
        BufferedImage image = ImageIO.read(file.toFile());
        assertNotNull(image, file + " is an image");
        assertTrue(image.getWidth() >= 320 && image.getHeight() >= 240, file.toString());
    }
}
