package dev.guestmem.memory.map;

import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * UTF-8 text from a stream of bytes, decoded a buffer at a time (a map of a million regions is never held whole as
 * bytes); the first byte that is not UTF-8 ends the text with a {@link NotUtf8Exception} naming its offset.
 *
 * <p>Threading: one reader thread.
 */
final class Utf8Reader extends Reader {
    /** Bytes that are not UTF-8 text; the message is the one line to show: the offset and the byte. */
    static final class NotUtf8Exception extends IOException {
        private static final long serialVersionUID = 1L;

        NotUtf8Exception(String message) {
            super(message);
        }
    }

    private final InputStream in;
    private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    private final ByteBuffer bytes = ByteBuffer.allocate(64 << 10).flip();
    /** Offset in the stream of {@code bytes}' position 0. */
    private long bufferOffset;
    private boolean eof;
    private boolean flushed;

    Utf8Reader(InputStream in) {
        this.in = in;
    }

    /** The message for {@code bad}, the first byte that is not UTF-8, at {@code offset} in the text. */
    static String notUtf8(long offset, byte bad) {
        return "not UTF-8 text: byte offset=" + offset + " is 0x" + Integer.toHexString(bad & 0xff);
    }

    @Override
    public int read(char[] cbuf, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        CharBuffer out = CharBuffer.wrap(cbuf, off, len);
        while (out.position() == off) {
            if (!bytes.hasRemaining() || !eof && bytes.remaining() < 4) {
                fill();
            }
            if (eof && !bytes.hasRemaining() && flushed) {
                return -1;
            }
            CoderResult r = decoder.decode(bytes, out, eof);
            if (r.isError()) {
                throw new NotUtf8Exception(notUtf8(bufferOffset + bytes.position(), bytes.get(bytes.position())));
            }
            if (eof && !bytes.hasRemaining() && !flushed) {
                if (decoder.flush(out).isOverflow()) {
                    break;
                }
                flushed = true;
                if (out.position() == off) {
                    return -1;
                }
            }
        }
        return out.position() - off;
    }

    /** Moves what is left of the buffer to its start and reads more behind it, until full or at the end. */
    private void fill() throws IOException {
        if (eof) {
            return;
        }
        bufferOffset += bytes.position();
        bytes.compact();
        int n = in.read(bytes.array(), bytes.position(), bytes.remaining());
        if (n < 0) {
            eof = true;
        } else {
            bytes.position(bytes.position() + n);
        }
        bytes.flip();
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
