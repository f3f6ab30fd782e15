package dev.guestmem.offheap.vhost;

import java.util.Map;
import java.util.List;
import dev.guestmem.memory.contract.ProcFs;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import dev.guestmem.offheap.internal.linux.Linux;
import dev.guestmem.offheap.internal.linux.Sockets;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Java backend against a hostile front-end: messages whose descriptors, sizes, ring numbers or addresses do not
 * hold close that connection with their reason and leave no descriptor open; descriptors in guest RAM that do not hold
 * stop their ring alone, signalled on its error eventfd, while the connection goes on.
 */
class VhostUserHostileFrontendTest {
    private static final long MIB = 1 << 20;
    /** The user address the raw front-end claims for its one region. */
    private static final long USER = 0x7f00_0000_0000L;

    @TempDir
    Path tmp;

    /** What a hostile front-end sends on a raw connection; {@code memfd} is a 1 MiB memfd it may attach. */
    interface Script {
        void send(VhostUserChannel channel, int memfd) throws VhostUserChannel.Failure;
    }

    static Stream<Arguments> badMessages() {
        return Stream.of(
                Arguments.of("SET_MEM_TABLE, fewer fds than regions", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_MEM_TABLE, table(2), fd),
                        "request=SET_MEM_TABLE regions=2 size=72 fds=1: the table, its size and its descriptors do"
                                + " not match"),
                Arguments.of("SET_MEM_TABLE, more fds than regions", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_MEM_TABLE, table(1), fd, fd, fd),
                        "request=SET_MEM_TABLE regions=1 size=40 fds=3: the table, its size and its descriptors do"
                                + " not match"),
                // Found by VhostUserFuzzProperties: a 1 TiB region over the 1 MiB memfd was mapped, and the address
                // space over it ran the backend's server thread out of heap (OutOfMemoryError), ending the backend.
                Arguments.of("SET_MEM_TABLE, a 1 TiB region over a 1 MiB file", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_MEM_TABLE, region(1L << 40, 0), fd),
                        "request=SET_MEM_TABLE region=0 length=0x10000000000 file=0x100000: runs past the end of its"
                                + " file"),
                // The same check: a ring or the log in the part past the file's end would fault (SIGBUS).
                Arguments.of("SET_MEM_TABLE, a region past its file's end", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_MEM_TABLE, region(MIB, 4096), fd),
                        "request=SET_MEM_TABLE region=0 length=0x101000 file=0x100000: runs past the end of its file"),
                Arguments.of("SET_LOG_BASE past its file's end", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_LOG_BASE, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
                                .putLong(MIB).putLong(8).array(), fd),
                        "request=SET_LOG_BASE length=0x100008 file=0x100000: runs past the end of its file"),
                // The log takes atomic ORs, which no guarded path serves: a log that can shrink (this memfd has no
                // seals) would throw InternalError out of a ring thread on a truncation, so it is refused.
                Arguments.of("SET_LOG_BASE over a file that can shrink", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_LOG_BASE, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
                                .putLong(4096).putLong(0).array(), fd),
                        "request=SET_LOG_BASE sealed=false: its file can shrink under the mapping (no F_SEAL_SHRINK),"
                                + " and the JVM does not guard atomic writes against a truncation"),
                Arguments.of("ADD_MEM_REG without its fd", (Script) (c, fd) ->
                        send(c, VhostUserRequest.ADD_MEM_REG, memReg()),
                        "request=ADD_MEM_REG fds=0 regions=0 max=32: one descriptor and a free slot needed"),
                Arguments.of("ADD_MEM_REG with two fds", (Script) (c, fd) ->
                        send(c, VhostUserRequest.ADD_MEM_REG, memReg(), fd, fd),
                        "request=ADD_MEM_REG fds=2 regions=0 max=32: one descriptor and a free slot needed"),
                Arguments.of("SET_VRING_NUM not a power of two", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_VRING_NUM, pair(0, 7)),
                        "request=SET_VRING_NUM index=0 num=7: not a power of two up to 32768"),
                Arguments.of("SET_VRING_NUM too big", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_VRING_NUM, pair(0, 65536)),
                        "request=SET_VRING_NUM index=0 num=65536: not a power of two up to 32768"),
                Arguments.of("a vring beyond the device's queues", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_VRING_NUM, pair(1, 8)),
                        "request=SET_VRING_NUM index=1 max=0: no such vring"),
                Arguments.of("SET_VRING_ADDR outside the memory table", (Script) (c, fd) -> {
                    send(c, VhostUserRequest.SET_MEM_TABLE, table(1), fd);
                    send(c, VhostUserRequest.SET_VRING_NUM, pair(0, 8));
                    send(c, VhostUserRequest.SET_VRING_ADDR, vringAddr(0x1000, 0x2000, 0x3000));
                }, "request=SET_VRING_ADDR index=0 desc=0x1000 avail=0x3000 used=0x2000: not inside the memory"
                        + " table"),
                Arguments.of("SET_VRING_ADDR across the table's end", (Script) (c, fd) -> {
                    send(c, VhostUserRequest.SET_MEM_TABLE, table(1), fd);
                    send(c, VhostUserRequest.SET_VRING_NUM, pair(0, 8));
                    send(c, VhostUserRequest.SET_VRING_ADDR, vringAddr(USER + MIB - 64, USER + 0x1000, USER + 0x2000));
                }, "request=SET_VRING_ADDR index=0 desc=0x7f00000fffc0 avail=0x7f0000002000 used=0x7f0000001000:"
                        + " not inside the memory table"),
                Arguments.of("SET_VRING_KICK, an fd and the no-fd flag", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_VRING_KICK, u64(1L << 8), fd),
                        "request=SET_VRING_KICK fds=1: the descriptor does not match the message"),
                Arguments.of("SET_VRING_CALL, neither an fd nor the no-fd flag", (Script) (c, fd) ->
                        send(c, VhostUserRequest.SET_VRING_CALL, u64(0)),
                        "request=SET_VRING_CALL fds=0: the descriptor does not match the message"),
                Arguments.of("GET_CONFIG outside the config space", (Script) (c, fd) ->
                        send(c, VhostUserRequest.GET_CONFIG, ByteBuffer.allocate(12 + 16).order(ByteOrder.LITTLE_ENDIAN)
                                .putInt(8).putInt(16).array()),
                        "request=GET_CONFIG size=28 offset=8 length=16 config=0: outside the config space"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badMessages")
    void aBadMessageClosesTheConnectionOnly(String name, Script script, String reason) throws Exception {
        Path socket = socketDir().resolve("echo.sock");
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(),
                VhostUserJavaBackendTest.ECHO)) {
            Map<Integer, String> fdsBefore = ProcFs.openFdTargets();
            int memfd = Linux.memfdCreate("hostile-frontend", Linux.MFD_CLOEXEC);
            Linux.ftruncate(memfd, MIB);
            int fd = Sockets.unixStreamSocket();
            try (VhostUserChannel channel = new VhostUserChannel(fd)) {
                Sockets.connect(fd, socket.toString());
                script.send(channel, memfd);
                VhostUserChannel.Failure gone = assertThrows(VhostUserChannel.Failure.class,
                        () -> channel.receive(System.nanoTime() + 20_000_000_000L));
                assertEquals("bytes=0 of 12: the backend closed the connection", gone.getMessage());
            } finally {
                Linux.close(memfd);
            }
            assertEquals("socket=" + socket + ": " + reason, backend.lastError());
            assertEquals(List.of(), ProcFs.openedSinceExceptPipes(fdsBefore), "no descriptor leaks, on either side");

            // The next front-end is served.
            try (VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(20),
                    VhostUserPeer.sameUser())) {
                assertTrue((fe.getFeatures() & VhostUserFrontend.VIRTIO_F_VERSION_1) != 0);
            }
        }
    }

    /** Writes the descriptor table and available ring of a queue of 8 at guest-physical 0 as a hostile driver would. */
    interface Ring {
        void write(AddressSpace as, SplitVirtqueue queue);
    }

    static Stream<Arguments> badRings() {
        return Stream.of(
                Arguments.of("a head beyond the ring", (Ring) (as, q) -> avail(as, q, 13, 1),
                        "head=13 descriptor=13 num=8: a descriptor chain outside the ring or looping"),
                Arguments.of("a next index beyond the ring", (Ring) (as, q) -> {
                    desc(as, q, 0, 0x3000, 16, 1, 9);
                    avail(as, q, 0, 1);
                }, "head=0 descriptor=9 num=8: a descriptor chain outside the ring or looping"),
                Arguments.of("a chain that loops", (Ring) (as, q) -> {
                    desc(as, q, 0, 0x3000, 16, 1, 1);
                    desc(as, q, 1, 0x3000, 16, 1, 0);
                    avail(as, q, 0, 1);
                }, "head=0 descriptor=0 num=8: a descriptor chain outside the ring or looping"),
                Arguments.of("more available than the ring holds", (Ring) (as, q) -> avail(as, q, 0, 9),
                        "avail=9 last=0 num=8: more requests available than the ring holds"),
                Arguments.of("a buffer outside guest RAM", (Ring) (as, q) -> {
                    desc(as, q, 0, 0x4000_0000L, 512, 2, 0);
                    avail(as, q, 0, 1);
                }, "descriptor=0 addr=0x40000000 len=512: a buffer outside guest RAM"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badRings")
    void badDescriptorsStopTheirRingOnly(String name, Ring ring, String reason) throws Exception {
        Path socket = socketDir().resolve("echo.sock");
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", MIB, HostMemoryBackend.memfd().build());
        system.transaction(() -> root.addSubregion(0, ram));
        AddressSpace as = system.addressSpace("memory", root);
        int err = Sockets.eventfd(0, Sockets.EFD_CLOEXEC | Sockets.EFD_NONBLOCK);
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(),
                VhostUserJavaBackendTest.ECHO);
             VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(20),
                     VhostUserPeer.sameUser())) {
            fe.setProtocolFeatures(fe.getProtocolFeatures() & VhostUserFrontend.PROTOCOL_F_REPLY_ACK);
            fe.setOwner();
            fe.setFeatures(fe.getFeatures());
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            SplitVirtqueue queue = new SplitVirtqueue(as, 0, 8);
            try (VhostUserVring vring = VhostUserVring.start(fe, memory, queue, 0, false)) {
                fe.setVringErr(0, err);
                ring.write(as, queue);
                byte[] before = read(as, 0, (int) MIB);
                vring.kick();
                assertTrue((Sockets.poll(err, Sockets.POLLIN, 20_000) & Sockets.POLLIN) != 0,
                        "the ring's error eventfd is signalled");
                assertEquals(1, Sockets.eventfdRead(err));
                assertEquals("socket=" + socket + " vring=0: stopped: " + reason, backend.lastError());
                assertArrayEquals(before, read(as, 0, (int) MIB), "the device wrote nothing");
                assertTrue(fe.isOpen(), fe.closedReason());
                assertEquals(0, fe.getVringBase(0), "the ring stopped before the bad request");
            }
            memory.detach();
        } finally {
            Linux.close(err);
        }
        GuestRam.release(system, ram);
    }

    private static void desc(AddressSpace as, SplitVirtqueue q, int i, long addr, int len, int flags, int next) {
        long at = q.descAddress() + 16L * i;
        assertEquals(MemTxResult.OK, as.stqLe(at, addr, MemTxAttrs.UNSPECIFIED));
        assertEquals(MemTxResult.OK, as.stlLe(at + 8, len, MemTxAttrs.UNSPECIFIED));
        assertEquals(MemTxResult.OK, as.stwLe(at + 12, flags, MemTxAttrs.UNSPECIFIED));
        assertEquals(MemTxResult.OK, as.stwLe(at + 14, next, MemTxAttrs.UNSPECIFIED));
    }

    /** Puts {@code head} in the available ring's first entry and publishes {@code idx} as its index. */
    private static void avail(AddressSpace as, SplitVirtqueue q, int head, int idx) {
        assertEquals(MemTxResult.OK, as.stwLe(q.availAddress() + 4, head, MemTxAttrs.UNSPECIFIED));
        assertEquals(MemTxResult.OK, as.stwLe(q.availAddress() + 2, idx, MemTxAttrs.UNSPECIFIED));
    }

    private static byte[] read(AddressSpace as, long addr, int len) {
        byte[] b = new byte[len];
        assertEquals(MemTxResult.OK, as.read(addr, MemTxAttrs.UNSPECIFIED, b, 0, len));
        return b;
    }

    private Path socketDir() throws IOException {
        return Files.createTempDirectory(tmp, "backend",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }

    private static void send(VhostUserChannel c, VhostUserRequest request, byte[] payload, int... fds)
            throws VhostUserChannel.Failure {
        c.send(request.code(), VhostUserChannel.VERSION, payload, fds, System.nanoTime() + 10_000_000_000L);
    }

    /** A SET_MEM_TABLE payload of {@code n} regions, 1 MiB each at guest 0, 1 MiB, ..., the first at {@link #USER}. */
    private static byte[] table(int n) {
        ByteBuffer b = ByteBuffer.allocate(8 + 32 * n).order(ByteOrder.LITTLE_ENDIAN).putInt(n).putInt(0);
        for (int i = 0; i < n; i++) {
            b.putLong(i * MIB).putLong(MIB).putLong(USER + i * MIB).putLong(0);
        }
        return b.array();
    }

    /** A SET_MEM_TABLE payload of one region of {@code size} bytes at guest 0, from {@code offset} of its file. */
    private static byte[] region(long size, long offset) {
        return ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putInt(0).putLong(0).putLong(size)
                .putLong(USER).putLong(offset).array();
    }

    private static byte[] memReg() {
        return ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN).putLong(0).putLong(0).putLong(MIB)
                .putLong(USER).putLong(0).array();
    }

    private static byte[] pair(int a, int b) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(a).putInt(b).array();
    }

    private static byte[] u64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }

    private static byte[] vringAddr(long desc, long used, long avail) {
        return ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN).putInt(0).putInt(0).putLong(desc).putLong(used)
                .putLong(avail).putLong(0).array();
    }

}
