package dev.guestmem.bench.peers;

import dev.guestmem.bench.peers.PeersTable.Column;
import dev.guestmem.bench.peers.PeersTable.Row;
import dev.guestmem.memory.SoftTlb;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.CommandLineOptionException;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * {@code ./guestmem peers}: guestmem against its peers in one command. Builds vm-memory's Rust harness first (so that
 * no compiler runs during the measurements), runs {@link PeersBenchmark} through JMH (raw segment, guestmem's
 * address space and soft TLB, Unicorn through FFM), then the harness right after, and prints one {@link PeersTable}
 * with the host's load, the JDK and the settings. A peer that cannot be had (no {@code libunicorn2}, no cargo or
 * vm-memory crate) is reported in the table's cells and notes; the rest is still measured.
 *
 * <p>Threading: one call at a time (JMH runs one benchmark at a time on this machine).
 */
public final class PeersComparison {
    private static final String BENCHMARK = PeersBenchmark.class.getName();

    private PeersComparison() {
    }

    /**
     * Runs the comparison and prints the table to {@code out}.
     *
     * @param jmhArgs JMH's own options for the run ({@code -f}, {@code -wi}, {@code -i}, {@code -w}, {@code -r},
     *                {@code -p regions=100}); the benchmark class is chosen here
     * @param harnessDir the directory of vm-memory's harness ({@code peers/vm-memory-bench})
     * @param harnessSeconds how long the harness times each of its measures, in seconds
     * @return 0 when the table was printed, 2 for bad options
     */
    public static int run(List<String> jmhArgs, Path harnessDir, double harnessSeconds, PrintStream out)
            throws RunnerException {
        CommandLineOptions jmh;
        try {
            jmh = new CommandLineOptions(jmhArgs.toArray(new String[0]));
        } catch (CommandLineOptionException e) {
            out.println("peers: jmhOptions=" + jmhArgs + ": " + e.getMessage());
            return 2;
        }
        if (!jmh.getIncludes().isEmpty()) {
            out.println("peers: includes=" + jmh.getIncludes() + ": the benchmark is chosen by the command; "
                    + "pass only JMH options");
            return 2;
        }
        if (!(harnessSeconds > 0 && harnessSeconds <= 600)) {
            out.println("peers: harnessSeconds=" + harnessSeconds + ": expected more than 0 and at most 600");
            return 2;
        }
        List<Integer> regions = new ArrayList<>(PeersTable.REGIONS);
        if (jmh.getParameter("regions").hasValue()) {
            regions.clear();
            for (String r : jmh.getParameter("regions").get()) {
                Integer n = parseRegions(r);
                if (n == null) {
                    out.println("peers: regions=" + r + ": expected some of " + PeersTable.REGIONS);
                    return 2;
                }
                regions.add(n);
            }
        }

        String loadAtStart = loadAverage();
        PeersTable table = new PeersTable();
        Optional<String> unicornMissing = UnicornEngine.unavailable();
        unicornMissing.ifPresentOrElse(reason -> table.unavailable(Row.UNICORN, reason),
                () -> table.label(Row.UNICORN, "Unicorn " + UnicornEngine.version()
                        + " `uc_mem_read`/`uc_mem_write` (FFM)"));

        VmMemoryHarness harness = VmMemoryHarness.in(harnessDir);
        String harnessMissing = null;
        try {
            harness.build();
        } catch (VmMemoryHarness.HarnessException e) {
            harnessMissing = e.getMessage();
        }

        ChainedOptionsBuilder options = new OptionsBuilder().parent(jmh)
                .include("^" + Pattern.quote(BENCHMARK) + "\\.");
        if (unicornMissing.isPresent()) {
            options.exclude("^" + Pattern.quote(BENCHMARK) + "\\.unicorn");
        }
        Collection<RunResult> results = new Runner(options.build()).run();
        BenchmarkParams settings = null;
        for (RunResult result : results) {
            BenchmarkParams params = result.getParams();
            settings = params;
            String method = params.getBenchmark().substring(BENCHMARK.length() + 1);
            String regionsParam = params.getParam("regions");
            put(table, method, regionsParam == null ? null : Integer.valueOf(regionsParam),
                    result.getPrimaryResult().getScore());
        }

        if (harnessMissing == null) {
            try {
                for (VmMemoryHarness.Measure m : harness.bench(regions, harnessSeconds)) {
                    table.label(Row.VM_MEMORY, "vm-memory " + m.version()
                            + " `read_obj`/`write_obj`, `read_slice`/`write_slice`");
                    Column c = Column.of(m.op());
                    if (c != null) {
                        table.put(Row.VM_MEMORY, c, m.regions(), m.ns());
                    }
                }
            } catch (VmMemoryHarness.HarnessException e) {
                harnessMissing = e.getMessage();
            }
        }
        if (harnessMissing != null) {
            table.unavailable(Row.VM_MEMORY, harnessMissing);
        }

        List<String> hitRates = new ArrayList<>();
        for (int r : PeersTable.REGIONS) {
            hitRates.add(regions.contains(r)
                    ? String.format(Locale.ROOT, "%.1f%%", 100 * PeersBenchmark.softTlbHitRate(r)) : "-");
        }
        table.label(Row.SOFT_TLB, "guestmem `SoftTlb` (" + String.format(Locale.ROOT, "%,d", SoftTlb.DEFAULT_ENTRIES)
                + " entries, hit rate " + String.join(" / ", hitRates) + ")");

        table.note("Finished " + Instant.now().truncatedTo(ChronoUnit.SECONDS) + ", load average " + loadAtStart
                + " at the start and " + loadAverage() + " at the end (1, 5, 15 min), JDK " + Runtime.version()
                + ", " + Runtime.getRuntime().availableProcessors() + " CPUs.");
        if (settings != null) {
            table.note(String.format(Locale.ROOT, "JMH: %d fork(s), %d x %s warm-up, %d x %s measurement per row "
                            + "and region count; vm-memory: one warm-up pass, then passes for %s s per measure.",
                    settings.getForks(), settings.getWarmup().getCount(), settings.getWarmup().getTime(),
                    settings.getMeasurement().getCount(), settings.getMeasurement().getTime(), harnessSeconds));
        }
        out.println();
        out.print(table.render());
        return 0;
    }

    /** Routes the score of JMH method {@code method} to its row and column; unknown methods are left out. */
    static void put(PeersTable table, String method, Integer regions, double ns) {
        for (Row row : Row.values()) {
            if (row.jmhPrefix != null && method.startsWith(row.jmhPrefix)) {
                Column c = Column.of(method.substring(row.jmhPrefix.length()));
                if (c != null) {
                    table.put(row, c, regions, ns);
                }
                return;
            }
        }
    }

    private static Integer parseRegions(String text) {
        try {
            int n = Integer.parseInt(text.trim());
            return PeersTable.REGIONS.contains(n) ? n : null;
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /** The first three fields of {@code /proc/loadavg} (1, 5 and 15 minutes), or "unknown". */
    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f.length >= 3 ? f[0] + " " + f[1] + " " + f[2] : "unknown";
        } catch (IOException e) {
            return "unknown";
        }
    }
}
