package dev.guestmem.bench.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code ./guestmem} tool: the main job ({@code run}), QEMU-compatible dumps of machine maps ({@code mtree},
 * {@code import-qemu}), the benchmarks ({@code bench}) and the peer comparison ({@code peers}). The launcher script
 * adds {@code test}, which is Maven's.
 *
 * <p>Exit codes: 0 success, 1 the job failed, 2 bad usage.
 */
@Command(name = "guestmem", mixinStandardHelpOptions = true, versionProvider = GuestmemCli.Version.class,
        description = "QEMU's memory API for the JVM: region trees, flat views, info mtree.",
        subcommands = {RunCommand.class, MtreeCommand.class, ImportQemuCommand.class, BenchCommand.class,
                PeersCommand.class, CommandLine.HelpCommand.class})
public final class GuestmemCli {

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The configured command line, for tests that run the tool in-process. */
    public static CommandLine commandLine() {
        return new CommandLine(new GuestmemCli());
    }

    /** The version of the memory-bench jar, or "dev" when run from classes. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = GuestmemCli.class.getPackage().getImplementationVersion();
            return new String[] {"guestmem " + (v == null ? "dev" : v)};
        }
    }
}
