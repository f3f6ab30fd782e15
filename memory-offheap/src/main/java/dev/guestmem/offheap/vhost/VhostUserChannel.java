package dev.guestmem.offheap.vhost;

import dev.guestmem.offheap.ErrnoException;
import dev.guestmem.offheap.internal.linux.Linux;
import dev.guestmem.offheap.internal.linux.Sockets;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Framing of vhost-user messages on a connected Unix stream socket: a 12-byte header (request, flags, payload size,
 * little-endian u32s), the payload, and descriptors passed with {@code SCM_RIGHTS} alongside the header. Every wait
 * is a {@code poll} bounded by a deadline; whatever goes wrong (end of stream, a deadline passed, a frame too big,
 * descriptors where none may come) is a {@link Failure} with a one-line reason, and descriptors that arrived with a
 * bad frame are closed before it is thrown.
 *
 * <p>Threading: one thread at a time (the {@link VhostUserFrontend} serializes its requests).
 */
final class VhostUserChannel implements AutoCloseable {
    static final int HEADER_SIZE = 12;
    /** No message this front-end exchanges has a bigger payload (a GET_CONFIG reply is at most 12 + 256 bytes). */
    static final int MAX_PAYLOAD = 4096;
    /** The most descriptors a vhost-user message carries (VHOST_MEMORY_BASELINE_NREGIONS). */
    static final int MAX_FDS = 8;

    static final int VERSION = 0x1;
    static final int FLAG_REPLY = 0x4;
    static final int FLAG_NEED_REPLY = 0x8;

    /** A received message; its descriptors belong to whoever takes it. */
    record Message(int request, int flags, byte[] payload, int[] fds) {
        ByteBuffer body() {
            return ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    /** The channel can't go on: the reason, in one line. */
    static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;

        Failure(String reason) {
            super(reason, null, false, false);
        }

        Failure(String reason, Throwable cause) {
            super(reason, cause, false, false);
        }
    }

    private final int fd;
    private boolean closed;

    VhostUserChannel(int fd) {
        this.fd = fd;
    }

    int fd() {
        return fd;
    }

    /** Sends one message, waiting for room in the socket until {@code deadline} ({@link System#nanoTime()}). */
    void send(int request, int flags, byte[] payload, int[] fds, long deadline) throws Failure {
        byte[] frame = new byte[HEADER_SIZE + payload.length];
        ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN).putInt(request).putInt(flags).putInt(payload.length)
                .put(payload);
        int sent = 0;
        int[] attach = fds;
        while (sent < frame.length) {
            long n;
            try {
                n = Sockets.sendmsg(fd, frame, sent, frame.length - sent, attach);
            } catch (ErrnoException e) {
                throw new Failure("send failed: " + e.getMessage(), e);
            }
            if (n < 0) {
                await(Sockets.POLLOUT, deadline, "room to send");
                continue;
            }
            sent += (int) n;
            attach = new int[0];   // the descriptors went with the first byte
        }
    }

    /** Receives one whole message, waiting until {@code deadline} ({@link System#nanoTime()}) for every part of it. */
    Message receive(long deadline) throws Failure {
        byte[] header = new byte[HEADER_SIZE];
        int[] fds = read(header, HEADER_SIZE, deadline, true);
        try {
            ByteBuffer h = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
            int request = h.getInt();
            int flags = h.getInt();
            int size = h.getInt();
            if (size < 0 || size > MAX_PAYLOAD) {
                throw new Failure("request=" + VhostUserRequest.name(request) + " size="
                        + Integer.toUnsignedString(size) + " max=" + MAX_PAYLOAD + ": payload too big");
            }
            byte[] payload = new byte[size];
            read(payload, size, deadline, false);
            return new Message(request, flags, payload, fds);
        } catch (Failure f) {
            closeAll(fds);
            throw f;
        }
    }

    /** Reads exactly {@code len} bytes; descriptors only with the first part when {@code fdsAllowed}. */
    private int[] read(byte[] into, int len, long deadline, boolean fdsAllowed) throws Failure {
        int got = 0;
        int[] fds = new int[0];
        while (got < len) {
            Sockets.Received r;
            try {
                r = Sockets.recvmsg(fd, into, got, len - got, MAX_FDS);
            } catch (ErrnoException e) {
                closeAll(fds);
                throw new Failure("receive failed: " + e.getMessage(), e);
            }
            if (r.fds().length > 0 || r.controlTruncated()) {
                int[] more = new int[fds.length + r.fds().length];
                System.arraycopy(fds, 0, more, 0, fds.length);
                System.arraycopy(r.fds(), 0, more, fds.length, r.fds().length);
                fds = more;
                if (!fdsAllowed || got > 0 || r.controlTruncated()) {
                    closeAll(fds);
                    throw new Failure("fds=" + fds.length + (r.controlTruncated() ? "+" : "")
                            + ": descriptors where the protocol allows none");
                }
            }
            if (r.bytes() == 0) {
                closeAll(fds);
                throw new Failure("bytes=" + got + " of " + len + ": the backend closed the connection");
            }
            if (r.bytes() < 0) {
                try {
                    await(Sockets.POLLIN, deadline, got == 0 && fdsAllowed ? "the reply" : "the rest of the message");
                } catch (Failure f) {
                    closeAll(fds);
                    throw f;
                }
                continue;
            }
            got += (int) r.bytes();
        }
        return fds;
    }

    private void await(int events, long deadline, String what) throws Failure {
        long left = (deadline - System.nanoTime()) / 1_000_000L;
        int revents = left <= 0 ? 0 : Sockets.poll(fd, events, left);
        if (revents == 0) {
            throw new Failure("timeout: waited in vain for " + what);
        }
        if ((revents & (Sockets.POLLERR | Sockets.POLLNVAL)) != 0 && (revents & events) == 0) {
            throw new Failure("poll revents=0x" + Integer.toHexString(revents) + ": the socket failed");
        }
    }

    static void closeAll(int[] fds) {
        for (int f : fds) {
            Linux.close(f);
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Linux.close(fd);
        }
    }
}
