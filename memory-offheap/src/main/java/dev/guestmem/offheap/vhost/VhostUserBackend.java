package dev.guestmem.offheap.vhost;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.ErrnoException;
import dev.guestmem.offheap.internal.linux.FaultingMappings;
import dev.guestmem.offheap.internal.linux.Linux;
import dev.guestmem.offheap.internal.linux.Sockets;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * The backend side of vhost-user in Java (what libvhost-user is to C backends): listens on a Unix socket, serves one
 * front-end at a time, maps the memory table's fds and shows them as a guestmem {@link AddressSpace}
 * ({@link #memory()}), and runs each enabled virtqueue on its own thread, handing every request to a {@link Device}.
 *
 * <p>The front-end is not trusted: a message of the wrong size, a table with too many regions or descriptors that do
 * not match, an fd that cannot be mapped, a region or log that runs past the end of its file, a request this backend
 * does not serve, or a ring whose descriptors point outside it closes that connection with one logged reason
 * ({@link #lastError()}); the backend then waits for the next front-end. Mappings of earlier tables stay until {@link #close()}, so a ring thread never touches unmapped
 * memory (a front-end that changes its map very often costs address space until then). Served: GET/SET_FEATURES,
 * GET/SET_PROTOCOL_FEATURES (REPLY_ACK), SET_OWNER, RESET_OWNER, SET_MEM_TABLE, SET_VRING_NUM/ADDR/BASE/KICK/CALL/
 * ERR/ENABLE, GET_VRING_BASE, the dirty log (LOG_SHMFD, SET_LOG_BASE, VHOST_F_LOG_ALL: the pages a request's writable
 * buffers cover, up to the bytes written, and the used ring's when its address carries VRING_F_LOG),
 * CONFIGURE_MEM_SLOTS with GET_MAX_MEM_SLOTS and ADD/REM_MEM_REG, the device's config space (CONFIG: GET/SET_CONFIG
 * through {@link Device#config} and {@link Device#writeConfig}) and multiple queues (MQ: GET_QUEUE_NUM is
 * {@link Device#queues}, each queue a ring with its own thread).
 *
 * <p>A ring whose descriptors are bad (a head or next index outside the ring, an available index more than the
 * ring's size ahead, a chain longer than the ring, a buffer outside guest RAM) stops alone, with its reason logged
 * and in {@link #lastError()}, and a signal on its error eventfd (SET_VRING_ERR) when it has one; the connection and
 * the other rings go on.
 *
 * <p>The front-end may truncate the file behind its memory under this backend's mappings. A region whose fd is not
 * sealed against shrinking (a file, a memfd without {@code F_SEAL_SHRINK}) is RAM that may fault
 * ({@link MemorySystem#ramFromSegment(String, MemorySegment, boolean)}): an access to its missing pages through
 * {@link #memory()} is {@link dev.guestmem.memory.MemTxResult#ERROR} and one logged warning, never an exception, and
 * the part still in the file keeps working; a sealed memfd keeps the plain, faster accesses. What the backend does
 * with such an error follows libvhost-user, which calls {@code vu_panic} (the device is broken, nothing more is
 * processed): a ring whose descriptor table or rings fault stops, and the connection is closed with one logged
 * reason ({@link #lastError()}); the backend then waits for the next front-end. A device's own accesses to a
 * request's buffers give it the error as a result, to fail that request as it sees fit. The dirty log is written with
 * atomic operations, which no guarded path serves (on JDK 25.0.3 a faulting {@code getAndBitwiseOr} throws
 * {@link InternalError}, and a faulting {@code compareAndExchange} kills the JVM with SIGBUS), so a log not sealed
 * against shrinking is refused, as a bad message is; QEMU seals the log it sends.
 *
 * <p>Threading: one thread accepts and serves messages, one more per started ring; {@link #close()} from any thread.
 */
public final class VhostUserBackend implements AutoCloseable {
    /** What a device does with one request of a ring. */
    public interface Device {
        /** Device feature bits offered besides VIRTIO_F_VERSION_1 and VHOST_USER_F_PROTOCOL_FEATURES. */
        long features();

        /**
         * Serves one request: its buffers in chain order (guest-physical, in {@code memory}). An access to a buffer
         * whose memory the front-end truncated away gives {@link dev.guestmem.memory.MemTxResult#ERROR}, not an
         * exception; a device that throws stops the ring.
         *
         * @return the bytes written into the device-writable buffers
         */
        int serve(AddressSpace memory, List<SplitVirtqueue.Buffer> chain);

        /** How many queues the device has (GET_QUEUE_NUM), 1 to 8; 1 unless overridden. */
        default int queues() {
            return 1;
        }

        /**
         * The device's config space as it is now (GET_CONFIG reads it; at most 256 bytes); empty unless overridden.
         * Called on the backend's server thread.
         */
        default byte[] config() {
            return new byte[0];
        }

        /**
         * SET_CONFIG: the front-end writes {@code data} at byte {@code offset} of the config space (inside it, checked
         * before the call). Called on the backend's server thread.
         *
         * @return whether the device took the write; a refusal is the request's failure status under REPLY_ACK
         */
        default boolean writeConfig(int offset, byte[] data) {
            return false;
        }
    }

    private static final System.Logger LOG = System.getLogger(VhostUserBackend.class.getName());
    private static final int MAX_QUEUES = 8;
    /** Regions ADD_MEM_REG may add (GET_MAX_MEM_SLOTS). */
    private static final int MAX_MEM_SLOTS = 32;
    private static final long POLL_MILLIS = 100;
    private static final long MESSAGE_MILLIS = 5000;
    private static final int CONFIG_HEADER = 12;

    private final Path socket;
    private final int listenFd;
    private final Predicate<VhostUserPeer> policy;
    private final Device device;
    private final Thread server;
    private final List<long[]> mappings = new ArrayList<>();   // {address, length}; guarded by this
    private volatile boolean stopping;
    private volatile String lastError;
    /** Why a ring broke the device (its memory faulted), or null; set by ring threads, read by the server thread. */
    private volatile String broken;
    private volatile Table table = new Table(List.of(), null);
    /** The regions of {@link #table} with their mappings; server thread only. */
    private List<Mapped> mapped = List.of();
    private final VhostUserBackendRing[] rings = new VhostUserBackendRing[MAX_QUEUES];
    /** Written by the server thread, read by ring threads. */
    private volatile long features;
    private long protocolFeatures;
    /** The REPLY_ACK status of the message being served: 0 unless its handler failed it; server thread only. */
    private long ackStatus;
    /** The shared dirty log once SET_LOG_BASE came; written by the server thread, read by ring threads. */
    private volatile VhostUserLogWriter log;

    /** A memory table as mapped here: its regions and the address space over them. */
    record Table(List<VhostUserMemoryRegion> regions, AddressSpace memory) {
        /** The guest-physical address of the front-end's address {@code user}, or -1. */
        long guestAddress(long user, long size) {
            for (VhostUserMemoryRegion r : regions) {
                if (U64.le(r.userAddress(), user) && U64.lt(user - r.userAddress(), r.size())
                        && U64.le(size, r.size() - (user - r.userAddress()))) {
                    return r.guestAddress() + (user - r.userAddress());
                }
            }
            return -1;
        }
    }

    private VhostUserBackend(Path socket, int listenFd, Predicate<VhostUserPeer> policy, Device device) {
        this.socket = socket;
        this.listenFd = listenFd;
        this.policy = policy;
        this.device = device;
        this.server = new Thread(this::run, "vhost-user-backend " + socket);
        this.server.setDaemon(true);
    }

    /**
     * Listens at {@code socket} (a new socket file, mode 0600; put it in a directory of mode 0700) and starts serving.
     *
     * @param policy the front-end processes accepted ({@code SO_PEERCRED}); others are disconnected unserved
     */
    public static VhostUserBackend listen(Path socket, Predicate<VhostUserPeer> policy, Device device) {
        Linux.checkPlatform();
        int fd = Sockets.unixStreamSocket();
        try {
            Sockets.bind(fd, socket.toString());
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
            Sockets.listen(fd, 1);
        } catch (IOException e) {
            Linux.close(fd);
            throw new UncheckedIOException(e);
        } catch (RuntimeException e) {
            Linux.close(fd);
            throw e;
        }
        VhostUserBackend b = new VhostUserBackend(socket, fd, policy, device);
        b.server.start();
        return b;
    }

    /** Guest RAM as the front-end's last memory table gives it, or null before one came. */
    public AddressSpace memory() {
        return table.memory();
    }

    /** The current table, for the ring threads. */
    Table table() {
        return table;
    }

    /** Why the last connection was closed by this backend, or null. */
    public String lastError() {
        return lastError;
    }

    private void run() {
        while (!stopping) {
            if ((Sockets.poll(listenFd, Sockets.POLLIN, POLL_MILLIS) & Sockets.POLLIN) == 0) {
                continue;
            }
            VhostUserChannel channel;
            try {
                channel = new VhostUserChannel(Sockets.accept(listenFd));
            } catch (ErrnoException e) {
                refuse(e.getMessage());   // e.g. the front-end gave up before it was accepted
                continue;
            }
            // The reason is recorded before the socket closes, so a front-end that sees the close can read it.
            try {
                Sockets.PeerCredentials c = Sockets.peerCredentials(channel.fd());
                if (policy.test(new VhostUserPeer(c.pid(), c.uid(), c.gid()))) {
                    serve(channel);
                } else {
                    refuse("pid=" + c.pid() + " uid=" + c.uid() + ": the peer policy refuses this front-end");
                }
            } catch (VhostUserChannel.Failure f) {
                refuse(f.getMessage());
            } catch (RuntimeException e) {
                refuse(e.toString());
            } finally {
                stopRings();
                channel.close();
            }
        }
    }

    /**
     * A ring's memory faulted: the device is broken (libvhost-user's {@code vu_panic}) and the server thread closes the
     * connection at its next poll, with {@code reason} logged once as the backend's last error.
     */
    void deviceBroken(String reason) {
        broken = reason;
    }

    /** A ring stopped on bad descriptors: the reason is the backend's last error, logged by the ring. */
    void ringStopped(String reason) {
        if (!stopping) {
            lastError = reason;
        }
    }

    private void refuse(String why) {
        String reason = "socket=" + socket + ": " + why;
        if (!stopping) {
            lastError = reason;
            LOG.log(System.Logger.Level.WARNING, "vhost-user front-end disconnected: " + reason);
        }
    }

    private void serve(VhostUserChannel channel) throws VhostUserChannel.Failure {
        broken = null;   // the rings of an earlier connection were stopped before this one was accepted
        while (!stopping) {
            int revents = Sockets.poll(channel.fd(), Sockets.POLLIN, POLL_MILLIS);
            final String broken = this.broken;
            if (broken != null) {
                throw new VhostUserChannel.Failure(broken + "; the device is broken");
            }
            if (revents == 0) {
                continue;
            }
            VhostUserChannel.Message m;
            try {
                m = channel.receive(System.nanoTime() + MESSAGE_MILLIS * 1_000_000L);
            } catch (VhostUserChannel.Failure f) {
                if (f.getMessage().startsWith("bytes=0 of")) {
                    return;   // the front-end went away between messages: an orderly end
                }
                throw f;
            }
            byte[] reply;
            ackStatus = 0;
            try {
                reply = handle(m);
            } finally {
                VhostUserChannel.closeAll(m.fds());   // what handle keeps, it duplicated by mapping it
            }
            long deadline = System.nanoTime() + MESSAGE_MILLIS * 1_000_000L;
            int flags = VhostUserChannel.VERSION | VhostUserChannel.FLAG_REPLY;
            if (reply != null) {
                channel.send(m.request(), flags, reply, new int[0], deadline);
            } else if ((m.flags() & VhostUserChannel.FLAG_NEED_REPLY) != 0
                    && (protocolFeatures & VhostUserFrontend.PROTOCOL_F_REPLY_ACK) != 0) {
                channel.send(m.request(), flags, u64(ackStatus), new int[0], deadline);
            }
        }
    }

    /** Serves one message; returns its reply's payload, or null for a request without one. */
    private byte[] handle(VhostUserChannel.Message m) throws VhostUserChannel.Failure {
        VhostUserRequest request = VhostUserRequest.of(m.request());
        if (request == null) {
            throw new VhostUserChannel.Failure("request=" + VhostUserRequest.name(m.request()) + ": not served");
        }
        ByteBuffer p = m.body();
        switch (request) {
            case GET_FEATURES -> {
                return u64(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES
                        | VhostUserFrontend.VHOST_F_LOG_ALL | device.features());
            }
            case GET_PROTOCOL_FEATURES -> {
                return u64(VhostUserFrontend.PROTOCOL_F_REPLY_ACK | VhostUserFrontend.PROTOCOL_F_LOG_SHMFD
                        | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS | VhostUserFrontend.PROTOCOL_F_MQ
                        | VhostUserFrontend.PROTOCOL_F_CONFIG);
            }
            case GET_QUEUE_NUM -> {
                size(m, 0);
                return u64(queues());
            }
            case GET_CONFIG -> {
                int[] at = config(m, p);
                byte[] space = device.config();
                return ByteBuffer.allocate(CONFIG_HEADER + at[1]).order(ByteOrder.LITTLE_ENDIAN).putInt(at[0])
                        .putInt(at[1]).putInt(0).put(space, at[0], at[1]).array();
            }
            case SET_CONFIG -> {
                int[] at = config(m, p);
                byte[] data = new byte[at[1]];
                p.get(CONFIG_HEADER, data);
                if (!device.writeConfig(at[0], data)) {
                    ackStatus = 1;
                }
            }
            case SET_FEATURES -> features = size(m, 8).getLong();
            case SET_LOG_BASE -> {
                setLogBase(m);
                return u64(0);
            }
            case SET_PROTOCOL_FEATURES -> protocolFeatures = size(m, 8).getLong();
            case SET_OWNER, RESET_OWNER -> size(m, 0);
            case SET_MEM_TABLE -> setMemTable(m, p);
            case ADD_MEM_REG -> addMemReg(m);
            case REM_MEM_REG -> remMemReg(m);
            case GET_MAX_MEM_SLOTS -> {
                size(m, 0);
                return u64(MAX_MEM_SLOTS);
            }
            case SET_VRING_NUM -> ring(m, 8).num(p.getInt(4));
            case SET_VRING_BASE -> ring(m, 8).base(p.getInt(4));
            case SET_VRING_ADDR -> {
                VhostUserBackendRing r = ring(m, 40);
                r.addresses(table, p.getLong(8), p.getLong(16), p.getLong(24),
                        (p.getInt(4) & VhostUserFrontend.VRING_F_LOG) != 0);
            }
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> vringFd(m, request);
            case SET_VRING_ENABLE -> ring(m, 8).enable(p.getInt(4) != 0);
            case GET_VRING_BASE -> {
                VhostUserBackendRing r = ring(m, 8);
                int base = r.stop();
                return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(r.index()).putInt(base).array();
            }
            default -> throw new VhostUserChannel.Failure("request=" + request + ": not served");
        }
        return null;
    }

    /** The device's queue count, checked: 1 to {@link #MAX_QUEUES}. */
    private int queues() throws VhostUserChannel.Failure {
        int n = device.queues();
        if (n < 1 || n > MAX_QUEUES) {
            throw new VhostUserChannel.Failure("device queues=" + n + " max=" + MAX_QUEUES + ": not a queue count");
        }
        return n;
    }

    /**
     * The {offset, size} of a GET_CONFIG or SET_CONFIG whose payload is the 12-byte header and {@code size} bytes, both
     * inside the device's config space.
     */
    private int[] config(VhostUserChannel.Message m, ByteBuffer p) throws VhostUserChannel.Failure {
        int length = device.config().length;
        if (m.payload().length >= CONFIG_HEADER) {
            int offset = p.getInt(0);
            int size = p.getInt(4);
            if (offset >= 0 && size > 0 && size <= VhostUserFrontend.MAX_CONFIG_SIZE && offset <= length - size
                    && m.payload().length == CONFIG_HEADER + size) {
                return new int[] {offset, size};
            }
        }
        throw new VhostUserChannel.Failure("request=" + VhostUserRequest.name(m.request()) + " size="
                + m.payload().length + (m.payload().length >= 8 ? " offset=" + p.getInt(0) + " length=" + p.getInt(4)
                : "") + " config=" + length + ": outside the config space");
    }

    private void setMemTable(VhostUserChannel.Message m, ByteBuffer p) throws VhostUserChannel.Failure {
        if (m.payload().length < 8) {
            throw new VhostUserChannel.Failure("request=SET_MEM_TABLE size=" + m.payload().length + ": too short");
        }
        int n = p.getInt(0);
        if (n < 0 || n > VhostUserFrontend.MEM_TABLE_MAX_REGIONS || m.payload().length != 8 + 32 * n
                || m.fds().length != n) {
            throw new VhostUserChannel.Failure("request=SET_MEM_TABLE regions=" + n + " size=" + m.payload().length
                    + " fds=" + m.fds().length + ": the table, its size and its descriptors do not match");
        }
        List<Mapped> regions = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            regions.add(mapRegion(p, 8 + 32 * i, m.fds()[i], "SET_MEM_TABLE region=" + i));
        }
        install(regions, "SET_MEM_TABLE");
    }

    private void addMemReg(VhostUserChannel.Message m) throws VhostUserChannel.Failure {
        ByteBuffer p = size(m, 40);
        if (m.fds().length != 1 || mapped.size() >= MAX_MEM_SLOTS) {
            throw new VhostUserChannel.Failure("request=ADD_MEM_REG fds=" + m.fds().length + " regions="
                    + mapped.size() + " max=" + MAX_MEM_SLOTS + ": one descriptor and a free slot needed");
        }
        List<Mapped> regions = new ArrayList<>(mapped);
        regions.add(mapRegion(p, 8, m.fds()[0], "ADD_MEM_REG"));
        install(regions, "ADD_MEM_REG");
    }

    private void remMemReg(VhostUserChannel.Message m) throws VhostUserChannel.Failure {
        ByteBuffer p = size(m, 40);
        long guest = p.getLong(8);
        long size = p.getLong(16);
        List<Mapped> regions = new ArrayList<>(mapped);
        if (!regions.removeIf(r -> r.region().guestAddress() == guest && r.region().size() == size)) {
            throw new VhostUserChannel.Failure("request=REM_MEM_REG guest=" + U64.hex(guest) + " size="
                    + U64.hex(size) + ": no such region");
        }
        install(regions, "REM_MEM_REG");
    }

    /**
     * A region of the memory table and where it is mapped in this process; {@code mayFault}: its file can shrink
     * under the mapping.
     */
    private record Mapped(VhostUserMemoryRegion region, MemorySegment segment, boolean mayFault) {
    }

    /** A mapping of a front-end's fd: the segment asked for, and whether its file can shrink under it. */
    private record Mapping(MemorySegment segment, boolean mayFault) {
    }

    /** Checks and maps the 32-byte region description at {@code at} of the payload, backed by {@code fd}. */
    private Mapped mapRegion(ByteBuffer p, int at, int fd, String what) throws VhostUserChannel.Failure {
        long guest = p.getLong(at);
        long size = p.getLong(at + 8);
        long user = p.getLong(at + 16);
        long offset = p.getLong(at + 24);
        if (size <= 0 || offset < 0 || offset > Long.MAX_VALUE - size || guest + size - 1 < guest) {
            throw new VhostUserChannel.Failure("request=" + what + " guest=" + U64.hex(guest) + " size="
                    + U64.hex(size) + " offset=" + U64.hex(offset) + ": not a usable region");
        }
        Mapping m = map(fd, size, offset, what, false);
        return new Mapped(new VhostUserMemoryRegion(guest, size, user, offset, -1, "region@" + U64.hex(guest)),
                m.segment(), m.mayFault());
    }

    /**
     * Makes {@code regions} the memory table: a new address space over them, which ring threads pick up at their
     * next request. Earlier mappings stay until {@link #close()}, so a ring still reading the old one is safe.
     */
    private void install(List<Mapped> regions, String what) throws VhostUserChannel.Failure {
        for (int i = 0; i < regions.size(); i++) {
            VhostUserMemoryRegion a = regions.get(i).region();
            for (int k = 0; k < i; k++) {
                VhostUserMemoryRegion b = regions.get(k).region();
                if (U64.le(a.guestAddress(), b.guestAddress() + b.size() - 1)
                        && U64.le(b.guestAddress(), a.guestAddress() + a.size() - 1)) {
                    throw new VhostUserChannel.Failure("request=" + what + " guest=" + U64.hex(a.guestAddress())
                            + ": overlaps " + b.name());
                }
            }
        }
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("vhost-user", U64.SIZE_2_64);
        system.transaction(() -> {
            for (Mapped r : regions) {
                root.addSubregion(r.region().guestAddress(),
                        system.ramFromSegment(r.region().name(), r.segment(), r.mayFault()));
            }
        });
        mapped = List.copyOf(regions);
        table = new Table(mapped.stream().map(Mapped::region).toList(), system.addressSpace("vhost-user", root));
    }

    /**
     * Maps {@code size} bytes at {@code offset} of {@code fd}, shared, read-write, for the life of the backend.
     * {@code sealed}: refuse a file that can shrink under the mapping.
     */
    @SuppressWarnings("restricted")   // a mapping made here, unmapped only in close() after every ring stopped
    private synchronized Mapping map(int fd, long size, long offset, String what, boolean sealed)
            throws VhostUserChannel.Failure {
        long length = size + offset;
        long file;
        try {
            file = Linux.fstat(fd).size();
        } catch (ErrnoException e) {
            throw new VhostUserChannel.Failure("request=" + what + ": " + e.getMessage(), e);
        }
        // A mapping past the file's end would fault (SIGBUS) where a ring or the log touches it, and a huge one
        // would make the address space over it allocate its per-page state for pages that do not exist.
        if (file < length) {
            throw new VhostUserChannel.Failure("request=" + what + " length=" + U64.hex(length) + " file="
                    + U64.hex(file) + ": runs past the end of its file");
        }
        boolean mayFault = FaultingMappings.faultsWhenTruncated(fd);
        if (sealed && mayFault) {
            throw new VhostUserChannel.Failure("request=" + what + " sealed=false: its file can shrink under the"
                    + " mapping (no F_SEAL_SHRINK), and the JVM does not guard atomic writes against a truncation");
        }
        long addr;
        try {
            addr = Linux.mmap(0, length, Linux.PROT_READ | Linux.PROT_WRITE, Linux.MAP_SHARED, fd, 0);
        } catch (ErrnoException e) {
            throw new VhostUserChannel.Failure("request=" + what + ": " + e.getMessage(), e);
        }
        mappings.add(new long[] {addr, length});
        if (mayFault) {
            FaultingMappings.add(addr, length); // the front-end may truncate its file: no native copy may touch it
        }
        return new Mapping(MemorySegment.ofAddress(addr + offset).reinterpret(size), mayFault);
    }

    private void setLogBase(VhostUserChannel.Message m) throws VhostUserChannel.Failure {
        ByteBuffer p = size(m, 16);
        long size = p.getLong(0);
        long offset = p.getLong(8);
        if (m.fds().length != 1 || size <= 0 || (size & 7) != 0 || offset < 0 || (offset & 7) != 0) {
            throw new VhostUserChannel.Failure("request=SET_LOG_BASE size=" + U64.hex(size) + " offset="
                    + U64.hex(offset) + " fds=" + m.fds().length + ": not a usable log");
        }
        // The log takes atomic ORs, which no guarded path serves: only a log that cannot shrink.
        log = new VhostUserLogWriter(map(m.fds()[0], size, offset, "SET_LOG_BASE", true).segment());
    }

    /**
     * Where a ring logs the guest memory it writes: the shared log while VHOST_F_LOG_ALL is among the features set,
     * else null. Read by ring threads.
     */
    VhostUserLogWriter logWriter() {
        return (features & VhostUserFrontend.VHOST_F_LOG_ALL) != 0 ? log : null;
    }

    private void vringFd(VhostUserChannel.Message m, VhostUserRequest request) throws VhostUserChannel.Failure {
        VhostUserBackendRing r = ring(m, 8);
        boolean noFd = (m.body().getLong(0) & (1L << 8)) != 0;
        if (noFd != (m.fds().length == 0) || m.fds().length > 1) {
            throw new VhostUserChannel.Failure("request=" + request + " fds=" + m.fds().length
                    + ": the descriptor does not match the message");
        }
        int fd = noFd ? -1 : dup(m.fds()[0]);
        switch (request) {
            case SET_VRING_KICK -> r.kick(fd, device, this);
            case SET_VRING_CALL -> r.call(fd);
            default -> r.err(fd);
        }
    }

    /** The received fd is closed after the message; keep a copy of our own. */
    private static int dup(int fd) {
        return Sockets.dup(fd);
    }

    private VhostUserBackendRing ring(VhostUserChannel.Message m, int size) throws VhostUserChannel.Failure {
        int index = size(m, size).getInt(0) & 0xff;
        int queues = queues();
        if (index >= queues) {
            throw new VhostUserChannel.Failure("request=" + VhostUserRequest.name(m.request()) + " index=" + index
                    + " max=" + (queues - 1) + ": no such vring");
        }
        if (rings[index] == null) {
            rings[index] = new VhostUserBackendRing(index, socket.toString());
        }
        return rings[index];
    }

    private static ByteBuffer size(VhostUserChannel.Message m, int size) throws VhostUserChannel.Failure {
        if (m.payload().length != size) {
            throw new VhostUserChannel.Failure("request=" + VhostUserRequest.name(m.request()) + " size="
                    + m.payload().length + " expected=" + size);
        }
        return m.body();
    }

    private void stopRings() {
        for (VhostUserBackendRing r : rings) {
            if (r != null) {
                r.stop();
            }
        }
    }

    private static byte[] u64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }

    /** Stops serving, waits for the server and ring threads, then unmaps every table and closes every fd. */
    @Override
    public void close() {
        if (stopping) {
            return;
        }
        stopping = true;
        try {
            server.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (VhostUserBackendRing r : rings) {
            if (r != null) {
                r.close();
            }
        }
        synchronized (this) {
            for (long[] mapping : mappings) {
                FaultingMappings.remove(mapping[0]);
                Linux.munmap(mapping[0], mapping[1]);
            }
            mappings.clear();
        }
        Linux.close(listenFd);
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "socket=" + socket + ": not removed: " + e);
        }
    }
}
