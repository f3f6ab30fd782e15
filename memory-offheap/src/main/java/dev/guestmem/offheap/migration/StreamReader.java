package dev.guestmem.offheap.migration;

import static dev.guestmem.offheap.migration.StreamFormat.CHECKSUM_BYTES;
import static dev.guestmem.offheap.migration.StreamFormat.FRAME_LENGTH_BYTES;
import static dev.guestmem.offheap.migration.StreamFormat.HEADER_BYTES;
import static dev.guestmem.offheap.migration.StreamFormat.MAX_BLOCKS;
import static dev.guestmem.offheap.migration.StreamFormat.MAX_FRAME_BYTES;
import static dev.guestmem.offheap.migration.StreamFormat.RECORD_BYTES;

import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamFlag;
import dev.guestmem.memory.RamList;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.zip.CRC32C;

/**
 * Reads a migration stream (see {@link StreamFormat}) into the RAM blocks of a destination {@link RamList}, checking
 * every field before it is used: the header and its block table first, all of it, so that a stream meant for another
 * machine is refused before a byte of RAM is written; then every record, so that no run leaves its block; then the
 * checksum at the end of every round and of the stream, and that every page of every block came at least once.
 *
 * <p>It reads the stream a frame at a time and nothing past its end, so the channel can carry more afterwards. Data is
 * read into a private buffer and checksummed there, then copied into guest RAM, so no checksum or zero test ever runs
 * over memory that another process could truncate.
 *
 * <p>Threading: one thread; the destination's vCPUs must not run meanwhile.
 */
final class StreamReader {
    /** Sees each run as it is loaded: for tests that check which pages a round carried. */
    interface RunObserver {
        void run(int round, RamBlock block, long firstPage, int count, boolean zero);
    }

    private final ChannelIo io;
    private final RamList destination;
    private final RunObserver observer;
    private final int pageBits;
    private final ByteBuffer frameLength = ByteBuffer.allocate(FRAME_LENGTH_BYTES);
    /** The frame being parsed: its unread contents are {@code [position, limit)}. */
    private final ByteBuffer frame;
    /** All of {@link #frame}'s memory, whatever its position and limit. */
    private final MemorySegment frameSegment;
    /** Stream offset of the current frame's first content byte. */
    private long frameStart;
    private final MemorySegment zeroPage;
    private final CRC32C crc = new CRC32C();

    private RamBlock[] blocks;
    private MemorySegment[] memory;
    private long[] usedLengths;
    /** Per block, one bit per page: set once a run carried the page. */
    private long[][] seen;
    /** The block and block-relative offset being written now, for the error when host memory fails. */
    private int currentBlock = -1;
    private long currentOffset;

    StreamReader(ChannelIo io, RamList destination, RunObserver observer) {
        this.io = io;
        this.destination = destination;
        this.observer = observer;
        this.pageBits = destination.pageBits();
        this.zeroPage = Arena.ofAuto().allocate(1L << pageBits);
        ByteBuffer f = ByteBuffer.allocateDirect(MAX_FRAME_BYTES);
        this.frameSegment = MemorySegment.ofBuffer(f);
        this.frame = f.limit(0);
    }

    /** Reads the whole stream into the destination. */
    RestoreReport read() throws MigrationException {
        long start = System.nanoTime();
        readHeader();
        try {
            return readRecords(start);
        } catch (IllegalStateException | InternalError e) {
            // IllegalStateException: the block's memory was freed under us. InternalError: a file truncated under the
            // mapping (HotSpot may raise it at a later safepoint poll of this loop, so it is caught around all of it).
            if (currentBlock < 0) {
                throw e;
            }
            throw new MigrationException("block=" + blocks[currentBlock].idstr() + " offset=0x"
                    + Long.toHexString(currentOffset) + ": writing the destination's memory failed ("
                    + e.getMessage() + ")", e);
        }
    }

