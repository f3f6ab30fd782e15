package dev.guestmem.offheap.migration;

import java.time.Duration;
import java.util.List;

/**
 * What a save or a pre-copy migration sent, round by round and in total.
 *
 * @param rounds    every round in order, the last one with the vCPUs paused
 * @param pagesSent pages sent in all rounds
 * @param bytesSent bytes of the whole stream
 * @param totalTime from the call until the end of the stream was written
 * @param downtime  from the pause hook's call until the end of the stream was written (the resume hook not
 *                  included): how long the guest stood still; the whole time for a save
 * @param converged whether the pages left to send fit the target downtime when the vCPUs were paused; false when
 *                  the round limit stopped the pre-copy instead (always true for a save)
 */
public record MigrationReport(List<RoundReport> rounds, long pagesSent, long bytesSent, Duration totalTime,
                              Duration downtime, boolean converged) {
    /** The rounds, copied. */
    public MigrationReport {
        rounds = List.copyOf(rounds);
    }
}
