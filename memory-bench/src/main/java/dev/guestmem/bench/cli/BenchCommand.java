package dev.guestmem.bench.cli;

import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.NoBenchmarksException;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.CommandLineOptionException;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Unmatched;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Runs JMH's own command line on the benchmarks of this module; every argument but {@code -h}/{@code --help},
 * {@code -V}/{@code --version} and {@code --baseline} is JMH's (a benchmark regex, {@code -f}, {@code -wi},
 * {@code -p regions=1000}). After JMH's summary it prints {@link ForkSummary}'s table: each fork's score, their
 * median and range, and for each {@code --baseline} each row's median over its baseline's in the same run. Exit
 * codes: 2 for a bad argument (a malformed {@code --baseline}, a bad JMH option, a pattern matching no benchmark), as
 * the other commands give for a bad flag; 1 when JMH fails or a baseline ran nowhere in the run.
 */
@Command(name = "bench", customSynopsis = "guestmem bench [-hV] [--baseline NAME[:PARAM=VALUE,...]]... [JMH-ARGUMENT...]",
        description = {"Run the JMH benchmarks; all other arguments go to JMH (e.g. RenderBenchmark -f 1).",
                "After JMH's summary, a table of each fork's score with their median and range."})
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-h", "--help"}, description = "Show this help message, then JMH's options, and exit.")
    boolean help;

    @Option(names = {"-V", "--version"}, versionHelp = true, description = "Print version information and exit.")
    boolean version;

    @Option(names = "--baseline", paramLabel = "NAME[:PARAM=VALUE,...]",
            description = {"Add a column: each row's median over the median of benchmark NAME (a method name, "
                    + "e.g. limitLoad; * for the row's own) run with the same parameters, or with PARAM at VALUE "
                    + "(e.g. *:clients=0). Repeatable."})
    List<String> baselines = new ArrayList<>();

    @Unmatched
    List<String> jmhArgs = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        if (help) {
            PrintWriter out = spec.commandLine().getOut();
            spec.commandLine().usage(out);
            out.println();
            out.println("JMH's options:");
            out.flush();
            // JMH prints its option list to standard output only.
            new CommandLineOptions("-h").showHelp();
            return 0;
        }
        List<ForkSummary.Baseline> specs = new ArrayList<>();
        try {
            for (String b : baselines) {
                specs.add(ForkSummary.Baseline.parse(b));
            }
        } catch (IllegalArgumentException e) {
            spec.commandLine().getErr().println("guestmem bench: " + e.getMessage());
            return 2; // a bad flag, as for the other commands
        }
        String[] args = jmhArgs.toArray(new String[0]);
        CommandLineOptions options;
        try {
            options = new CommandLineOptions(args);
        } catch (CommandLineOptionException e) {
            spec.commandLine().getErr().println("guestmem bench: " + e.getMessage());
            return 2;
        }
        if (options.shouldHelp() || options.shouldList() || options.shouldListWithParams()
                || options.shouldListProfilers() || options.shouldListResultFormats()) {
            // JMH prints these itself; no benchmark runs.
            org.openjdk.jmh.Main.main(args);
            return 0;
        }
        // JMH forks its measurement JVMs with this JVM's class path, so the tool's class path is all it needs.
        Collection<RunResult> results;
        try {
            results = new Runner(options).run();
        } catch (NoBenchmarksException e) {
            spec.commandLine().getErr().println("guestmem bench: no benchmark matches " + options.getIncludes()
                    + " (./guestmem bench -l lists them)");
            return 2;
        } catch (RunnerException e) {
            spec.commandLine().getErr().println("guestmem bench: "
                    + (e.getMessage() != null ? e.getMessage() : e.toString()));
            return 1;
        }
        ForkSummary summary = ForkSummary.of(results);
        PrintWriter out = spec.commandLine().getOut();
        try {
            String table = summary.table(specs);
            if (!table.isEmpty()) {
                out.println();
                out.print(table);
            }
        } catch (IllegalArgumentException e) {
            out.println(); // the table without the ratios, then what was wrong with them
            out.print(summary.table(List.of()));
            out.flush();
            spec.commandLine().getErr().println("guestmem bench: " + e.getMessage());
            return 1;
        }
        out.flush();
        return 0;
    }
}
