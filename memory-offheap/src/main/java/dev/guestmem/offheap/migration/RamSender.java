package dev.guestmem.offheap.migration;

import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.DirtySnapshot;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/**
 * The source side of a migration: the blocks being sent, the pages of each still to send (QEMU's per-block
 * {@code bmap}), and the stream they go to. A save sends every page once; a pre-copy sends every page, then, round
 * after round, the pages the MIGRATION dirty log found written since (QEMU's {@code migration_bitmap_sync}).
 *
 * <p>Threading: the migration's thread.
 */
final class RamSender {
    private final StreamWriter writer;
    private final RamBlock[] blocks;
    private final int pageBits;
    /** Per block, one bit per page: still to send. */
    private final long[][] pending;
    private long pendingCount;
    private final DirtySnapshot snapshot = new DirtySnapshot();

    private long roundStartNanos;
    private long roundStartBytes;
    private long lastPages;
    private long lastZeroPages;

    /** Writes the stream's header naming {@code blocks}. */
    RamSender(ChannelIo io, int pageBits, List<RamBlock> blocks) throws MigrationException {
        this.writer = new StreamWriter(io, pageBits);
        this.blocks = blocks.toArray(new RamBlock[0]);
        this.pageBits = pageBits;
        this.roundStartNanos = System.nanoTime();
        writer.header(blocks);
        this.pending = new long[this.blocks.length][];
        for (int i = 0; i < this.blocks.length; i++) {
            pending[i] = new long[(int) ((StreamFormat.pageCount(writer.usedLength(i), pageBits) + 63) >>> 6)];
        }
    }

    /** Sends every page of every block (QEMU's first pass, with every bit of {@code bmap} set). */
    void sendAll() throws MigrationException {
        try {
            for (int i = 0; i < blocks.length; i++) {
                long pages = StreamFormat.pageCount(writer.usedLength(i), pageBits);
                for (long p = 0; p < pages; p++) {
                    writer.page(i, p);
                }
            }
        } catch (IllegalStateException | InternalError e) {
            throw sourceFailed(e);
        }
    }

    /** Sends the pages still to send, in ram_addr order, and forgets them. */
    void sendPending() throws MigrationException {
        try {
            for (int i = 0; i < blocks.length; i++) {
                long[] bits = pending[i];
                for (int w = 0; w < bits.length; w++) {
                    long word = bits[w];
                    bits[w] = 0;
                    while (word != 0) {
                        writer.page(i, ((long) w << 6) + Long.numberOfTrailingZeros(word));
                        word &= word - 1;
                    }
                }
            }
            pendingCount = 0;
        } catch (IllegalStateException | InternalError e) {
            throw sourceFailed(e);
        }
    }

    /**
     * QEMU's {@code migration_bitmap_sync}: has every listener bring in dirty bits gathered elsewhere, takes and clears
     * the MIGRATION bits of every block, adds their pages to the pages still to send, and tells listeners the sync is
     * over.
     *
     * @return pages still to send now
     * @throws MigrationException if a block was freed or resized since the migration began (QEMU fails a migration
     *                            whose RAM block list changes, too)
     */
    long sync(MemorySystem system) throws MigrationException {
        system.globalDirtyLogSync();
        DirtyBitmap dirty = system.dirtyBitmap(DirtyMemoryClient.MIGRATION);
        for (int i = 0; i < blocks.length; i++) {
            RamBlock b = blocks[i];
            long used = writer.usedLength(i);
            if (RamMigration.released(b)) {
                throw new MigrationException("block=" + b.idstr() + ": freed during the migration");
            }
            if (b.usedLength() != used) {
                throw new MigrationException("block=" + b.idstr() + " usedLength=0x" + Long.toHexString(used)
                        + " now=0x" + Long.toHexString(b.usedLength()) + ": resized during the migration");
            }
            if (used == 0) {
                continue;
            }
            dirty.snapshotAndClear(b.offset(), used, snapshot);
            long first = b.offset() >>> pageBits;
            long end = first + StreamFormat.pageCount(used, pageBits);
            long[] bits = pending[i];
            for (long p = snapshot.nextDirtyPage(first); p >= 0 && p < end; p = snapshot.nextDirtyPage(p + 1)) {
                long rel = p - first;
                long bit = 1L << rel;
                int w = (int) (rel >>> 6);
                if ((bits[w] & bit) == 0) {
                    bits[w] |= bit;
                    pendingCount++;
                }
            }
        }
        system.globalAfterDirtyLogSync();
        return pendingCount;
    }

    /** Forgets the pages still to send (before the first pass, which sends them all anyway). */
    void clearPending() {
        for (long[] bits : pending) {
            Arrays.fill(bits, 0);
        }
        pendingCount = 0;
    }

    /** Writes the end of round {@code round}; {@link #report} then makes its report. */
    void endRound(int round) throws MigrationException {
        lastPages = writer.roundPages();
        lastZeroPages = writer.roundZeroPages();
        writer.endRound(round);
    }

    /**
     * The report of the round just ended by {@link #endRound}, timed until now; starts the next round's clock.
     *
     * @param remaining pages found dirty after it
     */
    RoundReport report(int round, boolean vmStopped, long remaining) {
        long now = System.nanoTime();
        long bytes = writer.bytes();
        RoundReport r = new RoundReport(round, vmStopped, lastPages, lastZeroPages, bytes - roundStartBytes,
                Duration.ofNanos(now - roundStartNanos), remaining);
        roundStartNanos = now;
        roundStartBytes = bytes;
        return r;
    }

    /** Ends the stream after {@code rounds} rounds. */
    void end(int rounds) throws MigrationException {
        writer.end(rounds);
    }

    long bytes() {
        return writer.bytes();
    }

    private MigrationException sourceFailed(Throwable e) {
        int i = writer.currentBlock();
        String where = i < 0 ? "" : "block=" + blocks[i].idstr() + " offset=0x"
                + Long.toHexString(writer.currentPage() << pageBits) + ": ";
        return new MigrationException(where + "reading the source's memory failed (freed, or a file truncated under "
                + "the mapping): " + e.getMessage(), e);
    }
}
