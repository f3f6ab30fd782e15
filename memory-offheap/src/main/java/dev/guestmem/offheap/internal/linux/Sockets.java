package dev.guestmem.offheap.internal.linux;

import static dev.guestmem.offheap.internal.linux.Linux.downcall;
import static dev.guestmem.offheap.internal.linux.Linux.failure;
import static dev.guestmem.offheap.internal.linux.Linux.hex;
import static dev.guestmem.offheap.internal.linux.Linux.state;
import static dev.guestmem.offheap.internal.linux.Linux.unexpected;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The Unix-socket, eventfd and poll calls of memory-offheap as FFM downcalls, for vhost-user: {@code AF_UNIX} stream
 * sockets that pass file descriptors with {@code SCM_RIGHTS} (which Java's {@code SocketChannel} cannot), eventfds
 * for virtqueue kicks and calls, {@code poll} so that no read waits without a timeout, and {@code SO_PEERCRED}.
 * Errors are {@link dev.guestmem.offheap.ErrnoException}s naming the call, as in {@link Linux}; {@code EINTR} is
 * retried, and {@code EAGAIN} of the non-blocking calls is a return value, not an error.
 *
 * <p>Layouts are x86_64 Linux's: {@code struct msghdr} (56 bytes), {@code struct cmsghdr} (16-byte header),
 * {@code struct iovec}, {@code struct sockaddr_un} (110 bytes), {@code struct pollfd}, {@code struct ucred}. Every
 * socket and eventfd is made close-on-exec, and every fd received is too ({@code MSG_CMSG_CLOEXEC}), so that no
 * child process inherits them. Threading: every method is safe on any thread.
 */
public final class Sockets {
    public static final int POLLIN = 0x1;
    public static final int POLLOUT = 0x4;
    public static final int POLLERR = 0x8;
    public static final int POLLHUP = 0x10;
    public static final int POLLNVAL = 0x20;

    public static final int EFD_NONBLOCK = 0x800;
    public static final int EFD_CLOEXEC = 0x80000;

    /** The most descriptors one message may carry (the kernel's SCM_MAX_FD is 253; vhost-user sends at most 8). */
    public static final int MAX_FDS = 32;

    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int SO_PEERCRED = 17;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int F_DUPFD_CLOEXEC = 1030;

    /** struct sockaddr_un: sa_family_t (2 bytes), then sun_path[108]. */
    private static final int SOCKADDR_UN_SIZE = 110;
    private static final int SUN_PATH_MAX = 108;
    /** struct msghdr on x86_64. */
    private static final long MSGHDR_SIZE = 56;
    private static final long MSG_IOV = 16;
    private static final long MSG_IOVLEN = 24;
    private static final long MSG_CONTROL = 32;
    private static final long MSG_CONTROLLEN = 40;
    private static final long MSG_FLAGS = 48;
    /** struct cmsghdr on x86_64: size_t cmsg_len, int cmsg_level, int cmsg_type, then the data, 8-byte aligned. */
    private static final long CMSG_HDR = 16;

    private static final MethodHandle SOCKET =
            downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CONNECT =
            downcall("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle BIND =
            downcall("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = downcall("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT4 =
            downcall("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG =
            downcall("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle RECVMSG =
            downcall("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle POLL = downcall("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG,
            JAVA_INT));
    private static final MethodHandle EVENTFD = downcall("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle READ =
            downcall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE =
            downcall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle GETSOCKOPT = downcall("getsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));

    private Sockets() {
    }

    /** The credentials of a socket's peer as the kernel recorded them at connect time ({@code struct ucred}). */
    public record PeerCredentials(int pid, int uid, int gid) {
    }

    /**
     * What one {@link #recvmsg} got.
     *
     * @param bytes            bytes read; 0 at end of stream, -1 when nothing was there ({@code EAGAIN})
     * @param fds              descriptors that came with them, now owned by the caller (close-on-exec)
     * @param controlTruncated the peer sent more descriptors than fitted ({@code MSG_CTRUNC}); the kernel closed the
     *                         rest
     */
    public record Received(long bytes, int[] fds, boolean controlTruncated) {
    }

    /** {@code socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)}; returns the fd. */
    public static int unixStreamSocket() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            int fd = (int) SOCKET.invokeExact(state, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                throw failure(state, "socket(domain=AF_UNIX, type=STREAM|CLOEXEC)");
            }
            return fd;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code connect} to the socket file at {@code path}. */
    public static void connect(int fd, String path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            int r;
            do {
                r = (int) CONNECT.invokeExact(state, fd, sockaddr(arena, path), SOCKADDR_UN_SIZE);
            } while (r != 0 && interrupted(state));
            if (r != 0) {
                throw failure(state, "connect(fd=" + fd + ", path=" + path + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code bind} to a new socket file at {@code path}. */
    public static void bind(int fd, String path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            if ((int) BIND.invokeExact(state, fd, sockaddr(arena, path), SOCKADDR_UN_SIZE) != 0) {
                throw failure(state, "bind(fd=" + fd + ", path=" + path + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code listen}. */
    public static void listen(int fd, int backlog) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            if ((int) LISTEN.invokeExact(state, fd, backlog) != 0) {
                throw failure(state, "listen(fd=" + fd + ", backlog=" + backlog + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code accept4(fd, NULL, NULL, SOCK_CLOEXEC)}; returns the connection's fd. Blocks: {@link #poll} first. */
    public static int accept(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            int r;
            do {
                r = (int) ACCEPT4.invokeExact(state, fd, MemorySegment.NULL, MemorySegment.NULL, SOCK_CLOEXEC);
            } while (r < 0 && interrupted(state));
            if (r < 0) {
                throw failure(state, "accept4(fd=" + fd + ")");
            }
            return r;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * {@code sendmsg(MSG_DONTWAIT | MSG_NOSIGNAL)} of {@code data[off, off + len)} with {@code fds} attached as one
     * {@code SCM_RIGHTS} message (none if empty). A peer that has gone is an {@code EPIPE} error, never a SIGPIPE.
     *
     * @return bytes sent (the descriptors go with the first byte), or -1 if the socket's buffer is full
     */
    public static long sendmsg(int fd, byte[] data, int off, int len, int[] fds) {
        if (fds.length > MAX_FDS) {
            throw new IllegalArgumentException("fds=" + fds.length + " max=" + MAX_FDS + ": too many descriptors");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            MemorySegment buf = arena.allocate(Math.max(len, 1));
            MemorySegment.copy(data, off, buf, JAVA_BYTE, 0, len);
            MemorySegment msg = message(arena, buf, len);
            if (fds.length > 0) {
                long space = cmsgSpace(fds.length);
                MemorySegment control = arena.allocate(space, 8);
                control.set(JAVA_LONG, 0, CMSG_HDR + 4L * fds.length);
                control.set(JAVA_INT, 8, SOL_SOCKET);
                control.set(JAVA_INT, 12, SCM_RIGHTS);
                for (int i = 0; i < fds.length; i++) {
                    control.set(JAVA_INT, CMSG_HDR + 4L * i, fds[i]);
                }
                msg.set(ADDRESS, MSG_CONTROL, control);
                msg.set(JAVA_LONG, MSG_CONTROLLEN, space);
            }
            long r;
            do {
                r = (long) SENDMSG.invokeExact(state, fd, msg, MSG_DONTWAIT | MSG_NOSIGNAL);
            } while (r < 0 && interrupted(state));
            if (r < 0) {
                if (wouldBlock(state)) {
                    return -1;
                }
                throw failure(state, "sendmsg(fd=" + fd + ", len=" + len + ", fds=" + fds.length + ")");
            }
            return r;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * {@code recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC)} of at most {@code len} bytes into {@code into[off..]}, taking
     * up to {@code maxFds} descriptors; any {@code SCM_RIGHTS} beyond that are closed by the kernel and reported as
     * {@link Received#controlTruncated}.
     */
    public static Received recvmsg(int fd, byte[] into, int off, int len, int maxFds) {
        if (maxFds < 0 || maxFds > MAX_FDS) {
            throw new IllegalArgumentException("maxFds=" + maxFds + " max=" + MAX_FDS + ": out of range");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            MemorySegment buf = arena.allocate(Math.max(len, 1));
            MemorySegment msg = message(arena, buf, len);
            long space = cmsgSpace(Math.max(maxFds, 1));
            MemorySegment control = arena.allocate(space, 8);
            msg.set(ADDRESS, MSG_CONTROL, control);
            msg.set(JAVA_LONG, MSG_CONTROLLEN, space);
            long r;
            do {
                r = (long) RECVMSG.invokeExact(state, fd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
            } while (r < 0 && interrupted(state));
            if (r < 0) {
                if (wouldBlock(state)) {
                    return new Received(-1, new int[0], false);
                }
                throw failure(state, "recvmsg(fd=" + fd + ", len=" + len + ")");
            }
            MemorySegment.copy(buf, JAVA_BYTE, 0, into, off, (int) r);
            int[] fds = receivedFds(control, msg.get(JAVA_LONG, MSG_CONTROLLEN));
            boolean truncated = (msg.get(JAVA_INT, MSG_FLAGS) & MSG_CTRUNC) != 0;
            if (fds.length > maxFds) {
                // The control buffer is 8-byte aligned, so it may hold one descriptor more than was asked for.
                for (int i = maxFds; i < fds.length; i++) {
                    Linux.close(fds[i]);
                }
                fds = Arrays.copyOf(fds, maxFds);
                truncated = true;
            }
            return new Received(r, fds, truncated);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * {@code poll} on one fd for {@code events}, waiting at most {@code timeoutMillis} (0: don't wait); an
     * {@code EINTR} waits again for what is left of the time.
     *
     * @return the returned events ({@code revents}), 0 if the time ran out
     */
    public static int poll(int fd, int events, long timeoutMillis) {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            MemorySegment pfd = arena.allocate(8, 4);
            while (true) {
                pfd.set(JAVA_INT, 0, fd);
                pfd.set(JAVA_SHORT, 4, (short) events);
                pfd.set(JAVA_SHORT, 6, (short) 0);
                long left = Math.max(0, (deadline - System.nanoTime()) / 1_000_000L);
                int r = (int) POLL.invokeExact(state, pfd, 1L, (int) Math.min(left, Integer.MAX_VALUE));
                if (r > 0) {
                    return pfd.get(JAVA_SHORT, 6) & 0xffff;
                }
                if (r == 0) {
                    return 0;
                }
                if (!interrupted(state)) {
                    throw failure(state, "poll(fd=" + fd + ", events=" + hex(events) + ")");
                }
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code eventfd(initval, flags)}; returns the fd. */
    public static int eventfd(int initval, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            int fd = (int) EVENTFD.invokeExact(state, initval, flags);
            if (fd < 0) {
                throw failure(state, "eventfd(initval=" + initval + ", flags=" + hex(flags) + ")");
            }
            return fd;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** Reads (and so resets) an eventfd's counter: its value, or 0 if a non-blocking eventfd was not signalled. */
    public static long eventfdRead(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            MemorySegment value = arena.allocate(JAVA_LONG);
            long r;
            do {
                r = (long) READ.invokeExact(state, fd, value, 8L);
            } while (r < 0 && interrupted(state));
            if (r < 0 && wouldBlock(state)) {
                return 0;
            }
            if (r != 8) {
                throw failure(state, "read(eventfd=" + fd + ")");
            }
            return value.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** Adds {@code value} to an eventfd's counter, which wakes whoever polls it. */
    public static void eventfdWrite(int fd, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            MemorySegment v = arena.allocate(JAVA_LONG);
            v.set(JAVA_LONG, 0, value);
            long r;
            do {
                r = (long) WRITE.invokeExact(state, fd, v, 8L);
            } while (r < 0 && interrupted(state));
            if (r != 8) {
                throw failure(state, "write(eventfd=" + fd + ", value=" + value + ")");
            }
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code fcntl(fd, F_DUPFD_CLOEXEC, 0)}: a second, close-on-exec descriptor for the same file. */
    public static int dup(int fd) {
        return Linux.fcntl(fd, F_DUPFD_CLOEXEC, 0);
    }

    /** {@code getsockopt(SOL_SOCKET, SO_PEERCRED)}: who is at the other end of a connected Unix socket. */
    public static PeerCredentials peerCredentials(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = state(arena);
            MemorySegment cred = arena.allocate(12, 4);
            MemorySegment len = arena.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, 12);
            if ((int) GETSOCKOPT.invokeExact(state, fd, SOL_SOCKET, SO_PEERCRED, cred, len) != 0) {
                throw failure(state, "getsockopt(fd=" + fd + ", opt=SO_PEERCRED)");
            }
            return new PeerCredentials(cred.get(JAVA_INT, 0), cred.get(JAVA_INT, 4), cred.get(JAVA_INT, 8));
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    private static MemorySegment sockaddr(Arena arena, String path) {
        byte[] bytes = path.getBytes(StandardCharsets.UTF_8);
        if (bytes.length >= SUN_PATH_MAX || bytes.length == 0) {
            throw new IllegalArgumentException("path=" + path + " length=" + bytes.length + " max="
                    + (SUN_PATH_MAX - 1) + ": not a usable Unix socket path");
        }
        MemorySegment sa = arena.allocate(SOCKADDR_UN_SIZE, 2);
        sa.set(JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, sa, JAVA_BYTE, 2, bytes.length);
        return sa;
    }

    /** A msghdr with one iovec over {@code buf}'s first {@code len} bytes and no control data yet. */
    private static MemorySegment message(Arena arena, MemorySegment buf, long len) {
        MemorySegment iov = arena.allocate(16, 8);
        iov.set(ADDRESS, 0, buf);
        iov.set(JAVA_LONG, 8, len);
        MemorySegment msg = arena.allocate(MSGHDR_SIZE, 8);
        msg.set(ADDRESS, MSG_IOV, iov);
        msg.set(JAVA_LONG, MSG_IOVLEN, 1);
        return msg;
    }

    private static long cmsgSpace(int fds) {
        return CMSG_HDR + ((4L * fds + 7) & ~7L);
    }

    /** Every descriptor of every SCM_RIGHTS header in the first {@code length} bytes of the control buffer. */
    private static int[] receivedFds(MemorySegment control, long length) {
        int[] fds = new int[0];
        long at = 0;
        while (at + CMSG_HDR <= length) {
            long cmsgLen = control.get(JAVA_LONG, at);
            if (cmsgLen < CMSG_HDR || at + cmsgLen > length) {
                break;
            }
            if (control.get(JAVA_INT, at + 8) == SOL_SOCKET && control.get(JAVA_INT, at + 12) == SCM_RIGHTS) {
                int n = (int) ((cmsgLen - CMSG_HDR) / 4);
                int[] more = new int[fds.length + n];
                System.arraycopy(fds, 0, more, 0, fds.length);
                for (int i = 0; i < n; i++) {
                    more[fds.length + i] = control.get(JAVA_INT, at + CMSG_HDR + 4L * i);
                }
                fds = more;
            }
            at += (cmsgLen + 7) & ~7L;
        }
        return fds;
    }

    private static boolean interrupted(MemorySegment state) {
        return Linux.errno(state) == Errno.EINTR;
    }

    private static boolean wouldBlock(MemorySegment state) {
        return Linux.errno(state) == Errno.EAGAIN;
    }
}
