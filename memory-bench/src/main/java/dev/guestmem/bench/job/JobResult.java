package dev.guestmem.bench.job;

import org.HdrHistogram.Histogram;

import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;

/**
 * Everything one run of the main job measured and checked, and its summary table.
 *
 * @param wallNanos from the start of the vCPUs to the end of the last program
 * @param migration what the migration did ({@link LiveMigration.Result#ran()} false when none ran)
 * @param disk      what the vhost-user disk did, or {@code null} without a disk
 */
public record JobResult(MainJob.Options options, long wallNanos, List<Vcpus.Vcpu> vcpus, long mmioAccesses,
                        List<Vcpus.ProgramRun> runs, Display display, DeviceThread devices,
                        LiveMigration.Result migration, VhostDisk.Result disk, List<MainJob.Sample> timeline) {

    /** Whether every program that ended passed its checks (and at least one did). */
    public boolean programsPassed() {
        return runs.stream().noneMatch(r -> r.outcome() == Vcpus.Outcome.FAILED)
                && runs.stream().anyMatch(r -> r.outcome() == Vcpus.Outcome.PASSED);
    }

    /** Whether the migration ran and the destination equalled the source. */
    public boolean migrationPassed() {
        return migration.ran() && migration.equal();
    }

    /** Whether the job passed: the programs, the device checks, the migration if one ran, the disk if one was. */
    public boolean passed() {
        return programsPassed() && devices.failures().isEmpty() && (!migration.ran() || migration.equal())
                && (disk == null || disk.failures().isEmpty());
    }

    long count(Vcpus.Outcome outcome) {
        return runs.stream().filter(r -> r.outcome() == outcome).count();
    }

    /** All vCPUs' slow-path (or hit) samples in one histogram. */
    Histogram merged(boolean slow) {
        Histogram h = new Histogram(3);
        for (Vcpus.Vcpu v : vcpus) {
            h.add(slow ? v.slowNanos() : v.hitNanos());
        }
        return h;
    }

    /** Prints the summary table. */
    public void printSummary(PrintWriter out) {
        double seconds = wallNanos / 1e9;
        out.printf(Locale.ROOT, "guestmem main job: %d vCPUs, %.1f s, RAM %d MiB (%s), TLB %s%n", vcpus.size(),
                seconds, options.ramBytes() >> 20, options.ram().spec(), JobFlags.tlbName(options.tlb()));
        out.println();
        out.println("vCPU  instructions       MIPS  TLB hit rate      loads     stores    fetches   atomics");
        long accesses = 0;
        long misses = 0;
        long[] kinds = new long[4];
        for (Vcpus.Vcpu v : vcpus) {
            long a = v.accesses;
            accesses += a;
            misses += v.misses;
            kinds[0] += v.loads;
            kinds[1] += v.stores;
            kinds[2] += v.fetches;
            kinds[3] += v.atomicOps;
            out.printf(Locale.ROOT, "%4d  %12d  %9.1f  %11.2f%%  %9s  %9s  %9s  %8s%n", v.id, v.retired,
                    v.retired / seconds / 1e6, hitRate(a, v.misses), si(v.loads), si(v.stores), si(v.fetches),
                    si(v.atomicOps));
        }
        long retired = vcpus.stream().mapToLong(v -> v.retired).sum();
        out.printf(Locale.ROOT, " all  %12d  %9.1f  %11.2f%%  %9s  %9s  %9s  %8s%n", retired, retired / seconds / 1e6,
                hitRate(accesses, misses), si(kinds[0]), si(kinds[1]), si(kinds[2]), si(kinds[3]));
        out.println();
        Histogram slow = merged(true);
        Histogram hit = merged(false);
        out.println("latency (ns, 1 access in " + CountingGuestMemory.SAMPLE_EVERY
                + " timed)     samples      p50      p99    p99.9        max");
        percentiles(out, "slow-path accesses (TLB misses, MMIO) ", slow);
        percentiles(out, "TLB hits                              ", hit);
        percentiles(out, "commits of the device thread          ", devices.commitNanos());
        if (disk != null) {
            percentiles(out, "vhost-user disk reads of 4 KiB        ", disk.latency());
        }
        out.println();
        out.printf(Locale.ROOT, "MMIO accesses          %d%n", mmioAccesses);
        out.printf(Locale.ROOT, "commits                %d (BAR moves and disables, romd toggles, RAM hot-add/remove;"
                + " %d checks, %d failed)%n", devices.commits().size(), devices.checks(), devices.failures().size());
        out.printf(Locale.ROOT, "VGA snapshots          %d (%d dirty pages in all)%n", display.snapshots(),
                display.dirtyPages());
        if (migration.ran()) {
            out.printf(Locale.ROOT, "migration rounds       %d, pages per round %s, %s sent in %.0f ms, "
                    + "downtime %.1f ms%n", migration.rounds(), migration.pagesPerRound(),
                    bytes(migration.bytesSent()), migration.totalNanos() / 1e6, migration.downtimeNanos() / 1e6);
            out.printf(Locale.ROOT, "vCPUs paused           %.1f ms for the migration: the downtime, %.1f ms for the"
                    + " destination to read the last bytes, %.1f ms comparing both RAMs (before: %.0f ms for the"
                    + " destination to catch up, the vCPUs running)%n", migration.pausedNanos() / 1e6,
                    migration.drainNanos() / 1e6, migration.compareNanos() / 1e6, migration.catchUpNanos() / 1e6);
        } else {
            out.printf(Locale.ROOT, "migration rounds       none (%s)%n", migration.why());
        }
        if (disk != null) {
            out.printf(Locale.ROOT, "vhost-user disk        %d reads, %s, %d failed%n", disk.requests(),
                    bytes(disk.bytes()), disk.failures().size());
        }
        out.printf(Locale.ROOT, "guest programs         %d passed, %d failed, %d interrupted at the deadline%n",
                count(Vcpus.Outcome.PASSED), count(Vcpus.Outcome.FAILED), count(Vcpus.Outcome.INTERRUPTED));
        out.println();
        out.println("guest checksums:      " + (programsPassed() ? "PASS" : "FAIL"));
        for (Vcpus.ProgramRun r : runs) {
            if (r.outcome() == Vcpus.Outcome.FAILED) {
                out.println("  " + r.program().programName() + ": " + r.detail());
            }
        }
        for (String f : devices.failures()) {
            out.println("  device check: " + f);
        }
        if (disk != null) {
            for (String f : disk.failures()) {
                out.println("  disk: " + f);
            }
        }
        out.println("migration comparison: " + (!migration.ran() ? "not run"
                : migration.equal() ? "PASS" : "FAIL " + migration.firstDifference()));
        out.println("result:               " + (passed() ? "PASS" : "FAIL"));
        out.flush();
    }

    private static void percentiles(PrintWriter out, String label, Histogram h) {
        if (h.getTotalCount() == 0) {
            out.printf(Locale.ROOT, "%s %10d%n", label, 0);
            return;
        }
        out.printf(Locale.ROOT, "%s %10d %8d %8d %8d %10d%n", label, h.getTotalCount(),
                h.getValueAtPercentile(50), h.getValueAtPercentile(99), h.getValueAtPercentile(99.9), h.getMaxValue());
    }

    static double hitRate(long accesses, long misses) {
        return accesses == 0 ? 0 : 100.0 * (accesses - Math.min(misses, accesses)) / accesses;
    }

    /** {@code n} with an SI suffix: 12.3M. */
    static String si(long n) {
        if (n >= 10_000_000_000L) {
            return String.format(Locale.ROOT, "%.1fG", n / 1e9);
        }
        if (n >= 10_000_000) {
            return String.format(Locale.ROOT, "%.1fM", n / 1e6);
        }
        if (n >= 10_000) {
            return String.format(Locale.ROOT, "%.1fk", n / 1e3);
        }
        return Long.toString(n);
    }

    static String bytes(long n) {
        return n >= (1L << 20) ? String.format(Locale.ROOT, "%.1f MiB", n / 1048576.0)
                : String.format(Locale.ROOT, "%.1f KiB", n / 1024.0);
    }
}
