package dev.guestmem.offheap.migration;

import static dev.guestmem.offheap.migration.StreamFormat.CHECKSUM_BYTES;
import static dev.guestmem.offheap.migration.StreamFormat.FRAME_LENGTH_BYTES;
import static dev.guestmem.offheap.migration.StreamFormat.MAX_IDSTR_BYTES;
import static dev.guestmem.offheap.migration.StreamFormat.MAX_RUN_PAGES;
import static dev.guestmem.offheap.migration.StreamFormat.RECORD_BYTES;

import dev.guestmem.memory.RamBlock;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Writes a migration stream (see {@link StreamFormat}): the header with the block table, then pages as runs of
 * consecutive data or zero pages, rounds and the end. Pages are copied from guest RAM into a private buffer before
 * they are checked for zeros and checksummed, so a guest that keeps writing while its page is sent cannot make the
 * checksum disagree with the bytes: it only makes the page dirty again, for a later round.
 *
 * <p>Threading: one thread (the migration's).
 */
final class StreamWriter {
    private final ChannelIo io;
    private final int pageBits;
    private final ByteBuffer buf;
    private final MemorySegment bufSegment;
    /** One page of zeros to compare copies with. */
    private final MemorySegment zeroPage;
    private final CRC32C crc = new CRC32C();
    /** Bytes of {@link #buf} from here to its position are not in {@link #crc} yet. */
    private int crcFrom;

    private RamBlock[] blocks;
    private long[] usedLengths;

    /** The run being built: its tag (0 for none), block index, first page, page count, header position in buf. */
    private byte runTag;
    private int runBlock;
    private long runFirst;
    private int runCount;
    private int runHeader;

    private long roundPages;
    private long roundZeroPages;
    private long totalPages;
    /** The page being copied now, for the error when the copy fails: block index and page. */
    private int currentBlock = -1;
    private long currentPage;

    StreamWriter(ChannelIo io, int pageBits) {
        this.io = io;
        this.pageBits = pageBits;
        int capacity = FRAME_LENGTH_BYTES + Math.max(1 << 20, 2 * (RECORD_BYTES + (1 << pageBits)));
        assert capacity - FRAME_LENGTH_BYTES <= StreamFormat.MAX_FRAME_BYTES;
        this.buf = ByteBuffer.allocateDirect(capacity);
        this.bufSegment = MemorySegment.ofBuffer(buf);
        buf.position(FRAME_LENGTH_BYTES);
        crcFrom = FRAME_LENGTH_BYTES;
        this.zeroPage = Arena.ofAuto().allocate(1L << pageBits);
    }

    /** The header naming {@code blocks}, with the used lengths they have now (which must not change after). */
    void header(List<RamBlock> blocks) throws MigrationException {
        this.blocks = blocks.toArray(new RamBlock[0]);
        this.usedLengths = new long[this.blocks.length];
        buf.putLong(StreamFormat.MAGIC).putShort((short) StreamFormat.VERSION).put((byte) pageBits).put((byte) 0)
                .putInt(this.blocks.length);
        for (int i = 0; i < this.blocks.length; i++) {
            byte[] id = this.blocks[i].idstr().getBytes(StandardCharsets.UTF_8);
            if (id.length == 0 || id.length > MAX_IDSTR_BYTES) {
                throw new MigrationException("block=" + this.blocks[i].idstr() + " idLength=" + id.length
                        + ": a block name must be 1 to " + MAX_IDSTR_BYTES + " bytes of UTF-8 to be migrated");
            }
            usedLengths[i] = this.blocks[i].usedLength();
            ensure(1 + id.length + Long.BYTES);
            buf.put((byte) id.length).put(id).putLong(usedLengths[i]);
        }
        ensure(CHECKSUM_BYTES);
        putChecksum();
    }

    /** Bytes in use of block {@code index} as the header gave them. */
    long usedLength(int index) {
        return usedLengths[index];
    }

    /**
     * Sends page {@code page} (block-relative page number) of block {@code index}: as part of a run of zero pages if
     * its copy is all zeros, else with its bytes.
     *
     * @throws IllegalStateException if the block's memory has been freed (the caller names the block)
     */
    void page(int index, long page) throws MigrationException {
        currentBlock = index;
        currentPage = page;
        int len = (int) StreamFormat.runBytes(usedLengths[index], pageBits, page, 1);
        if (buf.remaining() < RECORD_BYTES + len) {
            closeRun();
            flush();
        }
        boolean contiguous = runTag != 0 && runBlock == index && runFirst + runCount == page
                && runCount < MAX_RUN_PAGES;
        boolean append = contiguous && runTag == StreamFormat.PAGES;
        // The copy goes where its bytes belong if it is data: after the open run, or after a new run's header.
        int at = buf.position() + (append ? 0 : RECORD_BYTES);
        MemorySegment.copy(blocks[index].hostSegment(), page << pageBits, bufSegment, at, len);
        if (MemorySegment.mismatch(bufSegment, at, at + len, zeroPage, 0, len) == -1) {
            roundZeroPages++;
            if (contiguous && runTag == StreamFormat.ZEROS) {
                runCount++;
            } else {
                closeRun();
                openRun(StreamFormat.ZEROS, index, page); // the copy was scratch: the next bytes overwrite it
            }
        } else {
            if (append) {
                runCount++;
            } else {
                closeRun();
                openRun(StreamFormat.PAGES, index, page); // its header ends where the copy starts
            }
            buf.position(at + len);
        }
        roundPages++;
        totalPages++;
    }

    /**
     * The block index and page of the last page copied, or block -1 before the first: where a copy failed. HotSpot may
     * raise a copy's fault at a later safepoint poll, so after a fault this is that page or one a little after it.
     */
    int currentBlock() {
        return currentBlock;
    }

    long currentPage() {
        return currentPage;
    }

    /** Ends round {@code round}: its record, with the count of pages it sent and the checksum; flushes. */
    void endRound(int round) throws MigrationException {
        closeRun();
        ensure(RECORD_BYTES + CHECKSUM_BYTES);
        buf.put(StreamFormat.ROUND).put((byte) 0).putShort((short) 0).putInt(round).putLong(roundPages);
        putChecksum();
        flush();
        roundPages = 0;
        roundZeroPages = 0;
    }

    /** Pages of the current round so far, zero pages included. */
    long roundPages() {
        return roundPages;
    }

    /** Zero pages of the current round so far. */
    long roundZeroPages() {
        return roundZeroPages;
    }

    /** Ends the stream after {@code rounds} rounds; flushes. */
    void end(int rounds) throws MigrationException {
        closeRun();
        ensure(RECORD_BYTES + CHECKSUM_BYTES);
        buf.put(StreamFormat.END).put((byte) 0).putShort((short) 0).putInt(rounds).putLong(totalPages);
        putChecksum();
        flush();
    }

    /** Bytes of the stream so far, those still buffered (with their frame's length) included. */
    long bytes() {
        return io.offset() + (buf.position() > FRAME_LENGTH_BYTES ? buf.position() : 0);
    }

    private void openRun(byte tag, int index, long page) {
        runTag = tag;
        runBlock = index;
        runFirst = page;
        runCount = 1;
        runHeader = buf.position();
        buf.position(runHeader + RECORD_BYTES);
    }

    private void closeRun() {
        if (runTag != 0) {
            buf.put(runHeader, runTag).put(runHeader + 1, (byte) 0).putShort(runHeader + 2, (short) runCount)
                    .putInt(runHeader + 4, runBlock).putLong(runHeader + 8, runFirst);
            runTag = 0;
        }
    }

    /** Makes room for {@code bytes} more; there must be no open run. */
    private void ensure(int bytes) throws MigrationException {
        if (buf.remaining() < bytes) {
            closeRun();
            flush();
        }
    }

    /** The checksum of every byte so far, then the checksum itself (which the next one covers). */
    private void putChecksum() {
        updateCrc();
        buf.putInt((int) crc.getValue());
    }

    private void updateCrc() {
        int pos = buf.position();
        crc.update(buf.duplicate().position(crcFrom).limit(pos));
        crcFrom = pos;
    }

    /** Writes out the buffer as one frame; there must be no open run, so the frame holds whole items. */
    private void flush() throws MigrationException {
        assert runTag == 0;
        updateCrc();
        int length = buf.position() - FRAME_LENGTH_BYTES;
        if (length > 0) {
            buf.putInt(0, length).flip();
            io.writeFully(buf);
        }
        buf.clear().position(FRAME_LENGTH_BYTES);
        crcFrom = FRAME_LENGTH_BYTES;
    }
}
