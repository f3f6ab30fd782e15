package dev.guestmem.offheap.vhost;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.internal.linux.Linux;
import dev.guestmem.offheap.internal.linux.Sockets;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * The device side of one split virtqueue of a {@link VhostUserBackend} (libvhost-user's {@code VuVirtq}): its size,
 * base and ring addresses as the front-end set them, a thread that waits on the kick eventfd and serves every newly
 * available request through the backend's {@code Device}, then signals the call eventfd. Descriptors come from guest
 * RAM, so none is trusted: an index outside the ring, a chain longer than the ring or a buffer outside guest RAM stops
 * the ring with a logged reason (and a signal on the error eventfd, if one was given). An access to the ring's own
 * structures (descriptor table, available or used ring) that faults because the front-end truncated the file behind
 * them breaks the device instead, as libvhost-user's {@code vu_panic} does: this ring stops and the backend closes the
 * connection ({@link VhostUserBackend#deviceBroken}).
 *
 * <p>Threading: configured by the backend's server thread while the ring thread is stopped; the ring thread only
 * reads what was set before it started.
 */
final class VhostUserBackendRing {
    private static final System.Logger LOG = System.getLogger(VhostUserBackendRing.class.getName());
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;
    private static final long POLL_MILLIS = 100;

    private final int index;
    private final String socket;
    private int num;
    private int lastAvail;
    private int usedIdx;
    private long desc = -1;
    private long avail = -1;
    private long used = -1;
    private int kick = -1;
    private volatile int call = -1;
    private volatile int err = -1;
    private volatile boolean enabled;
    private volatile boolean running;
    private Thread thread;
    private AddressSpace memory;
    private VhostUserBackend.Device device;
    private VhostUserBackend backend;
    private boolean logUsed;
    private final VringMemory ring = new VringMemory();

    VhostUserBackendRing(int index, String socket) {
        this.index = index;
        this.socket = socket;
    }

    int index() {
        return index;
    }

    void num(int n) throws VhostUserChannel.Failure {
        if (n < 1 || n > 32768 || Integer.bitCount(n) != 1) {
            throw new VhostUserChannel.Failure("request=SET_VRING_NUM index=" + index + " num=" + n
                    + ": not a power of two up to 32768");
        }
        stop();
        num = n;
    }

    void base(int base) {
        stop();
        lastAvail = base & 0xffff;
        usedIdx = lastAvail;
    }

    /** The ring addresses, given as the front-end's process addresses, kept as guest-physical ones. */
    void addresses(VhostUserBackend.Table table, long descUser, long usedUser, long availUser, boolean logUsed)
            throws VhostUserChannel.Failure {
        stop();
        this.logUsed = logUsed;
        if (num == 0) {
            throw new VhostUserChannel.Failure("request=SET_VRING_ADDR index=" + index + ": before SET_VRING_NUM");
        }
        desc = table.guestAddress(descUser, 16L * num);
        avail = table.guestAddress(availUser, 6 + 2L * num);
        used = table.guestAddress(usedUser, 6 + 8L * num);
        if (desc == -1 || avail == -1 || used == -1) {
            throw new VhostUserChannel.Failure("request=SET_VRING_ADDR index=" + index + " desc=" + U64.hex(descUser)
                    + " avail=" + U64.hex(availUser) + " used=" + U64.hex(usedUser)
                    + ": not inside the memory table");
        }
    }

    /** A new kick eventfd (or -1): the ring (re)starts serving, once its addresses are known. */
    void kick(int fd, VhostUserBackend.Device d, VhostUserBackend b) {
        stop();
        closeFd(kick);
        kick = fd;
        device = d;
        backend = b;
        if (fd >= 0 && desc != -1) {
            running = true;
            thread = new Thread(this::run, "vhost-user-backend " + socket + " vring " + index);
            thread.setDaemon(true);
            thread.start();
        }
    }

    void call(int fd) {
        closeFd(call);
        call = fd;
    }

    void err(int fd) {
        closeFd(err);
        err = fd;
    }

    void enable(boolean on) {
        enabled = on;
    }

    /** Stops the ring thread; returns the next available index it would have read (GET_VRING_BASE). */
    int stop() {
        running = false;
        Thread t = thread;
        thread = null;
        if (t != null && t != Thread.currentThread()) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return lastAvail;
    }

    void close() {
        stop();
        closeFd(kick);
        closeFd(call);
        closeFd(err);
        kick = -1;
        call = -1;
        err = -1;
    }

    private void run() {
        while (running) {
            if ((Sockets.poll(kick, Sockets.POLLIN, POLL_MILLIS) & Sockets.POLLIN) == 0) {
                continue;
            }
            Sockets.eventfdRead(kick);
            if (enabled) {
                try {
                    process();
                } catch (VringMemory.Fault e) {
                    // The front-end took memory away under the ring (it truncated the file behind it): as
                    // libvhost-user's vu_panic, the device is broken and stops; the backend closes the connection.
                    running = false;
                    backend.deviceBroken("vring=" + index + ": " + e.getMessage());
                } catch (RuntimeException e) {   // bad descriptors, a device's failure: this ring only
                    running = false;
                    String reason = "socket=" + socket + " vring=" + index + ": stopped: " + e.getMessage();
                    LOG.log(System.Logger.Level.WARNING, reason);
                    backend.ringStopped(reason);
                    if (err >= 0) {
                        Sockets.eventfdWrite(err, 1);
                    }
                }
            }
        }
    }

    private void process() {
        // The table as it is now: a map change since the last kick is seen (the ring's own addresses stay).
        memory = backend.table().memory();
        int availIdx = load16(avail + 2);
        if (((availIdx - lastAvail) & 0xffff) > num) {
            throw new IllegalStateException("avail=" + availIdx + " last=" + lastAvail + " num=" + num
                    + ": more requests available than the ring holds");
        }
        boolean served = false;
        while (lastAvail != availIdx && running) {
            // Read the entries only after the index that published them (virtio's read barrier).
            VarHandle.fullFence();
            int head = load16(avail + 4 + 2L * (lastAvail & (num - 1)));
            List<SplitVirtqueue.Buffer> chain = chain(head);
            int written = device.serve(memory, chain);
            long elem = used + 4 + 8L * (usedIdx & (num - 1));
            VringMemory.store32(memory, elem, head);
            VringMemory.store32(memory, elem + 4, written);
            VhostUserLogWriter log = backend.logWriter();
            if (log != null) {
                logWrites(log, chain, written);
            }
            // The element (and its log bits) before the index that publishes it (virtio's write barrier).
            VarHandle.fullFence();
            usedIdx = (usedIdx + 1) & 0xffff;
            VringMemory.store16(memory, used + 2, usedIdx);
            lastAvail = (lastAvail + 1) & 0xffff;
            served = true;
        }
        int c = call;
        if (served && c >= 0) {
            Sockets.eventfdWrite(c, 1);
        }
    }

    /** Logs the writable buffers up to {@code written} bytes, and the used ring where its address asks for it. */
    private void logWrites(VhostUserLogWriter log, List<SplitVirtqueue.Buffer> chain, long written) {
        long left = written;
        for (SplitVirtqueue.Buffer b : chain) {
            if (b.deviceWrites() && left > 0) {
                long n = Math.min(left, Integer.toUnsignedLong(b.length()));
                log.mark(b.guestAddress(), n);
                left -= n;
            }
        }
        if (logUsed) {
            log.mark(used, 6 + 8L * num);
        }
    }

    /** The buffers of the request whose head is {@code head}; every index and the length checked. */
    private List<SplitVirtqueue.Buffer> chain(int head) {
        List<SplitVirtqueue.Buffer> chain = new ArrayList<>();
        int d = head;
        while (true) {
            if (d < 0 || d >= num || chain.size() == num) {
                throw new IllegalStateException("head=" + head + " descriptor=" + d + " num=" + num
                        + ": a descriptor chain outside the ring or looping");
            }
            long at = desc + 16L * d;
            long addr = load64(at);
            int len = load32(at + 8);
            int flags = load16(at + 12);
            if (len < 0 || !memory.accessValid(addr, Math.max(len, 1), (flags & 2) != 0, ATTRS)) {
                throw new IllegalStateException("descriptor=" + d + " addr=" + U64.hex(addr) + " len="
                        + Integer.toUnsignedString(len) + ": a buffer outside guest RAM");
            }
            chain.add(new SplitVirtqueue.Buffer(addr, len, (flags & 2) != 0));
            if ((flags & 1) == 0) {
                return chain;
            }
            d = load16(at + 14);
        }
    }

    private int load16(long addr) {
        return ring.load16(memory, addr);
    }

    private int load32(long addr) {
        return ring.load32(memory, addr);
    }

    private long load64(long addr) {
        return ring.load64(memory, addr);
    }

    private static void closeFd(int fd) {
        if (fd >= 0) {
            Linux.close(fd);
        }
    }
}
