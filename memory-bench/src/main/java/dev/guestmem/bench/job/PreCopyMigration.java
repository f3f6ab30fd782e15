package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.offheap.migration.MigrationReport;
import dev.guestmem.offheap.migration.PreCopy;
import dev.guestmem.offheap.migration.RamDifference;
import dev.guestmem.offheap.migration.RamMigration;
import dev.guestmem.offheap.migration.RestoreReport;
import dev.guestmem.offheap.migration.RoundReport;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;

/**
 * The main job's live migration, driven through memory-offheap's {@link PreCopy}: the source machine's RAM goes over a
 * loopback TCP socket to a destination machine built from the same map and backend in this process, where
 * {@link RamMigration#restore} loads it on a thread of its own. The pause hook first waits, with the vCPUs still
 * running, until the destination has read every byte sent so far (the socket's buffers let the source run megabytes
 * ahead, which the destination would otherwise still be reading while the vCPUs wait), then stops the vCPUs (and the
 * host's and the disk's writes) at their check point. The resume hook runs with them still stopped, after the last
 * byte went: it waits until the destination has read the whole stream, compares both machines' RAM byte for byte
 * ({@link RamMigration#compare}), and only then lets the vCPUs go on. Each part of that pause is timed and reported.
 * The device thread's hot-plugged RAM ("hotplug.ram", added and removed all along) is left out, as a VMM leaves out
 * RAM it plugs while migrating.
 *
 * <p>Threading: {@link #run} on the migration thread; {@link #status} from any thread.
 */
final class PreCopyMigration implements LiveMigration {
    /** The blocks migrated and compared. */
    static final Predicate<RamBlock> BLOCKS = b -> !b.idstr().equals(DeviceThread.HOTPLUG_NAME);

    /**
     * How long the pause hook waits for a destination that reads nothing before it stops the vCPUs anyway: the
     * stream's own I/O timeout (a destination busy loading a frame of zero pages reads nothing for a while).
     */
    static final long CATCH_UP_PATIENCE_NANOS = RamMigration.DEFAULT_IO_TIMEOUT.toNanos();

    private final RamBackend backend;
    /** 0 before the first round, the round being sent (from 1), or -1 when done. */
    private volatile int round;
    /** The source's end of the connection while it is open; {@link #cancel} closes it. */
    private volatile SocketChannel channel;
    private volatile boolean cancelled;
    /** Bytes of the stream the rounds so far wrote; migration thread only. */
    private long bytesWritten;
    /**
     * System.nanoTime() when the catch-up began, when the pause was asked for, when the last byte was written (the
     * resume hook began), when the destination had read it and when the vCPUs were let go; migration thread only.
     */
    private long catchUpStart;
    private long pauseStart;
    private long lastByte;
    private long drained;
    private long compared;
    private long resumed;

    PreCopyMigration(RamBackend backend) {
        this.backend = backend;
    }

    @Override
    public String status() {
        int r = round;
        return r == 0 ? "-" : r < 0 ? "done" : "round " + r;
    }

    @Override
    public void cancel() {
        cancelled = true;
        SocketChannel c = channel;
        if (c != null) {
            try {
                c.close(); // the sender's next write fails: PreCopy resumes the vCPUs and stops logging
            } catch (IOException e) {
                // Closing is all that was asked; a failure to close leaves nothing to do.
            }
        }
    }

