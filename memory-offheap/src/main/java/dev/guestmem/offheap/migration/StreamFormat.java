package dev.guestmem.offheap.migration;

/**
 * The layout of a guestmem RAM migration stream, version 1 (the README's "Migrating guest RAM" describes it for
 * users). Every integer is big-endian (network order, as in QEMU's streams).
 *
 * <p>The stream is a sequence of <em>frames</em>, each a length (u32, 1 to {@link #MAX_FRAME_BYTES}) and that many
 * bytes of whole items: no field, block-table entry or record (with its page data) is cut by a frame's end. Frames let
 * the destination read a megabyte at a time and still never read past the stream's end. Their contents, put end to
 * end, are:
 * <pre>
 * header   magic u64 "guestRAM" | version u16 | pageBits u8 | reserved u8 (0) | blockCount u32
 *          blockCount times: idLength u8 (1..255) | idstr (UTF-8) | usedLength u64 (bytes)
 *          checksum u32
 * records  each starts with 16 bytes: tag u8 | reserved u8 (0) | count u16 | a u32 | b u64
 *   PAGES  count pages (1..65535) of block a from block page b, followed by their bytes (the last page of a block
 *          whose used length is not a multiple of the page size is short)
 *   ZEROS  count pages of block a from page b that are all zero; no bytes follow
 *   ROUND  count 0 | a = round number (0, 1, ...) | b = pages sent in the round; then checksum u32
 *   END    count 0 | a = rounds in the stream | b = pages in the stream; then checksum u32; the last item
 * </pre>
 * Each checksum is the CRC32C of every byte of the frames' contents before it, earlier checksums included (frame
 * lengths are not covered: a wrong one cuts an item, or shifts the bytes the next checksum covers).
 */
final class StreamFormat {
    /** "guestRAM" in ASCII. */
    static final long MAGIC = 0x677565737452414DL;
    static final int VERSION = 1;
    /** Bytes of the fixed part of the header, before the block table. */
    static final int HEADER_BYTES = 16;
    /** QEMU's idstr is 256 bytes with its terminating NUL. */
    static final int MAX_IDSTR_BYTES = 255;
    /** The most blocks a stream may name (QEMU machines have tens). */
    static final int MAX_BLOCKS = 65_535;
    static final int RECORD_BYTES = 16;
    static final int FRAME_LENGTH_BYTES = 4;
    /** The largest frame: a writer's buffer holds two of the largest pages (1 MiB) with their record headers. */
    static final int MAX_FRAME_BYTES = 4 << 20;
    static final int CHECKSUM_BYTES = 4;
    static final int MAX_RUN_PAGES = 0xFFFF;

    static final byte PAGES = 'P';
    static final byte ZEROS = 'Z';
    static final byte ROUND = 'R';
    static final byte END = 'E';

    private StreamFormat() {
    }

    /** Pages of a block with {@code usedLength} bytes in use: the last one may be short. */
    static long pageCount(long usedLength, int pageBits) {
        return (usedLength + (1L << pageBits) - 1) >>> pageBits;
    }

    /** Bytes of pages {@code [first, first + count)} of a block with {@code usedLength} bytes in use. */
    static long runBytes(long usedLength, int pageBits, long first, long count) {
        return Math.min(usedLength, (first + count) << pageBits) - (first << pageBits);
    }

    static String tagName(byte tag) {
        return switch (tag) {
            case PAGES -> "PAGES";
            case ZEROS -> "ZEROS";
            case ROUND -> "ROUND";
            case END -> "END";
            default -> "0x" + Integer.toHexString(tag & 0xFF);
        };
    }
}
