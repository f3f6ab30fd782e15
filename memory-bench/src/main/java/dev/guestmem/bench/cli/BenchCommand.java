package dev.guestmem.bench.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Unmatched;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Runs JMH's own command line on the benchmarks of this module; every argument is JMH's (a benchmark regex,
 * {@code -f}, {@code -wi}, {@code -p regions=1000}, {@code -h} for JMH's help).
 */
@Command(name = "bench",
        description = "Run the JMH benchmarks; all arguments go to JMH (e.g. RenderBenchmark -f 1, or -h).")
final class BenchCommand implements Callable<Integer> {
    @Unmatched
    List<String> jmhArgs = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        // JMH forks its measurement JVMs with this JVM's class path, so the tool's class path is all it needs.
        org.openjdk.jmh.Main.main(jmhArgs.toArray(new String[0]));
        return 0;
    }
}
