package dev.guestmem.bench.cli;

import dev.guestmem.bench.vhost.VhostReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

/**
 * {@code ./guestmem vhost-report} ({@link VhostReport}): reads through qemu-storage-daemon as a vhost-user-blk device,
 * latencies in HdrHistograms, beside {@code dd} of the same image. Exit codes: 0 done, 1 the daemon or dd failed or
 * is missing, 2 bad flags.
 */
@Command(name = "vhost-report", mixinStandardHelpOptions = true, sortOptions = false,
        description = "4 KiB random and 64 KiB sequential reads through qemu-storage-daemon (vhost-user-blk) into "
                + "guest RAM, each latency in an HdrHistogram, beside dd of the same image; one table.")
final class VhostReportCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--image-mib", paramLabel = "N", defaultValue = "64",
            description = "Size of the raw image in MiB, 1 to 65536 (default: ${DEFAULT-VALUE}).")
    int imageMiB;

    @Option(names = "--requests", paramLabel = "N", defaultValue = "5000",
            description = "Measured requests of each size, after a tenth as many for warm-up (default: "
                    + "${DEFAULT-VALUE}).")
    int requests;

    @Override
    public Integer call() throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        if (imageMiB < 1 || imageMiB > 65536 || requests < 1 || requests > 10_000_000) {
            err.println("guestmem vhost-report: imageMib=" + imageMiB + " requests=" + requests
                    + ": the image is 1 to 65536 MiB, the requests 1 to 10000000");
            err.flush();
            return 2;
        }
        VhostReport.Result result;
        try {
            result = VhostReport.run(imageMiB, requests);
        } catch (IllegalStateException e) {
            err.println("guestmem vhost-report: " + e.getMessage());
            err.flush();
            return 1;
        }
        VhostReport.print(result, System.out);
        System.out.flush();
        return 0;
    }
}
