package dev.guestmem.offheap.migration;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SelectableChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.WritableByteChannel;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * One direction of a migration stream over a byte channel, with a timeout on every wait: a peer that moves no byte
 * for the timeout fails the migration instead of hanging it. A {@link SelectableChannel} (a socket, a pipe) is put in
 * non-blocking mode and waited on with a selector, then put back in the mode it had by {@link #close()}; any other
 * channel is used as it is (a file, which never stalls).
 *
 * <p>Threading: one thread.
 */
final class ChannelIo implements AutoCloseable {
    private final ReadableByteChannel in;
    private final WritableByteChannel out;
    private final Duration timeout;
    private final long timeoutNanos;
    private final SelectableChannel selectable;
    private final boolean wasBlocking;
    private final Selector selector;
    /** Bytes of the stream moved so far: where the next one sits. */
    private long offset;

    private ChannelIo(Channel channel, ReadableByteChannel in, WritableByteChannel out, Duration timeout, int op)
            throws IOException {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("ioTimeout=" + timeout + ": must be positive");
        }
        this.in = in;
        this.out = out;
        this.timeout = timeout;
        this.timeoutNanos = timeout.toNanos();
        if (channel instanceof SelectableChannel sc) {
            this.selectable = sc;
            this.wasBlocking = sc.isBlocking();
            Selector s = Selector.open();
            try {
                sc.configureBlocking(false);
                sc.register(s, op);
            } catch (IOException | RuntimeException e) {
                s.close();
                restoreBlocking(sc, wasBlocking);
                throw e;
            }
            this.selector = s;
        } else {
            this.selectable = null;
            this.wasBlocking = true;
            this.selector = null;
        }
    }

    /** Reading from {@code in}, waiting at most {@code timeout} for each byte. */
    static ChannelIo reading(ReadableByteChannel in, Duration timeout) throws IOException {
        return new ChannelIo(in, in, null, timeout, SelectionKey.OP_READ);
    }

    /** Writing to {@code out}, waiting at most {@code timeout} for the peer to take each byte. */
    static ChannelIo writing(WritableByteChannel out, Duration timeout) throws IOException {
        return new ChannelIo(out, null, out, timeout, SelectionKey.OP_WRITE);
    }

    /** Bytes of the stream read or written so far. */
    long offset() {
        return offset;
    }

    /**
     * Reads until {@code dst} is full.
     *
     * @param expected what the bytes are (a field name), for the error
     * @throws MigrationException if the stream ends first, the channel fails, or no byte comes for the timeout
     */
    void readFully(ByteBuffer dst, String expected) throws MigrationException {
        long deadline = System.nanoTime() + timeoutNanos;
        while (dst.hasRemaining()) {
            int n;
            try {
                n = in.read(dst);
            } catch (IOException e) {
                throw new MigrationException("streamOffset=" + offset + " expected=" + expected
                        + ": reading the stream failed: " + e.getMessage(), e);
            }
            if (n < 0) {
                throw new MigrationException("streamOffset=" + offset + " expected=" + expected
                        + ": the stream ended early (truncated, or the peer closed the channel)");
            }
            if (n > 0) {
                offset += n;
                deadline = System.nanoTime() + timeoutNanos;
            } else {
                await(deadline, expected);
            }
        }
    }

    /**
     * Writes all of {@code src}.
     *
     * @throws MigrationException if the channel fails (a peer that closed it) or takes no byte for the timeout
     */
    void writeFully(ByteBuffer src) throws MigrationException {
        long deadline = System.nanoTime() + timeoutNanos;
        while (src.hasRemaining()) {
            int n;
            try {
                n = out.write(src);
            } catch (IOException e) {
                throw new MigrationException("streamOffset=" + offset + ": writing the stream failed: "
                        + e.getMessage(), e);
            }
            if (n > 0) {
                offset += n;
                deadline = System.nanoTime() + timeoutNanos;
            } else {
                await(deadline, "write");
            }
        }
    }

    /** Waits until the channel is ready again or {@code deadline} (System.nanoTime) passes, then throws. */
    private void await(long deadline, String expected) throws MigrationException {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
            throw new MigrationException("ioTimeout=" + timeout + " streamOffset=" + offset + " expected=" + expected
                    + ": the peer moved no byte for the whole timeout");
        }
        try {
            if (selector != null) {
                selector.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                selector.selectedKeys().clear();
            } else {
                Thread.sleep(1); // a channel that is not selectable and moved nothing: poll it again shortly
            }
        } catch (IOException e) {
            throw new MigrationException("streamOffset=" + offset + ": waiting on the channel failed: "
                    + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MigrationException("streamOffset=" + offset + ": interrupted while waiting on the channel", e);
        }
    }

    /** Puts the channel back in the blocking mode it had; the channel itself stays open (it is the caller's). */
    @Override
    public void close() throws IOException {
        if (selector != null) {
            selector.close(); // deregisters the channel, so its blocking mode can be set again
            restoreBlocking(selectable, wasBlocking);
        }
    }

    private static void restoreBlocking(SelectableChannel sc, boolean blocking) throws IOException {
        if (sc.isOpen() && sc.isBlocking() != blocking) {
            sc.configureBlocking(blocking);
        }
    }
}
