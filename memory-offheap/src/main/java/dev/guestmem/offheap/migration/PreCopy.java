package dev.guestmem.offheap.migration;

import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * Pre-copy live migration of a running machine's RAM, as QEMU's precopy ({@code migration/ram.c}): global dirty
 * logging on, all of RAM sent once while the vCPUs run, then round after round the pages the guest dirtied meanwhile
 * (a dirty log sync, then a snapshot-and-clear of the {@link DirtyMemoryClient#MIGRATION} bitmap), until what is left
 * can be sent within the target downtime at the bandwidth the last round measured, or the round limit is reached.
 * Then the pause hook stops the vCPUs, the last dirty pages go, the end of the stream is written, the resume hook
 * runs and dirty logging is turned off. The destination reads the stream with {@link RamMigration#restore}.
 *
 * <p>Settings are immutable: each {@code with...} returns a copy. Defaults: {@link #DEFAULT_TARGET_DOWNTIME} (QEMU's
 * {@code downtime-limit}), {@link #DEFAULT_MAX_ROUNDS}, every migratable block, no progress callback,
 * {@link RamMigration#DEFAULT_IO_TIMEOUT}.
 *
 * <p>What it asks of the caller: the vCPUs write guest RAM through guestmem (an {@code AddressSpace}, a
 * {@code SoftTlb}, a {@code MemoryRegionCache}...), so their stores mark the MIGRATION bitmap while logging is on;
 * memory written behind guestmem's back (a raw segment store) is not seen. RAM blocks must not be added, freed or
 * resized during the migration (QEMU forbids it too): a freed or resized block fails it, and a block added after the
 * start is not sent.
 *
 * <p>Threading: {@link #migrate} runs on the caller's thread, and so do the hooks and the progress callback; the
 * vCPUs run on their own threads until the pause hook returns. One migration per memory system at a time.
 */
public final class PreCopy {
    /** QEMU's default {@code downtime-limit}: 300 ms. */
    public static final Duration DEFAULT_TARGET_DOWNTIME = Duration.ofMillis(300);
    /** Rounds with the vCPUs running, the first full one included, before they are paused anyway. */
    public static final int DEFAULT_MAX_ROUNDS = 30;

    private final MemorySystem system;
    private final Duration targetDowntime;
    private final int maxRounds;
    private final Predicate<RamBlock> blocks;
    private final Consumer<RoundReport> progress;
    private final Duration ioTimeout;

    private PreCopy(MemorySystem system, Duration targetDowntime, int maxRounds, Predicate<RamBlock> blocks,
                    Consumer<RoundReport> progress, Duration ioTimeout) {
        this.system = system;
        this.targetDowntime = targetDowntime;
        this.maxRounds = maxRounds;
        this.blocks = blocks;
        this.progress = progress;
        this.ioTimeout = ioTimeout;
    }

    /** A pre-copy of {@code system}'s RAM with the default settings. */
    public static PreCopy of(MemorySystem system) {
        return new PreCopy(Objects.requireNonNull(system, "system"), DEFAULT_TARGET_DOWNTIME, DEFAULT_MAX_ROUNDS,
                b -> true, r -> { }, RamMigration.DEFAULT_IO_TIMEOUT);
    }

    /** With the vCPUs paused once the pages left could be sent in {@code downtime} (positive). */
    public PreCopy withTargetDowntime(Duration downtime) {
        if (downtime.isNegative() || downtime.isZero()) {
            throw new IllegalArgumentException("targetDowntime=" + downtime + ": must be positive");
        }
        return new PreCopy(system, downtime, maxRounds, blocks, progress, ioTimeout);
    }

    /** With the vCPUs paused after at most {@code rounds} rounds (at least 1: the first, full one) whatever is left. */
    public PreCopy withMaxRounds(int rounds) {
        if (rounds < 1) {
            throw new IllegalArgumentException("maxRounds=" + rounds + ": must be at least 1");
        }
        return new PreCopy(system, targetDowntime, rounds, blocks, progress, ioTimeout);
    }

    /**
     * With only the migratable blocks that {@code filter} keeps (QEMU migrates the blocks a machine registers; a
     * VMM leaves out, say, a RAM region it hot-plugs and unplugs while migrating).
     */
    public PreCopy withBlocks(Predicate<RamBlock> filter) {
        return new PreCopy(system, targetDowntime, maxRounds, Objects.requireNonNull(filter, "filter"), progress,
                ioTimeout);
    }

    /** With {@code callback} told of every round when it ends, on the migrating thread. */
    public PreCopy withProgress(Consumer<RoundReport> callback) {
        return new PreCopy(system, targetDowntime, maxRounds, blocks, Objects.requireNonNull(callback, "callback"),
                ioTimeout);
    }

    /** With {@code timeout} (positive) as the longest wait for the destination to take one byte. */
    public PreCopy withIoTimeout(Duration timeout) {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("ioTimeout=" + timeout + ": must be positive");
        }
        return new PreCopy(system, targetDowntime, maxRounds, blocks, progress, timeout);
    }

    /**
     * Migrates the RAM to {@code out}. {@code pause} must return only once no vCPU writes guest RAM any more (QEMU's
     * {@code vm_stop}); {@code resume} runs after the last byte is written, or after a failure that happened while the
     * vCPUs were paused (the caller decides what runs then: the destination, or the source again).
     *
     * @throws MigrationException   if the channel fails or stalls for the I/O timeout, or a block is freed or resized
     *                              during the migration; the vCPUs are then resumed if they were paused, and dirty
     *                              logging is off again
     * @throws IllegalStateException if a migration of this memory system is already logging dirty memory
     */
    public MigrationReport migrate(WritableByteChannel out, Runnable pause, Runnable resume) throws IOException {
        Objects.requireNonNull(out, "out");
        Objects.requireNonNull(pause, "pause");
        Objects.requireNonNull(resume, "resume");
        if ((system.globalDirtyTracking() & MemorySystem.GLOBAL_DIRTY_MIGRATION) != 0) {
            throw new IllegalStateException("globalDirtyTracking=0x" + Integer.toHexString(system.globalDirtyTracking())
                    + ": a migration is already logging this memory system's dirty pages");
        }
        long start = System.nanoTime();
        try (ChannelIo io = ChannelIo.writing(out, ioTimeout)) {
            system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
            boolean paused = false;
            Throwable failure = null;
            try {
                RamSender sender = new RamSender(io, system.ramList().pageBits(),
                        RamMigration.blocks(system.ramList(), blocks));
                List<RoundReport> rounds = new ArrayList<>();
                boolean converged = iterate(sender, rounds);
                long downStart = System.nanoTime();
                pause.run();
                paused = true;
                int last = rounds.size();
                sender.sync(system);
                sender.sendPending();
                sender.endRound(last);
                RoundReport lastRound = sender.report(last, true, 0);
                sender.end(last + 1);
                long end = System.nanoTime();
                rounds.add(lastRound);
                progress.accept(lastRound);
                long pages = 0;
                for (RoundReport r : rounds) {
                    pages += r.pagesSent();
                }
                return new MigrationReport(rounds, pages, sender.bytes(), Duration.ofNanos(end - start),
                        Duration.ofNanos(end - downStart), converged);
            } catch (Throwable t) {
                failure = t;
                throw t;
            } finally {
                finish(paused, resume, failure);
            }
        }
    }

    /**
     * The rounds with the vCPUs running: the full one, then the dirty pages, until the rest fits the target downtime
     * or the round limit is reached. Returns whether it fits.
     */
    private boolean iterate(RamSender sender, List<RoundReport> rounds) throws MigrationException {
        sender.sync(system);
        sender.clearPending(); // every page goes in the first round anyway; bits set from now on are for the next
        long sendStart = System.nanoTime();
        long sendStartBytes = sender.bytes();
        sender.sendAll();
        for (int round = 0; ; round++) {
            sender.endRound(round);
            long sendNanos = System.nanoTime() - sendStart;
            long sentBytes = sender.bytes() - sendStartBytes;
            long remaining = sender.sync(system);
            RoundReport r = sender.report(round, false, remaining);
            rounds.add(r);
            progress.accept(r);
            // QEMU's test: what is left, at the bandwidth just measured, takes no longer than the downtime allowed.
            double bytesPerNano = sendNanos <= 0 ? Double.MAX_VALUE : (double) sentBytes / sendNanos;
            double leftBytes = (double) remaining * (1L << system.ramList().pageBits());
            if (leftBytes <= bytesPerNano * targetDowntime.toNanos()) {
                return true;
            }
            if (round + 1 >= maxRounds) {
                return false;
            }
            sendStart = System.nanoTime();
            sendStartBytes = sender.bytes();
            sender.sendPending();
        }
    }

    /** Resumes the vCPUs if they were paused, then turns dirty logging off; later failures join the first one. */
    private void finish(boolean paused, Runnable resume, Throwable failure) {
        try {
            if (paused) {
                resume.run();
            }
        } catch (RuntimeException | Error e) {
            if (failure == null) {
                stopLogging(null);
                throw e;
            }
            failure.addSuppressed(e);
        }
        stopLogging(failure);
    }

    private void stopLogging(Throwable failure) {
        try {
            system.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        } catch (RuntimeException e) {
            if (failure == null) {
                throw e;
            }
            failure.addSuppressed(e);
        }
    }
}
