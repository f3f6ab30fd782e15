package dev.guestmem.bench.cli;

import dev.guestmem.bench.peers.PeersComparison;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Unmatched;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code ./guestmem peers}: guestmem's access path against Unicorn and vm-memory on the peers' pattern
 * ({@link PeersComparison}). Every argument other than its own options is JMH's.
 */
@Command(name = "peers",
        description = "Compare guestmem with Unicorn and vm-memory (JMH, then vm-memory's Rust harness, one table); "
                + "other arguments go to JMH (-f, -wi, -i, -w, -r, -p regions=100).")
final class PeersCommand implements Callable<Integer> {
    /** Where the launcher says the repository is; the harness is under it. */
    static final String ROOT_PROPERTY = "guestmem.root";

    @Option(names = "--harness", paramLabel = "DIR",
            description = "vm-memory's harness (default: peers/vm-memory-bench in the repository)")
    Path harness;

    @Option(names = "--harness-seconds", paramLabel = "S", defaultValue = "1",
            description = "seconds the harness times each measure (default: ${DEFAULT-VALUE})")
    double harnessSeconds;

    @Unmatched
    List<String> jmhArgs = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        Path dir = harness;
        if (dir == null) {
            dir = Path.of(System.getProperty(ROOT_PROPERTY, ".")).resolve("peers/vm-memory-bench");
        }
        return PeersComparison.run(jmhArgs, dir, harnessSeconds, System.out);
    }
}
