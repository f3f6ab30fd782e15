package dev.guestmem.offheap.vhost;

import dev.guestmem.memory.U64;
import dev.guestmem.offheap.ErrnoException;
import dev.guestmem.offheap.internal.linux.Linux;
import dev.guestmem.offheap.internal.linux.Sockets;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Predicate;

/**
 * The front-end side of one vhost-user connection (QEMU's {@code hw/virtio/vhost-user.c} with its {@code CharBackend}):
 * a Unix socket to a device backend in another process, and the protocol's requests as methods. Each request waits
 * for its reply (or, once {@link #PROTOCOL_F_REPLY_ACK} is negotiated, for the acknowledgement of a request that has
 * none) at most the connection's timeout, and the reply is checked: its request, its flags (version 1, a reply), its
 * size, and that it carries no descriptors.
 *
 * <p>A backend that fails those checks, closes the socket, or answers too late gets its connection closed: the
 * reason is logged once ({@link System.Logger} of this class, WARNING) and thrown to the thread that made the
 * request as a {@link VhostUserException}; every later request throws it again. Nothing else is touched: guest RAM,
 * the map and other connections go on. A backend that refuses a request in its REPLY_ACK only fails that request.
 *
 * <p>Threading: requests are serialized on this object, so any thread may make them; {@link #close()} may come from
 * any thread.
 */
public final class VhostUserFrontend implements AutoCloseable {
    /** VIRTIO_F_VERSION_1: a virtio 1.0 (little-endian) device. */
    public static final long VIRTIO_F_VERSION_1 = 1L << 32;
    /** VHOST_USER_F_PROTOCOL_FEATURES: the backend has protocol features; rings start disabled. */
    public static final long VHOST_USER_F_PROTOCOL_FEATURES = 1L << 30;
    /** VHOST_F_LOG_ALL: the backend logs the guest memory it writes into the shared dirty log. */
    public static final long VHOST_F_LOG_ALL = 1L << 26;

    public static final long PROTOCOL_F_MQ = 1L;
    public static final long PROTOCOL_F_LOG_SHMFD = 1L << 1;
    public static final long PROTOCOL_F_REPLY_ACK = 1L << 3;
    public static final long PROTOCOL_F_CONFIG = 1L << 9;
    public static final long PROTOCOL_F_RESET_DEVICE = 1L << 13;
    public static final long PROTOCOL_F_CONFIGURE_MEM_SLOTS = 1L << 15;

    /** The memory table of SET_MEM_TABLE holds at most this many regions (VHOST_MEMORY_BASELINE_NREGIONS). */
    public static final int MEM_TABLE_MAX_REGIONS = 8;
    /** A device's config space is at most this many bytes (VHOST_USER_MAX_CONFIG_SIZE). */
    public static final int MAX_CONFIG_SIZE = 256;
    /** SET_VRING_ADDR flag: the backend logs used-ring writes at the ring's guest address (VHOST_VRING_F_LOG). */
    public static final int VRING_F_LOG = 1;

    private static final System.Logger LOG = System.getLogger(VhostUserFrontend.class.getName());
    /** A vring descriptor request's payload: the index in bits 0-7, and this bit when no descriptor is passed. */
    private static final long VRING_NOFD = 1L << 8;
    private static final int MEM_REGION_SIZE = 32;
    private static final int CONFIG_HEADER = 12;

    private final String socket;
    private final long timeoutNanos;
    private final VhostUserChannel channel;
    /** Written under this object's lock; read by any thread. */
    private volatile String closedReason;
    /** Protocol features set with SET_PROTOCOL_FEATURES; guarded by this. */
    private long protocolFeatures;
    /** Features set with SET_FEATURES; guarded by this. */
    private long features;

    private VhostUserFrontend(String socket, int fd, Duration timeout) {
        this.socket = socket;
        this.channel = new VhostUserChannel(fd);
        this.timeoutNanos = timeout.toNanos();
    }

