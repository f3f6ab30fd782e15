package dev.guestmem.offheap.migration;

import static dev.guestmem.offheap.migration.StreamFormat.CHECKSUM_BYTES;
import static dev.guestmem.offheap.migration.StreamFormat.HEADER_BYTES;
import static dev.guestmem.offheap.migration.StreamFormat.MAX_BLOCKS;
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
 * <p>It reads exactly the stream and nothing past its end, so the channel can carry more afterwards. Data is read into
 * a private buffer and checksummed there, then copied into guest RAM, so no checksum or zero test ever runs over
 * memory that another process could truncate.
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
    private final ByteBuffer small = ByteBuffer.allocate(HEADER_BYTES);
    /** A checksum and the record header after it. */
    private final ByteBuffer checksumAndRecord = ByteBuffer.allocate(CHECKSUM_BYTES + RECORD_BYTES);
    /** Whether {@link #small} holds the next record's header, read along with what came before it. */
    private boolean haveRecord;
    private final ByteBuffer data;
    private final MemorySegment dataSegment;
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
        // Room for the next record's header after the last chunk of a run, read in the same call.
        int capacity = Math.max(1 << 20, 1 << pageBits) + RECORD_BYTES;
        this.data = ByteBuffer.allocateDirect(capacity);
        this.dataSegment = MemorySegment.ofBuffer(data);
        this.zeroPage = Arena.ofAuto().allocate(1L << pageBits);
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
        ByteBuffer h = consume(small, HEADER_BYTES, "header");
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
        ByteBuffer id = ByteBuffer.allocate(StreamFormat.MAX_IDSTR_BYTES);
        Set<String> names = new HashSet<>();
        for (int i = 0; i < n; i++) {
            int idLength = consume(small, 1, "block#" + i + " idLength").get() & 0xFF;
            if (idLength == 0) {
                throw new MigrationException("block#" + i + " idLength=0: a block name is never empty");
            }
            ByteBuffer raw = consume(id, idLength, "block#" + i + " idstr");
            try {
                ids[i] = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(raw).toString();
            } catch (CharacterCodingException e) {
                throw new MigrationException("block#" + i + " idstr: not UTF-8", e);
            }
            if (!names.add(ids[i])) {
                throw new MigrationException("block=" + ids[i] + ": named twice in the stream's block table");
            }
            lengths[i] = consume(small, Long.BYTES, "block=" + ids[i] + " usedLength").getLong();
        }
        checkChecksumThenRecord("headerChecksum");
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
            long at = haveRecord ? io.offset() - RECORD_BYTES : io.offset();
            ByteBuffer r = haveRecord ? small : consume(small, RECORD_BYTES, "record");
            haveRecord = false;
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
                    checkChecksumThenRecord(where + " checksum");
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

    /**
     * The data of a run, read and checksummed in the private buffer, then copied into the block. The next record's
     * header (a run is never the last record) comes in the same read as the last chunk: one read call per run.
     */
    private void loadPages(int index, long first, int count) throws MigrationException {
        long offset = first << pageBits;
        long left = StreamFormat.runBytes(usedLengths[index], pageBits, first, count);
        currentBlock = index;
        while (left > 0) {
            int chunk = (int) Math.min(left, data.capacity() - RECORD_BYTES);
            boolean last = chunk == left;
            consume(data, last ? chunk + RECORD_BYTES : chunk, last ? "pageData+record" : "pageData");
            currentOffset = offset;
            MemorySegment.copy(dataSegment, 0, memory[index], offset, chunk);
            if (last) {
                small.clear().put(data.slice(chunk, RECORD_BYTES)).flip();
                haveRecord = true;
            }
            offset += chunk;
            left -= chunk;
        }
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

    /**
     * {@link #checkChecksum} of a checksum that a record always follows (the header's, a round's), reading that
     * record's header in the same call.
     */
    private void checkChecksumThenRecord(String field) throws MigrationException {
        int computed = (int) crc.getValue();
        ByteBuffer b = consume(checksumAndRecord, CHECKSUM_BYTES + RECORD_BYTES, field + "+record");
        int got = b.getInt();
        if (got != computed) {
            throw corrupt(field, got, computed);
        }
        small.clear().put(b).flip();
        haveRecord = true;
    }

    private static MigrationException corrupt(String field, int got, int computed) {
        return new MigrationException(field + "=0x" + Integer.toHexString(got) + " computed=0x"
                + Integer.toHexString(computed) + ": the stream is corrupt");
    }

    /** Reads the checksum field and compares it with the checksum of every byte before it. */
    private void checkChecksum(String field) throws MigrationException {
        int computed = (int) crc.getValue();
        int got = consume(small, CHECKSUM_BYTES, field).getInt();
        if (got != computed) {
            throw corrupt(field, got, computed);
        }
    }

    /** Reads exactly {@code n} bytes into {@code b} (from its start), adds them to the checksum, returns b flipped. */
    private ByteBuffer consume(ByteBuffer b, int n, String field) throws MigrationException {
        b.clear().limit(n);
        io.readFully(b, field);
        b.flip();
        crc.update(b.duplicate());
        return b;
    }
}
