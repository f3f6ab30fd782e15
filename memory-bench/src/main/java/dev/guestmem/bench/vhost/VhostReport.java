package dev.guestmem.bench.vhost;

import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code ./guestmem vhost-report}: 4 KiB random and 64 KiB sequential reads of a raw image through Debian's
 * {@code qemu-storage-daemon} as a vhost-user-blk device, over guestmem's front-end into memfd guest RAM (the requests
 * of {@link VhostUserBlkBenchmark}, one in flight), each request's latency recorded in an HdrHistogram; then {@code dd}
 * of the same image with the same block sizes, for scale: with {@code iflag=direct} where the filesystem takes
 * {@code O_DIRECT}, else through the page cache (and the table says which). One table: requests, IOPS, MiB/s, and the
 * daemon's p50, p99, p99.9 and max. {@code dd} reads in sequence and gives no per-request latency; its mean (the
 * inverse of its IOPS) is in the mean column.
 *
 * <p>Not measured: more than one request in flight, writes, and the disk itself for the daemon (the image was just
 * written, so the daemon reads the page cache; {@code dd} with {@code iflag=direct} reads the device).
 *
 * <p>Threading: one thread; the daemon and {@code dd} are child processes, ended before {@link #run} returns.
 */
public final class VhostReport {
    /** Requests before the measured ones, per kind: the JIT and the daemon settle. */
    static final int WARMUP_FRACTION = 10;
    private static final Pattern DD_SUMMARY =
            Pattern.compile("^(\\d+) bytes .* copied, ([0-9.eE+-]+) s,", Pattern.MULTILINE);

    /**
     * One row of the table.
     *
     * @param latencies each request's latency in nanoseconds; null for {@code dd}, which gives none
     */
    public record Row(String name, long requests, long bytes, double seconds, Histogram latencies) {
        /** Requests per second. */
        public double iops() {
            return requests / seconds;
        }

        /** MiB per second. */
        public double mibPerSecond() {
            return bytes / seconds / (1 << 20);
        }
    }

    /**
     * What a report found.
     *
     * @param direct whether {@code dd} could read with {@code O_DIRECT}
     */
    public record Result(long imageBytes, int requests, boolean direct, List<Row> rows) {
    }

    private VhostReport() {
    }

    /**
     * Runs the reads and {@code dd}; the image is {@code imageMiB} MiB of random bytes in a new directory under the
     * temporary directory ({@code java.io.tmpdir}), deleted at the end.
     *
     * @param requests measured requests of each size through the daemon
     */
    public static Result run(int imageMiB, int requests) throws IOException, InterruptedException {
        if (imageMiB < 1 || imageMiB > 65536) {
            throw new IllegalArgumentException("imageMiB=" + imageMiB + ": from 1 to 65536");
        }
        if (requests < 1 || requests > 10_000_000) {
            throw new IllegalArgumentException("requests=" + requests + ": from 1 to 10000000");
        }
        VhostUserBlkBenchmark bench = new VhostUserBlkBenchmark();
        bench.imageBytes = (long) imageMiB << 20;
        bench.setup();
        List<Row> rows = new ArrayList<>();
        boolean direct;
        try {
            rows.add(timed("vhost-user 4 KiB random", requests, 4096, bench::vhostRandom4k));
            rows.add(timed("vhost-user 64 KiB sequential", requests, 65536, bench::vhostSequential64k));
            direct = dd(bench.image, 4096, 1, true) != null;
            for (int bs : new int[] {4096, 65536}) {
                long count = bench.imageBytes / bs;
                Row row = dd(bench.image, bs, count, direct);
                if (row == null) {
                    throw new IllegalStateException("dd=failed image=" + bench.image + " bs=" + bs);
                }
                rows.add(row);
            }
        } finally {
            try {
                bench.tearDown();
            } catch (IOException e) {
                throw new IllegalStateException("dir=" + bench.dir + ": not removed", e);
            }
        }
        return new Result(bench.imageBytes, requests, direct, List.copyOf(rows));
    }

    @FunctionalInterface
    private interface Request {
        int read();
    }

    /** {@code requests} reads of {@code size} bytes after a warm-up, each timed into a histogram (ns). */
    private static Row timed(String name, int requests, int size, Request request) {
        for (int i = 0; i < Math.max(1, requests / WARMUP_FRACTION); i++) {
            check(name, request.read());
        }
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(60), 3);
        long start = System.nanoTime();
        for (int i = 0; i < requests; i++) {
            long t = System.nanoTime();
            int status = request.read();
            h.recordValue(System.nanoTime() - t);
            check(name, status);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return new Row(name, requests, (long) requests * size, seconds, h);
    }

    private static void check(String name, int status) {
        if (status != 0) {
            throw new IllegalStateException("request=" + name + " status=" + status + ": the daemon failed a read");
        }
    }

    /**
     * {@code dd} of {@code count} blocks of {@code bs} bytes of {@code image} to /dev/null, with
     * {@code iflag=direct} when {@code direct}; the row, or null when dd failed (O_DIRECT refused).
     */
    static Row dd(Path image, int bs, long count, boolean direct) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("dd", "if=" + image, "of=/dev/null", "bs=" + bs,
                "count=" + count));
        if (direct) {
            cmd.add("iflag=direct");
        }
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            return null;
        }
        Matcher m = DD_SUMMARY.matcher(out);
        if (!m.find()) {
            throw new IllegalStateException("dd=" + String.join(" ", cmd) + ": no summary line in " + out.strip());
        }
        long bytes = Long.parseLong(m.group(1));
        double seconds = Double.parseDouble(m.group(2));
        String name = "dd bs=" + (bs / 1024) + "k" + (direct ? " iflag=direct" : " (page cache)");
        return new Row(name, bytes / bs, bytes, Math.max(seconds, 1e-9), null);
    }

    /** The table. */
    public static void print(Result r, PrintStream out) {
        out.printf(Locale.ROOT, "guestmem vhost-report: %d MiB raw image, qemu-storage-daemon vhost-user-blk into memfd"
                + " guest RAM, one request in flight, %d requests of each size%n", r.imageBytes() >> 20, r.requests());
        if (!r.direct()) {
            out.println("dd: this filesystem refuses O_DIRECT (iflag=direct), so dd reads through the page cache");
        }
        out.println();
        out.printf(Locale.ROOT, "%-32s %9s %10s %9s %9s %9s %9s %9s %10s%n", "reads", "requests", "IOPS", "MiB/s",
                "mean us", "p50 us", "p99 us", "p99.9 us", "max us");
        for (Row row : r.rows()) {
            Histogram h = row.latencies();
            double mean = h == null ? 1e6 / row.iops() : h.getMean() / 1e3;
            out.printf(Locale.ROOT, "%-32s %9d %10.0f %9.1f %9.1f %9s %9s %9s %10s%n", row.name(), row.requests(),
                    row.iops(), row.mibPerSecond(), mean, us(h, 50), us(h, 99), us(h, 99.9), us(h, 100));
        }
    }

    private static String us(Histogram h, double percentile) {
        return h == null ? "-" : String.format(Locale.ROOT, "%.1f", h.getValueAtPercentile(percentile) / 1e3);
    }
}