    private void readHeader() throws MigrationException {
        ByteBuffer h = take(HEADER_BYTES, "header");
        long magic = h.getLong();
        if (magic != StreamFormat.MAGIC) {
            throw new MigrationException("magic=0x" + Long.toHexString(magic) + " expected=0x"
                    + Long.toHexString(StreamFormat.MAGIC) + ": not a guestmem RAM migration stream");
        }
        int version = h.getShort() & 0xFFFF;
        if (version != StreamFormat.VERSION) {
            throw new MigrationException("version=" + version + " supported=" + StreamFormat.VERSION
                    + ": a stream version this destination does not read");
        }
        int streamPageBits = h.get() & 0xFF;
        if (streamPageBits != pageBits) {
            throw new MigrationException("pageBits=" + streamPageBits + " destinationPageBits=" + pageBits
                    + ": source and destination target pages differ");
        }
        int reserved = h.get() & 0xFF;
        if (reserved != 0) {
            throw new MigrationException("headerReserved=0x" + Integer.toHexString(reserved) + ": must be 0");
        }
        long count = h.getInt() & 0xFFFF_FFFFL;
        if (count > MAX_BLOCKS) {
            throw new MigrationException("blockCount=" + count + " max=" + MAX_BLOCKS + ": too many blocks");
        }
        int n = (int) count;
        String[] ids = new String[n];
        long[] lengths = new long[n];
        Set<String> names = new HashSet<>();
        for (int i = 0; i < n; i++) {
            int idLength = take(1, "block#" + i + " idLength").get() & 0xFF;
            if (idLength == 0) {
                throw new MigrationException("block#" + i + " idLength=0: a block name is never empty");
            }
            ByteBuffer raw = take(idLength, "block#" + i + " idstr");
            try {
                ids[i] = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(raw).toString();
            } catch (CharacterCodingException e) {
                throw new MigrationException("block#" + i + " idstr: not UTF-8", e);
            }
            if (!names.add(ids[i])) {
                throw new MigrationException("block=" + ids[i] + ": named twice in the stream's block table");
            }
            lengths[i] = take(Long.BYTES, "block=" + ids[i] + " usedLength").getLong();
        }
        checkChecksum("headerChecksum");
        match(ids, lengths);
    }

    /** QEMU's rules: each block of the stream is the destination's block of the same name and used length. */
    private void match(String[] ids, long[] lengths) throws MigrationException {
        int n = ids.length;
        RamBlock[] found = new RamBlock[n];
        MemorySegment[] segments = new MemorySegment[n];
        for (int i = 0; i < n; i++) {
            RamBlock b = destination.blockByName(ids[i]);
            if (b == null) {
                throw new MigrationException("block=" + ids[i] + ": the destination has no RAM block of that name");
            }
            if (b.usedLength() != lengths[i]) {
                throw new MigrationException("block=" + ids[i] + " usedLength=0x" + Long.toHexString(lengths[i])
                        + " destinationUsedLength=0x" + Long.toHexString(b.usedLength())
                        + ": the block's used length differs");
            }
            if (b.flags().contains(RamFlag.READONLY) || RamMigration.released(b)) {
                throw new MigrationException("block=" + ids[i] + ": the destination block is "
                        + (RamMigration.released(b) ? "freed" : "read-only"));
            }
            try {
                segments[i] = b.hostSegment();
            } catch (IllegalStateException e) {
                throw new MigrationException("block=" + ids[i] + ": the destination block has no memory", e);
            }
            if (segments[i].isReadOnly()) {
                throw new MigrationException("block=" + ids[i] + ": the destination block is read-only");
            }
            found[i] = b;
        }
        this.blocks = found;
        this.memory = segments;
        this.usedLengths = lengths;
        this.seen = new long[n][];
        for (int i = 0; i < n; i++) {
            seen[i] = new long[(int) ((StreamFormat.pageCount(lengths[i], pageBits) + 63) >>> 6)];
        }
    }

