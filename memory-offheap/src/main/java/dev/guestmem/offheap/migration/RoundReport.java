package dev.guestmem.offheap.migration;

import java.time.Duration;

/**
 * One round of a migration, as the progress callback and {@link MigrationReport#rounds()} give it.
 *
 * @param round                the round's number: 0 sends all of RAM, each later one the pages dirtied since
 * @param vmStopped            whether the vCPUs were paused during it (the last round of a pre-copy, the only round
 *                             of a save)
 * @param pagesSent            pages sent in the round, zero pages included
 * @param zeroPages            pages of those sent as zero pages (no data on the wire)
 * @param bytesSent            bytes of the stream the round wrote, record headers included
 * @param time                 from the round's start until the dirty log sync after it
 * @param dirtyPagesRemaining  pages dirtied while the round ran, found by the sync after it: what the next round
 *                             sends; 0 for the last round
 */
public record RoundReport(int round, boolean vmStopped, long pagesSent, long zeroPages, long bytesSent, Duration time,
                          long dirtyPagesRemaining) {
}