    /**
     * Connects to the backend listening at {@code socket}, and checks who it is before any byte is sent.
     *
     * @param timeout       how long each request waits for its reply
     * @param peerPolicy    the backend process's credentials ({@code SO_PEERCRED}) that are accepted, e.g.
     *                      {@link VhostUserPeer#sameUser()}
     * @throws IllegalArgumentException for a path that is not a connectable socket, a peer the policy refuses or a
     *                                  timeout that is not positive
     */
    public static VhostUserFrontend connect(Path socket, Duration timeout,
                                            Predicate<VhostUserPeer> peerPolicy) {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout=" + timeout + ": must be positive");
        }
        Linux.checkPlatform();
        int fd = Sockets.unixStreamSocket();
        try {
            Sockets.connect(fd, socket.toString());
            Sockets.PeerCredentials cred = Sockets.peerCredentials(fd);
            VhostUserPeer peer = new VhostUserPeer(cred.pid(), cred.uid(), cred.gid());
            if (!peerPolicy.test(peer)) {
                throw new IllegalArgumentException("socket=" + socket + " pid=" + peer.pid() + " uid=" + peer.uid()
                        + ": the peer policy refuses this backend");
            }
            return new VhostUserFrontend(socket.toString(), fd, timeout);
        } catch (ErrnoException e) {
            Linux.close(fd);
            throw new IllegalArgumentException("socket=" + socket + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            Linux.close(fd);
            throw e;
        }
    }

    /** The socket path, for messages. */
    public String socket() {
        return socket;
    }

    /** Whether the connection is still usable. */
    public boolean isOpen() {
        return closedReason == null;
    }

    /** Why the connection was closed, or null while it is open. */
    public String closedReason() {
        return closedReason;
    }

    /** The protocol features in effect (as last set), 0 before SET_PROTOCOL_FEATURES. */
    public synchronized long protocolFeatures() {
        return protocolFeatures;
    }

    /** The features in effect (as last set), 0 before SET_FEATURES. */
    public synchronized long features() {
        return features;
    }

    // ---------------------------------------------------------------- negotiation and ownership

    /** GET_FEATURES: the virtio and vhost feature bits the backend offers. */
    public synchronized long getFeatures() {
        return u64(call(VhostUserRequest.GET_FEATURES, new byte[0], null, 8));
    }

    /** SET_FEATURES: the feature bits the front-end accepts (a subset of {@link #getFeatures()}). */
    public synchronized void setFeatures(long accepted) {
        call(VhostUserRequest.SET_FEATURES, u64Payload(accepted), null, -1);
        features = accepted;
    }

    /** GET_PROTOCOL_FEATURES: needs {@link #VHOST_USER_F_PROTOCOL_FEATURES} in {@link #getFeatures()}. */
    public synchronized long getProtocolFeatures() {
        return u64(call(VhostUserRequest.GET_PROTOCOL_FEATURES, new byte[0], null, 8));
    }

    /** SET_PROTOCOL_FEATURES; from then on, with REPLY_ACK, every request without a reply waits for an ack. */
    public synchronized void setProtocolFeatures(long accepted) {
        call(VhostUserRequest.SET_PROTOCOL_FEATURES, u64Payload(accepted), null, -1);
        protocolFeatures = accepted;
    }

    /** SET_OWNER: this connection's front-end owns the device. */
    public void setOwner() {
        call(VhostUserRequest.SET_OWNER, new byte[0], null, -1);
    }

    /** RESET_OWNER (deprecated by the protocol, kept for old backends). */
    public void resetOwner() {
        call(VhostUserRequest.RESET_OWNER, new byte[0], null, -1);
    }

    /** RESET_DEVICE: needs {@link #PROTOCOL_F_RESET_DEVICE}. */
    public void resetDevice() {
        requireProtocol(PROTOCOL_F_RESET_DEVICE, VhostUserRequest.RESET_DEVICE);
        call(VhostUserRequest.RESET_DEVICE, new byte[0], null, -1);
    }

    /** GET_QUEUE_NUM: how many queues the backend supports; needs {@link #PROTOCOL_F_MQ}. */
    public long getQueueNum() {
        requireProtocol(PROTOCOL_F_MQ, VhostUserRequest.GET_QUEUE_NUM);
        return u64(call(VhostUserRequest.GET_QUEUE_NUM, new byte[0], null, 8));
    }

