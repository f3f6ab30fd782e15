package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.GuestProgram;
import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The main job: builds the machine ({@link RiscvVirtMachine}, RAM from the chosen backend) and runs, for about
 * {@link Options#seconds()}, at once: the vCPU threads going through the guest programs one after another, each
 * checked ({@link Vcpus}); the {@link Display}; the {@link DeviceThread}; a {@link LiveMigration}; and, with a disk,
 * the {@link VhostDisk}. A live progress line goes to {@link Options#progress()}. The result holds everything the
 * summary and the report show.
 *
 * <p>Threading: {@link #run} on one thread, which is the host's (it loads the programs and checks them).
 */
public final class MainJob {
    /** The programs in the order the job runs them, round after round: the shortest first, so a short run checks one. */
    static final List<GuestProgram> PROGRAMS = List.of(GuestProgram.UART, GuestProgram.RENDER, GuestProgram.SPINLOCK,
            GuestProgram.MEMCPY, GuestProgram.SELFMOD, GuestProgram.SORT, GuestProgram.HASH);
    /** How often the MIPS timeline is sampled and the progress line redrawn. */
    static final long SAMPLE_MILLIS = 250;
    /**
     * How long past {@link Options#seconds()} a migration may take to end (its last rounds, the comparison) before it
     * is cut off: a quarter of the run, at least a second.
     */
    static double migrationGraceSeconds(double seconds) {
        return Math.max(1.0, seconds / 4);
    }

    /**
     * What to run.
     *
     * @param vcpus     vCPU threads, 1 to 32
     * @param seconds   how long the programs keep coming
     * @param ramBytes  the machine's RAM
     * @param ram       where RAM comes from
     * @param tlb       the vCPUs' memory path: {@link MemoryPath#HOST_TLB} (the fast TLB, the default) or
     *                  {@link MemoryPath#SOFT_TLB} (the checked one)
     * @param migrate   whether to run a live migration
     * @param disk      a raw disk image for the vhost-user disk, or {@code null} for none
     * @param migration the migration to drive
     * @param progress  the live progress line, or {@code null} for none
     */
    public record Options(int vcpus, double seconds, long ramBytes, RamBackend ram, MemoryPath tlb, boolean migrate,
                          Path disk, LiveMigration migration, ProgressLine progress) {
    }

    /** One sample of the timeline: ms since the start, and each vCPU's MIPS over the last interval. */
    record Sample(double atMillis, double[] mips) {
    }

    private MainJob() {
    }

    /** Runs the job; every thread it started has ended when it returns. */
    public static JobResult run(Options options) throws IOException, InterruptedException {
        RiscvVirtMachine machine = RiscvVirtMachine.create(options.ram().allocator(), options.ramBytes());
        long start = System.nanoTime();
        long deadline = start + (long) (options.seconds() * TimeUnit.SECONDS.toNanos(1));
        VcpuGate gate = new VcpuGate();
        Display display = new Display(machine.framebuffer(), start);
        DeviceThread devices = new DeviceThread(machine, start);
        List<Vcpus.ProgramRun> runs = new ArrayList<>();
        List<Sample> timeline = new ArrayList<>();
        AtomicReference<LiveMigration.Result> migrationResult = new AtomicReference<>();
        AtomicReference<Throwable> migrationError = new AtomicReference<>();
        LiveMigration migration = options.migration();
        VhostDisk disk = options.disk() == null ? null : VhostDisk.start(machine, gate, options.disk());
        try (Vcpus vcpus = new Vcpus(machine, options.vcpus(), gate, options.tlb())) {
            Thread displayThread = Thread.ofPlatform().name("display").daemon(true).start(display);
            Thread deviceThread = Thread.ofPlatform().name("devices").daemon(true).start(devices);
            LiveMigration.Vm vm = new LiveMigration.Vm() {
                @Override
                public void pause() throws InterruptedException {
                    gate.pause();
                }

                @Override
                public void resume() {
                    gate.resume();
                }
            };
            Thread migrationThread = Thread.ofPlatform().name("migration").daemon(true).start(() -> {
                try {
                    migrationResult.set(migration.run(machine, vm));
                } catch (Exception | Error e) {
                    migrationError.set(e);
                }
            });
            Thread sampler = Thread.ofPlatform().name("progress").daemon(true)
                    .start(() -> sample(vcpus, migration, start, timeline, options.progress()));
            while (System.nanoTime() - deadline < 0) {
                runs.add(vcpus.runProgram(PROGRAMS.get(runs.size() % PROGRAMS.size()), deadline));
            }
            // Bounded: a migration that has not converged by the deadline plus the grace is cut off and reported so.
            long cutOff = deadline + (long) (migrationGraceSeconds(options.seconds()) * TimeUnit.SECONDS.toNanos(1));
            long left = cutOff - System.nanoTime();
            if (left > 0) {
                TimeUnit.NANOSECONDS.timedJoin(migrationThread, left);
            }
            if (migrationThread.isAlive()) {
                migration.cancel();
            }
            migrationThread.join();
            sampler.interrupt();
            sampler.join();
            devices.stop();
            display.stop();
            deviceThread.join();
            displayThread.join();
            long wallNanos = System.nanoTime() - start;
            if (disk != null) {
                disk.stop();
            }
            display.refresh(); // the frame as the vCPUs left it
            if (options.progress() != null) {
                options.progress().finish();
            }
            LiveMigration.Result m = migrationResult.get();
            if (migrationError.get() != null) {
                Throwable e = migrationError.get();
                m = LiveMigration.Result.failed(e);
            }
            return new JobResult(options, wallNanos, vcpus.vcpus(), machine.mmioAccesses(), List.copyOf(runs),
                    display, devices, m, disk == null ? null : disk.result(), List.copyOf(timeline));
        } finally {
            if (disk != null) {
                disk.close();
            }
        }
    }

    /** Samples the vCPUs' instruction counts, and redraws the progress line, until interrupted. */
    private static void sample(Vcpus vcpus, LiveMigration migration, long start, List<Sample> timeline,
                               ProgressLine progress) {
        List<Vcpus.Vcpu> list = vcpus.vcpus();
        long[] before = new long[list.size()];
        long last = start;
        while (!Thread.currentThread().isInterrupted()) {
            try {
                Thread.sleep(SAMPLE_MILLIS);
            } catch (InterruptedException e) {
                break;
            }
            long now = System.nanoTime();
            double[] mips = new double[list.size()];
            double total = 0;
            for (int i = 0; i < mips.length; i++) {
                long r = list.get(i).retired;
                mips[i] = (r - before[i]) / ((now - last) / 1e3);
                before[i] = r;
                total += mips[i];
            }
            last = now;
            synchronized (timeline) {
                timeline.add(new Sample((now - start) / 1e6, mips));
            }
            if (progress != null) {
                progress.update((now - start) / 1e9, total, migration.status());
            }
        }
    }
}
