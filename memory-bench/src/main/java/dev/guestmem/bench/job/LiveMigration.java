package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.RiscvVirtMachine;

import java.io.IOException;
import java.util.List;

/**
 * The seam between the main job and the library's migration of guest RAM: pre-copy of the machine's RAM to a
 * destination, rounds of dirty pages while the vCPUs run, then the vCPUs paused for the last pages, and the
 * destination compared with the source byte for byte while they are still paused.
 *
 * <p>Threading: {@link #run} on the migration thread; {@link #status} from any thread.
 */
interface LiveMigration {
    /** What the job lets the migration do to the vCPUs. */
    interface Vm {
        /** Stops every vCPU at its next check point and waits until all have stopped. */
        void pause() throws InterruptedException;

        void resume();
    }

    /**
     * What a migration did.
     *
     * @param ran             whether a migration ran at all
     * @param why             when it did not, why not; else empty
     * @param pagesPerRound   pages sent in each round, the last one (vCPUs paused) included
     * @param bytesSent       bytes that went over the socket
     * @param totalNanos      from the start to the end of the last round
     * @param downtimeNanos   the migration's downtime (QEMU's): from the request to pause the vCPUs until the last
     *                        byte of the stream was written
     * @param pausedNanos     how long the vCPUs were kept from running for the migration in all: from the pause
     *                        request until they were let go again, the downtime, the wait for the destination to read
     *                        the stream's last bytes and the comparison included
     * @param drainNanos      of the pause, the wait for the destination to read the last bytes after they were sent
     * @param compareNanos    of the pause, the byte-for-byte comparison of both machines' RAM
     * @param catchUpNanos    before the pause, with the vCPUs running: the wait for the destination to read what the
     *                        rounds had sent
     * @param equal           whether the destination's RAM equalled the source's, byte for byte
     * @param firstDifference the first differing guest-physical address and block, when not equal; else empty
     */
    record Result(boolean ran, String why, List<Long> pagesPerRound, long bytesSent, long totalNanos,
                  long downtimeNanos, long pausedNanos, long drainNanos, long compareNanos, long catchUpNanos,
                  boolean equal, String firstDifference) {
        static Result notRun(String why) {
            return new Result(false, why, List.of(), 0, 0, 0, 0, 0, 0, 0, false, "");
        }

        /** A migration that failed with {@code failure}. */
        static Result failed(Throwable failure) {
            return new Result(true, "", List.of(), 0, 0, 0, 0, 0, 0, 0, false, "migration failed: " + failure);
        }

        int rounds() {
            return pagesPerRound.size();
        }
    }

    /** For the progress line: "-" before the first round, "round N" while sending, "done" at the end. */
    String status();

    /** Migrates {@code machine}'s RAM, pausing and resuming its vCPUs through {@code vm}. */
    Result run(RiscvVirtMachine machine, Vm vm) throws IOException, InterruptedException;

    /**
     * Cuts the migration off, from any thread: {@link #run} returns soon (the vCPUs resumed if it had paused them),
     * with a result that did not run and says where it was cut off. Nothing when it has ended.
     */
    default void cancel() {
    }

    /** No migration, and why ({@code --no-migrate}, or no library API to drive). */
    static LiveMigration none(String why) {
        return new LiveMigration() {
            @Override
            public String status() {
                return "-";
            }

            @Override
            public Result run(RiscvVirtMachine machine, Vm vm) {
                return Result.notRun(why);
            }
        };
    }
}
