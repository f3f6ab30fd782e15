package dev.guestmem.bench.cli;

import org.openjdk.jmh.runner.options.CommandLineOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Unmatched;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Runs JMH's own command line on the benchmarks of this module; every argument but {@code -h}/{@code --help} and
 * {@code -V}/{@code --version} is JMH's (a benchmark regex, {@code -f}, {@code -wi}, {@code -p regions=1000}).
 */
@Command(name = "bench", customSynopsis = "guestmem bench [-hV] [JMH-ARGUMENT...]",
        description = "Run the JMH benchmarks; all other arguments go to JMH (e.g. RenderBenchmark -f 1).")
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-h", "--help"}, description = "Show this help message, then JMH's options, and exit.")
    boolean help;

    @Option(names = {"-V", "--version"}, versionHelp = true, description = "Print version information and exit.")
    boolean version;

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
        // JMH forks its measurement JVMs with this JVM's class path, so the tool's class path is all it needs.
        org.openjdk.jmh.Main.main(jmhArgs.toArray(new String[0]));
        return 0;
    }
}
