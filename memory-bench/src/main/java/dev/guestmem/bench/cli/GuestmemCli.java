package dev.guestmem.bench.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/**
 * The {@code ./guestmem} tool: the main job ({@code run}), QEMU-compatible dumps of machine maps ({@code mtree},
 * {@code import-qemu}), the benchmarks ({@code bench}), the peer comparison ({@code peers}) and the vhost-user read
 * report ({@code vhost-report}). The launcher script
 * adds {@code test}, which is Maven's.
 *
 * <p>Exit codes: 0 success, 1 the job failed, 2 bad usage.
 */
@Command(name = "guestmem", mixinStandardHelpOptions = true, versionProvider = GuestmemCli.Version.class,
        description = "QEMU's memory API for the JVM: region trees, flat views, info mtree.",
        subcommands = {RunCommand.class, MtreeCommand.class, ImportQemuCommand.class, BenchCommand.class,
                PeersCommand.class, VhostReportCommand.class, CommandLine.HelpCommand.class})
public final class GuestmemCli {

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The configured command line, for tests that run the tool in-process. */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new GuestmemCli());
        // Every command answers -V with the tool's version (picocli prints nothing without a provider).
        for (CommandLine sub : cli.getSubcommands().values()) {
            sub.getCommandSpec().versionProvider(new Version());
        }
        return cli;
    }

    /** The version of the project this tool was built from (Maven's project version, filtered in at build time). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() throws IOException {
            Properties p = new Properties();
            try (InputStream in = GuestmemCli.class.getResourceAsStream("version.properties")) {
                if (in == null) {
                    throw new IOException("version.properties is missing from the tool's class path");
                }
                p.load(in);
            }
            return new String[] {"guestmem " + p.getProperty("version"),
                    "Java " + Runtime.version() + " (" + System.getProperty("java.vm.name") + ")"};
        }
    }
}