    @Override
    public Result run(RiscvVirtMachine source, Vm vm) throws IOException, InterruptedException {
        RiscvVirtMachine destination = RiscvVirtMachine.create(backend.allocator(), source.ram().size());
        AtomicReference<Object> restored = new AtomicReference<>();
        AtomicReference<Optional<RamDifference>> difference = new AtomicReference<>();
        MigrationReport report;
        Thread restorer;
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            CountingChannel counted = new CountingChannel();
            restorer = Thread.ofPlatform().name("migration-destination").daemon(true).start(() -> {
                try (SocketChannel in = server.accept()) {
                    // Blocking and without the I/O timeout of a selectable channel: the source's end is this
                    // object's, which closes it on every way out (cancel included), so the read ends.
                    restored.set(RamMigration.restore(destination.system(), counted.reading(in)));
                } catch (IOException | RuntimeException e) {
                    restored.set(e); // reported as the migration's failure
                }
            });
            try (SocketChannel out = SocketChannel.open(server.getLocalAddress())) {
                channel = out;
                if (cancelled) {
                    cancel(); // cut off before the channel was there to close: close it now
                }
                round = 1;
                PreCopy preCopy = PreCopy.of(source.system()).withBlocks(BLOCKS).withProgress(r -> {
                    round = r.round() + 2;
                    bytesWritten += r.bytesSent();
                });
                report = migrate(preCopy, out, vm, restorer, counted, restored, difference, source, destination);
                if (report == null) {
                    int at = round; // cancel() closed the channel: the destination sees the stream end early
                    joinUninterruptibly(restorer);
                    round = -1;
                    return Result.notRun("cut off at the deadline in round " + at + ", not compared");
                }
            } finally {
                channel = null;
            }
        }
        joinUninterruptibly(restorer);
        round = -1;
        List<Long> pages = new ArrayList<>();
        for (RoundReport r : report.rounds()) {
            pages.add(r.pagesSent());
        }
        Optional<RamDifference> d = difference.get();
        String why = !(restored.get() instanceof RestoreReport) ? "destination: " + restored.get()
                : d == null ? "not compared" : d.map(RamDifference::toString).orElse("");
        // Not the report's downtime, which begins before the pause hook and so counts the catch-up, when the vCPUs ran.
        return new Result(true, "", pages, report.bytesSent(), report.totalTime().toNanos(), lastByte - pauseStart,
                resumed - pauseStart, drained - lastByte, compared - drained, pauseStart - catchUpStart,
                d != null && d.isEmpty(), why);
    }

    /** The pre-copy, or null when {@link #cancel} cut it off. */
    private MigrationReport migrate(PreCopy preCopy, SocketChannel out, Vm vm, Thread restorer,
                                    CountingChannel counted, AtomicReference<Object> restored,
                                    AtomicReference<Optional<RamDifference>> difference, RiscvVirtMachine source,
                                    RiscvVirtMachine destination) throws IOException {
        try {
            return preCopy.migrate(out, () -> {
                catchUpStart = System.nanoTime();
                awaitDestination(counted, restorer);
                pauseStart = System.nanoTime();
                pause(vm);
            }, () -> {
                try {
                    lastByte = System.nanoTime();
                    joinUninterruptibly(restorer); // it has read the stream's end: its RAM is complete
                    drained = System.nanoTime();
                    if (restored.get() instanceof RestoreReport) {
                        difference.set(RamMigration.compare(source.system().ramList(),
                                destination.system().ramList(), BLOCKS));
                    }
                    compared = System.nanoTime();
                } finally {
                    vm.resume();
                    resumed = System.nanoTime();
                }
            });
        } catch (IOException | UncheckedIOException e) {
            if (cancelled) {
                return null;
            }
            throw e;
        }
    }

    /**
     * Waits, the vCPUs running, until the destination has read the {@link #bytesWritten} of the rounds so far, or has
     * ended, or read nothing for {@link #CATCH_UP_PATIENCE_NANOS} (it is then left to the stream's I/O timeout).
     */
    private void awaitDestination(CountingChannel counted, Thread restorer) {
        long lastRead = counted.bytes();
        long lastProgress = System.nanoTime();
        while (counted.bytes() < bytesWritten && restorer.isAlive() && !cancelled) {
            long read = counted.bytes();
            long now = System.nanoTime();
            if (read != lastRead) {
                lastRead = read;
                lastProgress = now;
            } else if (now - lastProgress > CATCH_UP_PATIENCE_NANOS) {
                return;
            }
            LockSupport.parkNanos(200_000);
        }
    }

    private static void pause(Vm vm) {
        try {
            vm.pause();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UncheckedIOException(new IOException("interrupted while pausing the vCPUs", e));
        }
    }

    /** Waits for {@code t}, which ends on its own (the stream ends or fails); keeps an interrupt for later. */
    private static void joinUninterruptibly(Thread t) {
        boolean interrupted = false;
        while (t.isAlive()) {
            try {
                t.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Counts the bytes the destination reads from its end of the socket, for the pause hook on the migration thread.
     * Not a {@link java.nio.channels.SelectableChannel}, so the restore reads it blocking.
     *
     * <p>Threading: read by the restorer thread, counted for any thread.
     */
    private static final class CountingChannel {
        private final AtomicLong bytes = new AtomicLong();

        long bytes() {
            return bytes.get();
        }

        ReadableByteChannel reading(ReadableByteChannel in) {
            return new ReadableByteChannel() {
                @Override
                public int read(ByteBuffer dst) throws IOException {
                    int n = in.read(dst);
                    if (n > 0) {
                        bytes.addAndGet(n);
                    }
                    return n;
                }

                @Override
                public boolean isOpen() {
                    return in.isOpen();
                }

                @Override
                public void close() throws IOException {
                    in.close();
                }
            };
        }
    }
}