    private RestoreReport readRecords(long start) throws MigrationException {
        int round = 0;
        long roundPages = 0;
        long pages = 0;
        long zeroPages = 0;
        while (true) {
            ByteBuffer r = take(RECORD_BYTES, "record");
            long at = offset() - RECORD_BYTES; // after the take, which may have read the record's frame
            byte tag = r.get();
            int reserved = r.get() & 0xFF;
            int count = r.getShort() & 0xFFFF;
            int a = r.getInt();
            long b = r.getLong();
            String where = "streamOffset=" + at + " record=" + StreamFormat.tagName(tag);
            if (reserved != 0) {
                throw new MigrationException(where + " reserved=0x" + Integer.toHexString(reserved) + ": must be 0");
            }
            switch (tag) {
                case StreamFormat.PAGES, StreamFormat.ZEROS -> {
                    checkRun(where, count, a, b);
                    if (tag == StreamFormat.PAGES) {
                        loadPages(a, b, count);
                    } else {
                        zeroPages(a, b, count);
                        zeroPages += count;
                    }
                    markSeen(seen[a], b, count);
                    roundPages += count;
                    pages += count;
                    if (observer != null) {
                        observer.run(round, blocks[a], b, count, tag == StreamFormat.ZEROS);
                    }
                }
                case StreamFormat.ROUND -> {
                    checkMarker(where, count);
                    if (a != round) {
                        throw new MigrationException(where + " round=" + Integer.toUnsignedString(a) + " expected="
                                + round + ": rounds out of order");
                    }
                    if (b != roundPages) {
                        throw new MigrationException(where + " pages=" + Long.toUnsignedString(b) + " counted="
                                + roundPages + ": the round's page count does not match its records");
                    }
                    checkChecksum(where + " checksum");
                    round++;
                    roundPages = 0;
                }
                case StreamFormat.END -> {
                    checkMarker(where, count);
                    if (roundPages != 0) {
                        throw new MigrationException(where + " pagesAfterLastRound=" + roundPages
                                + ": the last round has no ROUND record");
                    }
                    if (a != round || b != pages) {
                        throw new MigrationException(where + " rounds=" + Integer.toUnsignedString(a) + " pages="
                                + Long.toUnsignedString(b) + " counted=" + round + "/" + pages
                                + ": the stream's totals do not match its records");
                    }
                    checkChecksum(where + " checksum");
                    checkComplete();
                    return new RestoreReport(round, pages, zeroPages, io.offset(),
                            Duration.ofNanos(System.nanoTime() - start));
                }
                default -> throw new MigrationException("streamOffset=" + at + " tag=0x"
                        + Integer.toHexString(tag & 0xFF) + ": unknown record");
            }
        }
    }

    private void checkRun(String where, int count, int index, long first) throws MigrationException {
        if (count == 0) {
            throw new MigrationException(where + " count=0: a run has at least one page");
        }
        if (index < 0 || index >= blocks.length) {
            throw new MigrationException(where + " blockIndex=" + Integer.toUnsignedString(index) + " blockCount="
                    + blocks.length + ": no such block in the stream's table");
        }
        long pageCount = StreamFormat.pageCount(usedLengths[index], pageBits);
        if (first < 0 || first >= pageCount || count > pageCount - first) {
            throw new MigrationException(where + " block=" + blocks[index].idstr() + " page=0x"
                    + Long.toHexString(first) + " count=" + count + " pageCount=0x" + Long.toHexString(pageCount)
                    + ": the run leaves the block");
        }
    }

    private static void checkMarker(String where, int count) throws MigrationException {
        if (count != 0) {
            throw new MigrationException(where + " count=" + count + ": must be 0");
        }
    }

    /** The data of a run, checksummed in the frame it came in, then copied into the block. */
    private void loadPages(int index, long first, int count) throws MigrationException {
        long offset = first << pageBits;
        // At most 65,535 pages of at most 1 MiB: a long, which take() refuses unless its frame holds it.
        long bytes = StreamFormat.runBytes(usedLengths[index], pageBits, first, count);
        if (bytes > frame.remaining()) {
            throw crossesFrame(bytes, "pageData");
        }
        int at = frame.position();
        take((int) bytes, "pageData");
        currentBlock = index;
        currentOffset = offset;
        MemorySegment.copy(frameSegment, at, memory[index], offset, bytes);
        currentBlock = -1;
    }

