package dev.guestmem.offheap.migration;

import java.time.Duration;

/**
 * What a restore loaded: QEMU's {@code ram_load} as one summary.
 *
 * @param rounds    rounds in the stream (1 for a saved stopped machine, more for a pre-copy)
 * @param pages     pages loaded, zero pages and pages sent again in later rounds included
 * @param zeroPages pages that came as zero pages (no data on the wire)
 * @param bytes     bytes of the stream read
 * @param time      from the call until the end of the stream was checked, waiting for the source included
 */
public record RestoreReport(int rounds, long pages, long zeroPages, long bytes, Duration time) {
}
