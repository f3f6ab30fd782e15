package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A report, not a measurement that can fail: 4 KiB and 64 KiB virtio-blk reads through qemu-storage-daemon into
 * memfd guest RAM, one request in flight, latencies in an HdrHistogram, beside {@code dd} of the same image (from
 * the page cache) for scale. Printed and written to {@code target/vhost-user-throughput.txt}; what it asserts is
 * that every sampled read brought the image's bytes. {@code -Dguestmem.vhost.reads=N} sets the reads per size.
 */
class VhostUserThroughputReportTest {
    private static final int IMAGE_MIB = 16;
    private static final int READS = Integer.getInteger("guestmem.vhost.reads", 2000);
    private static final int WARMUP = 200;

    @TempDir
    Path tmp;

    @Test
    void readsThroughTheDaemon() throws IOException, InterruptedException {
        byte[] contents = new byte[IMAGE_MIB << 20];
        new SplittableRandom(12).nextBytes(contents);
        Path image = Files.write(tmp.resolve("disk.img"), contents);
        StringBuilder report = new StringBuilder(String.format(Locale.ROOT,
                "vhost-user-blk reads, qemu-storage-daemon %s, image %d MiB (page cache), one request in flight,"
                        + " %d reads per size after %d warm-up%n",
                daemonVersion(), IMAGE_MIB, READS, WARMUP));
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image);
             VhostUserBlkTest.Guest g = new VhostUserBlkTest.Guest(daemon.socket(),
                     VhostUserFrontend.PROTOCOL_F_REPLY_ACK | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS, 0)) {
            for (int size : new int[] {4096, 65536}) {
                report.append(measure(g, contents, size)).append(System.lineSeparator());
            }
        }
        for (int size : new int[] {4096, 65536}) {
            report.append(dd(image, size)).append(System.lineSeparator());
        }
        System.out.print(report);
        Files.writeString(Path.of("target", "vhost-user-throughput.txt"), report);
    }

    private static String measure(VhostUserBlkTest.Guest g, byte[] contents, int size) {
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
        SplittableRandom random = new SplittableRandom(size);
        int sectors = contents.length / VhostUserBlkTest.SECTOR;
        int perRead = size / VhostUserBlkTest.SECTOR;
        long dst = 0x10000;
        long bytes = 0;
        long start = 0;
        for (int i = 0; i < WARMUP + READS; i++) {
            if (i == WARMUP) {
                start = System.nanoTime();
            }
            long sector = (long) random.nextInt(sectors / perRead) * perRead;
            long t0 = System.nanoTime();
            assertEquals(0, g.request(VhostUserBlkTest.T_IN, sector, 0x1000, dst, size, true));
            long t1 = System.nanoTime();
            if (i >= WARMUP) {
                h.recordValue(t1 - t0);
                bytes += size;
            }
            if (i % 64 == 0) {
                int at = (int) sector * VhostUserBlkTest.SECTOR;
                assertArrayEquals(Arrays.copyOfRange(contents, at, at + size), g.read(dst, size));
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return String.format(Locale.ROOT,
                "  %2d KiB vhost-user: %8.1f MiB/s %8.0f IOPS  latency us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f"
                        + " max %.1f",
                size / 1024, bytes / seconds / (1 << 20), READS / seconds, us(h, 50), us(h, 90), us(h, 99),
                us(h, 99.9), h.getMaxValue() / 1e3);
    }

    private static double us(Histogram h, double percentile) {
        return h.getValueAtPercentile(percentile) / 1e3;
    }

    /** {@code dd} of the whole image in blocks of {@code size}, its own summary line. */
    private static String dd(Path image, int size) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(List.of("dd", "if=" + image, "of=/dev/null", "bs=" + size))
                .redirectInput(QemuStorageDaemon.NO_INPUT).redirectErrorStream(true).start();
        String out = output(p);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, out);
        List<String> lines = out.strip().lines().toList();
        return String.format(Locale.ROOT, "  %2d KiB dd (page cache, sequential): %s", size / 1024, lines.getLast());
    }

    /** All a process prints; its pipe closed here, not later on the JDK's reaper thread. */
    private static String output(Process p) throws IOException {
        try (var stream = p.getInputStream()) {
            return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static String daemonVersion() throws IOException, InterruptedException {
        Process p = new ProcessBuilder(QemuStorageDaemon.executable().toString(), "--version")
                .redirectInput(QemuStorageDaemon.NO_INPUT).redirectErrorStream(true).start();
        String out = output(p);
        p.waitFor(30, TimeUnit.SECONDS);
        return out.lines().findFirst().orElse("?").replace("qemu-storage-daemon version ", "");
    }
}
