package dev.guestmem.bench.cli;

import dev.guestmem.bench.job.JobFlags;
import dev.guestmem.bench.job.JobReport;
import dev.guestmem.bench.job.JobResult;
import dev.guestmem.bench.job.MainJob;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * The main job ({@link MainJob}): the RISC-V virt machine running the guest programs on several vCPUs while a display,
 * a device thread, a live migration and optionally a vhost-user disk work on it; prints a summary table and writes the
 * HTML report. Exit codes: 0 every check passed, 1 a guest check, device check, disk check or the migration's
 * comparison failed (or the job could not run), 2 bad flags.
 */
@Command(name = "run", mixinStandardHelpOptions = true, sortOptions = false,
        description = "The main job: the RISC-V virt machine runs the guest programs on N vCPUs while a display, "
                + "a device thread, a live migration and (--disk) a vhost-user disk work on it; then a summary "
                + "table and an HTML report with plots.")
final class RunCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--vcpus", paramLabel = "N", description = "vCPU threads, 1 to 32 (default: the cores).")
    Integer vcpus;

    @Option(names = "--seconds", paramLabel = "S", defaultValue = "10",
            description = "How long the guest programs keep coming, 0.1 to 3600 (default: ${DEFAULT-VALUE}).")
    double seconds;

    @Option(names = "--ram", paramLabel = "SIZE", defaultValue = "64M",
            description = "Guest RAM, with a K, M or G suffix: 8M to 2G, whole 4 KiB pages (default: ${DEFAULT-VALUE}).")
    String ram;

    @Option(names = "--ram-backend", paramLabel = "KIND", description = "Where guest RAM comes from: anonymous, "
            + "memfd, file:DIR (a shared file in DIR), arena (default: anonymous; memfd with --disk).")
    String ramBackend;

    @Option(names = "--tlb", paramLabel = "KIND", description = "The vCPUs' soft TLB: host (the fast HostTlb, inside "
            + "each vCPU's RCU read-side section) or soft (the checked SoftTlb) (default: host).")
    String tlb;

    @Option(names = "--no-migrate", description = "No live migration.")
    boolean noMigrate;

    @Option(names = "--disk", paramLabel = "IMG", description = "A raw disk image, served read-only by "
            + "qemu-storage-daemon as a vhost-user-blk device that reads into guest RAM (needs memfd or file RAM).")
    Path disk;

    @Option(names = "--report", paramLabel = "DIR", description = "Where the HTML report goes (default: "
            + "memory-bench/target/guestmem-run).")
    Path report;

    @Override
    public Integer call() throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        MainJob.Options options;
        try {
            options = JobFlags.options(vcpus, seconds, ram, ramBackend, tlb, !noMigrate, disk, System.err);
        } catch (IllegalArgumentException e) {
            err.println("guestmem run: " + e.getMessage());
            err.flush();
            return 2;
        }
        Path dir = report == null ? JobReport.defaultDirectory() : report;
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            err.println("guestmem run: report=" + dir + ": not a directory");
            err.flush();
            return 2;
        }
        JobResult result;
        try {
            result = MainJob.run(options);
        } catch (IllegalStateException e) {
            err.println("guestmem run: " + e.getMessage());
            err.flush();
            return 1;
        }
        PrintWriter out = spec.commandLine().getOut();
        result.printSummary(out);
        Path page = JobReport.write(result, dir);
        out.println("report:               " + page.toAbsolutePath());
        out.flush();
        return result.passed() ? 0 : 1;
    }
}