    /**
     * Zeroes the pages of a run. Memory with no file behind it is tested first and only written where it is not zero
     * already, so a fresh destination's untouched pages stay unpopulated (QEMU tests too); memory with a file, which
     * another process could truncate, is written without a test, as a copy's faults are the only ones caught.
     */
    private void zeroPages(int index, long first, int count) {
        MemorySegment m = memory[index];
        boolean test = blocks[index].fd() < 0;
        currentBlock = index;
        for (long p = first; p < first + count; p++) {
            long offset = p << pageBits;
            long len = StreamFormat.runBytes(usedLengths[index], pageBits, p, 1);
            currentOffset = offset;
            if (!test || MemorySegment.mismatch(m, offset, offset + len, zeroPage, 0, len) != -1) {
                m.asSlice(offset, len).fill((byte) 0);
            }
        }
        currentBlock = -1;
    }

    private static void markSeen(long[] bits, long first, int count) {
        for (long p = first; p < first + count; p++) {
            bits[(int) (p >>> 6)] |= 1L << p;
        }
    }

    /** Every page of every block came in some round: a stream that skipped one would leave stale memory. */
    private void checkComplete() throws MigrationException {
        for (int i = 0; i < blocks.length; i++) {
            long pageCount = StreamFormat.pageCount(usedLengths[i], pageBits);
            long[] bits = seen[i];
            for (int w = 0; w < bits.length; w++) {
                long missing = ~bits[w];
                if (missing != 0) {
                    long page = ((long) w << 6) + Long.numberOfTrailingZeros(missing);
                    if (page < pageCount) {
                        throw new MigrationException("block=" + blocks[i].idstr() + " page=0x"
                                + Long.toHexString(page) + ": the stream ended without ever sending this page");
                    }
                }
            }
        }
    }

    private static MigrationException corrupt(String field, int got, int computed) {
        return new MigrationException(field + "=0x" + Integer.toHexString(got) + " computed=0x"
                + Integer.toHexString(computed) + ": the stream is corrupt");
    }

    /** Reads the checksum field and compares it with the checksum of every byte before it. */
    private void checkChecksum(String field) throws MigrationException {
        int computed = (int) crc.getValue();
        int got = take(CHECKSUM_BYTES, field).getInt();
        if (got != computed) {
            throw corrupt(field, got, computed);
        }
    }

    /** Stream offset of the next unread byte of the frames' contents. */
    private long offset() {
        return frameStart + frame.position();
    }

    /**
     * The next {@code n} bytes (at most a frame), as a buffer positioned on them, added to the checksum; reads the
     * next frame when the current one is used up.
     *
     * @param field what the bytes are, for the error
     */
    private ByteBuffer take(int n, String field) throws MigrationException {
        if (!frame.hasRemaining()) {
            nextFrame(field);
        }
        if (n > frame.remaining()) {
            throw crossesFrame(n, field);
        }
        int at = frame.position();
        ByteBuffer b = frame.slice(at, n);
        frame.position(at + n);
        crc.update(b.duplicate());
        return b;
    }

    private MigrationException crossesFrame(long n, String field) {
        return new MigrationException("streamOffset=" + offset() + " field=" + field + " bytes=" + n
                + " frameLeft=" + frame.remaining() + ": the item crosses the end of its frame");
    }

    /** Reads the next frame: its length (1 to the most a writer makes), then all of it. */
    private void nextFrame(String field) throws MigrationException {
        io.readFully(frameLength.clear(), field);
        long length = frameLength.getInt(0) & 0xFFFF_FFFFL;
        if (length == 0 || length > MAX_FRAME_BYTES) {
            throw new MigrationException("streamOffset=" + (io.offset() - FRAME_LENGTH_BYTES) + " frameLength="
                    + length + " max=" + MAX_FRAME_BYTES + ": not a frame length");
        }
        frame.clear().limit((int) length);
        io.readFully(frame, field);
        frame.flip();
        frameStart = io.offset() - length;
    }
}