    /** GET_MAX_MEM_SLOTS: how many regions ADD_MEM_REG may add; needs {@link #PROTOCOL_F_CONFIGURE_MEM_SLOTS}. */
    public long getMaxMemSlots() {
        requireProtocol(PROTOCOL_F_CONFIGURE_MEM_SLOTS, VhostUserRequest.GET_MAX_MEM_SLOTS);
        return u64(call(VhostUserRequest.GET_MAX_MEM_SLOTS, new byte[0], null, 8));
    }

    /** GET_CONFIG: {@code size} bytes of the device's config space from {@code offset}; needs CONFIG. */
    public byte[] getConfig(int offset, int size) {
        requireProtocol(PROTOCOL_F_CONFIG, VhostUserRequest.GET_CONFIG);
        checkConfig(offset, size);
        ByteBuffer p = payload(CONFIG_HEADER + size).putInt(offset).putInt(size).putInt(0);
        byte[] reply = call(VhostUserRequest.GET_CONFIG, p.array(), null, CONFIG_HEADER + size);
        ByteBuffer r = ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN);
        if (r.getInt() != offset || r.getInt() != size) {
            throw failed(VhostUserRequest.GET_CONFIG, "reply offset=" + r.getInt(0) + " size=" + r.getInt(4)
                    + " expected offset=" + offset + " size=" + size);
        }
        byte[] data = new byte[size];
        System.arraycopy(reply, CONFIG_HEADER, data, 0, size);
        return data;
    }

    /** SET_CONFIG: writes {@code data} into the device's config space at {@code offset}; needs CONFIG. */
    public void setConfig(int offset, byte[] data) {
        requireProtocol(PROTOCOL_F_CONFIG, VhostUserRequest.SET_CONFIG);
        checkConfig(offset, data.length);
        ByteBuffer p = payload(CONFIG_HEADER + data.length).putInt(offset).putInt(data.length).putInt(0).put(data);
        call(VhostUserRequest.SET_CONFIG, p.array(), null, -1);
    }

    // ---------------------------------------------------------------- memory

    /** SET_MEM_TABLE: the whole memory table, each region's descriptor attached. */
    public void setMemTable(List<VhostUserMemoryRegion> regions) {
        if (regions.size() > MEM_TABLE_MAX_REGIONS) {
            throw new IllegalArgumentException("socket=" + socket + " regions=" + regions.size() + " max="
                    + MEM_TABLE_MAX_REGIONS + ": too many regions for SET_MEM_TABLE");
        }
        ByteBuffer p = payload(8 + MEM_REGION_SIZE * regions.size()).putInt(regions.size()).putInt(0);
        int[] fds = new int[regions.size()];
        for (int i = 0; i < fds.length; i++) {
            putRegion(p, regions.get(i));
            fds[i] = regions.get(i).fd();
        }
        call(VhostUserRequest.SET_MEM_TABLE, p.array(), fds, -1);
    }

    /** ADD_MEM_REG: one more region, its descriptor attached; needs CONFIGURE_MEM_SLOTS. */
    public void addMemReg(VhostUserMemoryRegion region) {
        memReg(VhostUserRequest.ADD_MEM_REG, region);
    }

    /** REM_MEM_REG: a region added before goes away (its descriptor is attached, as QEMU sends it). */
    public void remMemReg(VhostUserMemoryRegion region) {
        memReg(VhostUserRequest.REM_MEM_REG, region);
    }

    private void memReg(VhostUserRequest request, VhostUserMemoryRegion region) {
        requireProtocol(PROTOCOL_F_CONFIGURE_MEM_SLOTS, request);
        ByteBuffer p = payload(8 + MEM_REGION_SIZE).putLong(0);
        putRegion(p, region);
        call(request, p.array(), new int[] {region.fd()}, -1);
    }

    /**
     * SET_LOG_BASE: the shared dirty log, {@code size} bytes of the file behind {@code fd} from {@code offset}, one
     * bit per 4 KiB page of guest-physical address; needs {@link #PROTOCOL_F_LOG_SHMFD}. The backend answers it.
     */
    public void setLogBase(int fd, long size, long offset) {
        requireProtocol(PROTOCOL_F_LOG_SHMFD, VhostUserRequest.SET_LOG_BASE);
        byte[] p = payload(16).putLong(size).putLong(offset).array();
        call(VhostUserRequest.SET_LOG_BASE, p, new int[] {fd}, 8);
    }

    // ---------------------------------------------------------------- vrings

    /** SET_VRING_NUM: the ring's size in descriptors. */
    public void setVringNum(int index, int num) {
        call(VhostUserRequest.SET_VRING_NUM, payload(8).putInt(index).putInt(num).array(), null, -1);
    }

    /** SET_VRING_BASE: the next available-ring index the backend reads. */
    public void setVringBase(int index, int base) {
        call(VhostUserRequest.SET_VRING_BASE, payload(8).putInt(index).putInt(base).array(), null, -1);
    }

    /** GET_VRING_BASE: stops the ring and returns the next available-ring index the backend would have read. */
    public int getVringBase(int index) {
        byte[] r = call(VhostUserRequest.GET_VRING_BASE, payload(8).putInt(index).putInt(0).array(), null, 8);
        ByteBuffer b = ByteBuffer.wrap(r).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt() != index) {
            throw failed(VhostUserRequest.GET_VRING_BASE, "reply index=" + b.getInt(0) + " expected=" + index);
        }
        return b.getInt();
    }

    /**
     * SET_VRING_ADDR: where the ring's parts are. The three ring addresses are this process's addresses of guest RAM
     * that the memory table covers (QEMU's vhost sends its own); {@code logGuestAddress} is the used ring's
     * guest-physical address, for {@link #VRING_F_LOG}.
     */
    public void setVringAddr(int index, int flags, long descUser, long usedUser, long availUser,
                             long logGuestAddress) {
        byte[] p = payload(40).putInt(index).putInt(flags).putLong(descUser).putLong(usedUser).putLong(availUser)
                .putLong(logGuestAddress).array();
        call(VhostUserRequest.SET_VRING_ADDR, p, null, -1);
    }

    /** SET_VRING_KICK: the eventfd the front-end signals when it made buffers available; -1 for none (polling). */
    public void setVringKick(int index, int eventfd) {
        vringFd(VhostUserRequest.SET_VRING_KICK, index, eventfd);
    }

    /** SET_VRING_CALL: the eventfd the backend signals when it used buffers; -1 for none. */
    public void setVringCall(int index, int eventfd) {
        vringFd(VhostUserRequest.SET_VRING_CALL, index, eventfd);
    }

    /** SET_VRING_ERR: the eventfd the backend signals on a ring error; -1 for none. */
    public void setVringErr(int index, int eventfd) {
        vringFd(VhostUserRequest.SET_VRING_ERR, index, eventfd);
    }

    private void vringFd(VhostUserRequest request, int index, int eventfd) {
        if (index < 0 || index > 0xff) {
            throw new IllegalArgumentException("socket=" + socket + " index=" + index + ": a vring index is 0..255");
        }
        long v = index | (eventfd < 0 ? VRING_NOFD : 0);
        call(request, u64Payload(v), eventfd < 0 ? null : new int[] {eventfd}, -1);
    }

    /** SET_VRING_ENABLE: with protocol features, rings start disabled until enabled here. */
    public void setVringEnable(int index, boolean enable) {
        call(VhostUserRequest.SET_VRING_ENABLE, payload(8).putInt(index).putInt(enable ? 1 : 0).array(), null, -1);
    }

    // ---------------------------------------------------------------- the exchange

    /**
     * Sends one request and, when it has a reply ({@code replySize >= 0}) or REPLY_ACK is in effect, receives and
     * checks it.
     *
     * @return the reply's payload, or null for a request without one
     */
    private synchronized byte[] call(VhostUserRequest request, byte[] payload, int[] fds, int replySize) {
        String reason = closedReason;
        if (reason != null) {
            throw new VhostUserException("socket=" + socket + " request=" + request + ": connection closed ("
                    + reason + ")");
        }
        boolean ack = replySize < 0 && (protocolFeatures & PROTOCOL_F_REPLY_ACK) != 0;
        int flags = VhostUserChannel.VERSION | (ack ? VhostUserChannel.FLAG_NEED_REPLY : 0);
        long deadline = System.nanoTime() + timeoutNanos;
        try {
            channel.send(request.code(), flags, payload, fds == null ? new int[0] : fds, deadline);
            if (replySize < 0 && !ack) {
                return null;
            }
            VhostUserChannel.Message reply = channel.receive(deadline);
            check(request, reply, ack ? 8 : replySize);
            if (ack) {
                long status = u64(reply.payload());
                if (status != 0) {
                    throw new VhostUserException("socket=" + socket + " request=" + request + " status="
                            + U64.hex(status) + ": the backend refused the request");
                }
                return null;
            }
            return reply.payload();
        } catch (VhostUserChannel.Failure f) {
            throw fail(request, f.getMessage(), f.getCause());
        }
    }

    private void check(VhostUserRequest request, VhostUserChannel.Message reply, int size)
            throws VhostUserChannel.Failure {
        if (reply.fds().length > 0) {
            VhostUserChannel.closeAll(reply.fds());
            throw new VhostUserChannel.Failure("reply fds=" + reply.fds().length + ": a reply carries none");
        }
        if (reply.request() != request.code()) {
            throw new VhostUserChannel.Failure("reply request=" + VhostUserRequest.name(reply.request())
                    + ": not the request's reply");
        }
        if ((reply.flags() & 0x3) != VhostUserChannel.VERSION || (reply.flags() & VhostUserChannel.FLAG_REPLY) == 0) {
            throw new VhostUserChannel.Failure("reply flags=0x" + Integer.toHexString(reply.flags())
                    + ": not a version 1 reply");
        }
        if (reply.payload().length != size) {
            throw new VhostUserChannel.Failure("reply size=" + reply.payload().length + " expected=" + size);
        }
    }

    /** A reply that was well framed but wrong in content: closes the connection like a framing failure. */
    private VhostUserException failed(VhostUserRequest request, String why) {
        synchronized (this) {
            return fail(request, why, null);
        }
    }

    /** Closes the connection for {@code why}, logs it once, and returns the exception for the requesting thread. */
    private VhostUserException fail(VhostUserRequest request, String why, Throwable cause) {
        String reason = "socket=" + socket + " request=" + request + ": " + why;
        closeFor(reason);
        return new VhostUserException(reason, cause);
    }

    /** Closes the connection for a reason found outside a request (e.g. RAM the backend can't be given), logged. */
    synchronized void abandon(String why) {
        closeFor("socket=" + socket + ": " + why);
    }

    /** Lock held. The first reason wins and is logged once. */
    private void closeFor(String reason) {
        if (closedReason == null) {
            closedReason = reason;
            LOG.log(System.Logger.Level.WARNING, "vhost-user connection closed: " + reason);
            channel.close();
        }
    }

    /**
     * Closes the connection (an orderly shutdown: the backend sees the socket close, as when QEMU's front-end goes,
     * and drops the device's state). Idempotent; requests after it throw.
     */
    @Override
    public synchronized void close() {
        if (closedReason == null) {
            closedReason = "closed by the front-end";
            channel.close();
        }
    }

    private void requireProtocol(long feature, VhostUserRequest request) {
        long have = protocolFeatures();
        if ((have & feature) == 0) {
            throw new IllegalStateException("socket=" + socket + " request=" + request + " protocolFeatures="
                    + U64.hex(have) + ": needs protocol feature bit " + Long.numberOfTrailingZeros(feature));
        }
    }

    private void checkConfig(int offset, int size) {
        if (offset < 0 || size <= 0 || size > MAX_CONFIG_SIZE || offset > MAX_CONFIG_SIZE - size) {
            throw new IllegalArgumentException("socket=" + socket + " offset=" + offset + " size=" + size
                    + " max=" + MAX_CONFIG_SIZE + ": outside the config space");
        }
    }

    private static void putRegion(ByteBuffer p, VhostUserMemoryRegion r) {
        p.putLong(r.guestAddress()).putLong(r.size()).putLong(r.userAddress()).putLong(r.mmapOffset());
    }

    private static ByteBuffer payload(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static byte[] u64Payload(long v) {
        return payload(8).putLong(v).array();
    }

    private static long u64(byte[] p) {
        return ByteBuffer.wrap(p).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }
}
