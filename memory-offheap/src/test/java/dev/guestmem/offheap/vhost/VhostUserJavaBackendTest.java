package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import dev.guestmem.offheap.internal.linux.Sockets;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStreamReader;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * guestmem on both sides: the Java front-end and the Java backend library over a real socket, with an echo device
 * that copies each request's readable bytes into its writable buffers through the backend's view of guest RAM.
 */
class VhostUserJavaBackendTest {
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    /** Echo: the request's device-readable bytes, in order, into its device-writable buffers. */
    static final VhostUserBackend.Device ECHO = new VhostUserBackend.Device() {
        @Override
        public long features() {
            return 0;
        }

        @Override
        public int serve(AddressSpace memory, List<SplitVirtqueue.Buffer> chain) {
            ByteArrayOutputStream in = new ByteArrayOutputStream();
            for (SplitVirtqueue.Buffer b : chain) {
                if (!b.deviceWrites()) {
                    byte[] bytes = new byte[b.length()];
                    memory.read(b.guestAddress(), ATTRS, bytes, 0, bytes.length);
                    in.writeBytes(bytes);
                }
            }
            byte[] all = in.toByteArray();
            int done = 0;
            for (SplitVirtqueue.Buffer b : chain) {
                if (b.deviceWrites() && done < all.length) {
                    int n = Math.min(b.length(), all.length - done);
                    memory.write(b.guestAddress(), ATTRS, all, done, n);
                    done += n;
                }
            }
            return done;
        }
    };

    @TempDir
    Path tmp;

    private Path socketDir() throws IOException {
        return Files.createTempDirectory(tmp, "backend",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }

    @Test
    void theJavaFrontendDrivesTheJavaBackend() throws IOException {
        Path socket = socketDir().resolve("echo.sock");
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(), ECHO)) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
            echoSession(socket, backend, VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS);
            assertEquals(null, backend.lastError());
        }
    }

    @Test
    void aBackendInASecondJvm() throws Exception {
        Path socket = socketDir().resolve("echo.sock");
        String java = ProcessHandle.current().info().command().orElseThrow();
        // This JVM's class path (with the test runner, a jar whose manifest names every dependency) and, to be sure,
        // where the backend's own classes come from.
        String classpath = String.join(File.pathSeparator, System.getProperty("java.class.path"),
                codeSource(EchoBackendMain.class), codeSource(VhostUserBackend.class), codeSource(MemorySystem.class));
        Process p = new ProcessBuilder(java, "-ea", "--enable-native-access=ALL-UNNAMED", "-cp", classpath,
                EchoBackendMain.class.getName(), socket.toString()).redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(),
                StandardCharsets.UTF_8))) {
            assertEquals("listening", out.readLine());
            echoSession(socket, null, 0);
            p.getOutputStream().close();   // the backend JVM ends when its input does
            assertEquals("clean", out.readLine(), "the backend saw no bad message");
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue());
        } finally {
            p.destroyForcibly();
            p.getOutputStream().close();   // (again): closed here, not later on the JDK's reaper thread
        }
    }

    /** One echo request: {@code hello} at {@code src} comes back at {@code dst} (split over two buffers). */
    static void echo(AddressSpace as, SplitVirtqueue queue, VhostUserVring vring, long src, byte[] hello,
                             long dst) {
        int head = queue.add(List.of(new SplitVirtqueue.Buffer(src, hello.length, false),
                new SplitVirtqueue.Buffer(dst, 16, true), new SplitVirtqueue.Buffer(dst + 16, 64, true)));
        vring.kick();
        SplitVirtqueue.Used used;
        while ((used = queue.poll()) == null) {
            assertTrue(vring.awaitCall(20_000), "the backend signals the used buffer");
        }
        assertEquals(new SplitVirtqueue.Used(head, hello.length), used);
        byte[] back = new byte[hello.length];
        assertEquals(MemTxResult.OK, as.read(dst, ATTRS, back, 0, back.length));
        assertArrayEquals(hello, back, "dst=0x" + Long.toHexString(dst));
    }

    /**
     * The backend logs what it writes into the front-end's log, which a sync merges into MIGRATION; the log grows
     * before the map reaches 16 GiB and shrinks after it no longer does, and what was logged in a replaced log is kept.
     */
    @Test
    void theJavaBackendLogsIntoALogThatFollowsTheMap() throws IOException {
        Path socket = socketDir().resolve("echo.sock");
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 1 << 20, HostMemoryBackend.memfd().build());
        MemoryRegion high = system.ram("high", 1 << 20, HostMemoryBackend.memfd().build());
        system.transaction(() -> root.addSubregion(0, ram));
        AddressSpace as = system.addressSpace("memory", root);
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(), ECHO);
             VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(20),
                     VhostUserPeer.sameUser())) {
            fe.setProtocolFeatures(fe.getProtocolFeatures() & (VhostUserFrontend.PROTOCOL_F_REPLY_ACK
                    | VhostUserFrontend.PROTOCOL_F_LOG_SHMFD | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS));
            fe.setOwner();
            long features = fe.getFeatures();
            assertTrue((features & VhostUserFrontend.VHOST_F_LOG_ALL) != 0);
            fe.setFeatures(features);
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            memory.startLogging();
            VhostUserDirtyLog small = memory.dirtyLog();
            assertEquals(4096, small.size(), "one page of log covers the 1 MiB map");
            SplitVirtqueue queue = new SplitVirtqueue(as, 0, 8);
            try (VhostUserVring vring = VhostUserVring.start(fe, memory, queue, 0, true)) {
                system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
                byte[] hello = "logged across a resize".getBytes(StandardCharsets.US_ASCII);
                assertEquals(MemTxResult.OK, as.write(0x2000, ATTRS, hello, 0, hello.length));
                ram.snapshotAndClearDirty(0, 1 << 20, DirtyMemoryClient.MIGRATION);
                echo(as, queue, vring, 0x2000, hello, 0x9000);   // only the backend writes page 0x9000
                assertTrue(small.isMarked(0x9000), "the backend logged its write");
                assertFalse(ram.getDirty(0x9000, 4096, DirtyMemoryClient.MIGRATION), "not before a sync");
                system.globalDirtyLogSync();
                assertTrue(ram.getDirty(0x9000, 4096, DirtyMemoryClient.MIGRATION), "the backend's write");
                assertFalse(ram.getDirty(0xa000, 4096, DirtyMemoryClient.MIGRATION), "the page after");
                assertFalse(ram.getDirty(0x2000, 4096, DirtyMemoryClient.MIGRATION), "what it only read");
                assertFalse(small.isMarked(0x9000), "a sync takes the bits it merged");
                echo(as, queue, vring, 0x2000, hello, 0xa000);   // logged, not synced, when the log is replaced

                // RAM at 16 GiB: a log of 16 GiB / 4 KiB / 8 bits, rounded up to whole pages, before the table.
                long at = 0x4_0000_0000L;
                system.transaction(() -> root.addSubregion(at, high));
                assertTrue(fe.isOpen(), fe.closedReason());
                VhostUserDirtyLog big = memory.dirtyLog();
                assertEquals(VhostUserDirtyLog.sizeFor(at + (1 << 20)), big.size());
                assertEquals(0x80000 + 4096, big.size());
                assertTrue(ram.getDirty(0xa000, 4096, DirtyMemoryClient.MIGRATION),
                        "what the backend logged in the replaced log was merged, not lost");
                assertFalse(small.isMarked(0xa000), "the replaced log is closed");

                high.snapshotAndClearDirty(0, 1 << 20, DirtyMemoryClient.MIGRATION);
                assertEquals(MemTxResult.OK, as.write(at, ATTRS, hello, 0, hello.length));
                echo(as, queue, vring, at, hello, at + 0x7000);
                assertTrue(big.isMarked(at + 0x7000), "the backend logs into the new log, at 16 GiB");
                system.globalDirtyLogSync();
                assertTrue(high.getDirty(0x7000, 4096, DirtyMemoryClient.MIGRATION));
                assertFalse(high.getDirty(0x8000, 4096, DirtyMemoryClient.MIGRATION));

                // The high RAM goes: the log shrinks back to what the map reaches, after the table.
                echo(as, queue, vring, 0x2000, hello, 0xb000);
                system.transaction(() -> root.delSubregion(high));
                assertTrue(fe.isOpen(), fe.closedReason());
                assertEquals(4096, memory.dirtyLog().size());
                assertTrue(ram.getDirty(0xb000, 4096, DirtyMemoryClient.MIGRATION), "merged at the shrink");
                echo(as, queue, vring, 0x2000, hello, 0xd000);
                assertTrue(memory.dirtyLog().isMarked(0xd000));
            }
            assertEquals(null, backend.lastError());
            memory.detach();
            assertEquals(null, memory.dirtyLog(), "detach closes the log");
        }
        GuestRam.release(system, ram, high);
    }

    /**
     * The echo device with two queues and a 16-byte config space whose first 8 bytes are read-only (an ID) and
     * whose last 8 the front-end may write.
     */
    static final class TwoQueueEcho implements VhostUserBackend.Device {
        private final byte[] space = Arrays.copyOf("guestmem".getBytes(StandardCharsets.US_ASCII), 16);

        @Override
        public long features() {
            return 0;
        }

        @Override
        public int serve(AddressSpace memory, List<SplitVirtqueue.Buffer> chain) {
            return ECHO.serve(memory, chain);
        }

        @Override
        public int queues() {
            return 2;
        }

        @Override
        public synchronized byte[] config() {
            return space.clone();
        }

        @Override
        public synchronized boolean writeConfig(int offset, byte[] data) {
            if (offset < 8) {
                return false;   // the ID is read-only
            }
            System.arraycopy(data, 0, space, offset, data.length);
            return true;
        }
    }

    @Test
    void configSpaceAndTwoQueues() throws IOException {
        Path socket = socketDir().resolve("echo.sock");
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 1 << 20, HostMemoryBackend.memfd().build());
        system.transaction(() -> root.addSubregion(0, ram));
        AddressSpace as = system.addressSpace("memory", root);
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(), new TwoQueueEcho());
             VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(20),
                     VhostUserPeer.sameUser())) {
            long protocol = VhostUserFrontend.PROTOCOL_F_REPLY_ACK | VhostUserFrontend.PROTOCOL_F_MQ
                    | VhostUserFrontend.PROTOCOL_F_CONFIG;
            assertEquals(protocol, fe.getProtocolFeatures() & protocol, "the backend offers MQ and CONFIG");
            fe.setProtocolFeatures(protocol);
            fe.setOwner();
            fe.setFeatures(fe.getFeatures());
            assertEquals(2, fe.getQueueNum());

            // Config space: read whole and in part, write the writable part, a write to the ID refused alone.
            assertArrayEquals(Arrays.copyOf("guestmem".getBytes(StandardCharsets.US_ASCII), 16),
                    fe.getConfig(0, 16));
            assertArrayEquals("stmem".getBytes(StandardCharsets.US_ASCII), fe.getConfig(3, 5));
            fe.setConfig(10, new byte[] {1, 2, 3});
            assertArrayEquals(new byte[] {0, 0, 1, 2, 3, 0, 0, 0}, fe.getConfig(8, 8));
            VhostUserException refused = assertThrows(VhostUserException.class, () -> fe.setConfig(0, new byte[1]));
            assertEquals("socket=" + socket + " request=SET_CONFIG status=0x1: the backend refused the request",
                    refused.getMessage());
            assertTrue(fe.isOpen(), "a refused write fails that request only");
            assertArrayEquals("guestmem".getBytes(StandardCharsets.US_ASCII), fe.getConfig(0, 8));

            // Two queues, each with its rings in guest RAM and its own thread in the backend, used in turn.
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            SplitVirtqueue q0 = new SplitVirtqueue(as, 0, 8);
            SplitVirtqueue q1 = new SplitVirtqueue(as, 0x4000, 8);
            try (VhostUserVring v0 = VhostUserVring.start(fe, memory, q0, 0, false);
                 VhostUserVring v1 = VhostUserVring.start(fe, memory, q1, 1, false)) {
                byte[] zero = "to queue 0".getBytes(StandardCharsets.US_ASCII);
                byte[] one = "to queue 1".getBytes(StandardCharsets.US_ASCII);
                assertEquals(MemTxResult.OK, as.write(0x10000, ATTRS, zero, 0, zero.length));
                assertEquals(MemTxResult.OK, as.write(0x11000, ATTRS, one, 0, one.length));
                for (int round = 0; round < 10; round++) {
                    echo(as, q0, v0, 0x10000, zero, 0x20000 + 0x100L * round);
                    echo(as, q1, v1, 0x11000, one, 0x30000 + 0x100L * round);
                }
                assertEquals(10, v0.stop());
                assertEquals(10, v1.stop());
            }
            assertEquals(null, backend.lastError());
            memory.detach();
        }
        GuestRam.release(system, ram);
    }

    private static String codeSource(Class<?> c) throws Exception {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    /**
     * The front-end side: memfd guest RAM in two regions (one above 4 GiB), negotiation, the table, one vring, then
     * 20 echo requests (more than the ring's descriptors, so they are recycled), a map change and one more request into
     * the new region; {@code backend}, when in this JVM, is also checked to see the guest's bytes at the same guest
     * addresses.
     */
    private static void echoSession(Path socket, VhostUserBackend backend, long memSlots) {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        MemoryRegion low = system.ram("low", 1 << 20, HostMemoryBackend.memfd().build());
        MemoryRegion high = system.ram("high", 1 << 20, HostMemoryBackend.memfd().build());
        system.transaction(() -> {
            root.addSubregion(0, low);
            root.addSubregion(0x1_0000_0000L, high);
        });
        AddressSpace as = system.addressSpace("memory", root);
        try (VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(20),
                VhostUserPeer.sameUser())) {
            long features = fe.getFeatures();
            fe.setProtocolFeatures(fe.getProtocolFeatures() & (VhostUserFrontend.PROTOCOL_F_REPLY_ACK | memSlots));
            assertEquals(VhostUserFrontend.PROTOCOL_F_REPLY_ACK | memSlots, fe.protocolFeatures());
            fe.setOwner();
            fe.setFeatures(features);
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            SplitVirtqueue queue = new SplitVirtqueue(as, 0, 8);
            try (VhostUserVring vring = VhostUserVring.start(fe, memory, queue, 0, false)) {
                byte[] hello = "guest RAM seen from another address space".getBytes(StandardCharsets.US_ASCII);
                long src = 0x1_0000_0000L + 0x2000;
                assertEquals(MemTxResult.OK, as.write(src, ATTRS, hello, 0, hello.length));
                if (backend != null) {
                    AddressSpace seen = backend.memory();
                    assertNotNull(seen);
                    byte[] there = new byte[hello.length];
                    assertEquals(MemTxResult.OK, seen.read(src, ATTRS, there, 0, there.length));
                    assertArrayEquals(hello, there, "the backend maps the same pages at the same guest addresses");
                }
                for (int round = 0; round < 20; round++) {
                    echo(as, queue, vring, src, hello, 0x8000 + 0x100L * round);
                }
                // The map changes under the running ring (ADD/REM_MEM_REG with mem slots, else SET_MEM_TABLE).
                MemoryRegion extra = system.ram("extra", 1 << 20, HostMemoryBackend.memfd().build());
                system.transaction(() -> {
                    root.addSubregion(0x2_0000_0000L, extra);
                    root.delSubregion(high);
                });
                assertEquals(List.of("low", "extra"), memory.regions().stream().map(VhostUserMemoryRegion::name)
                        .toList());
                assertEquals(MemTxResult.OK, as.write(0x2_0000_0000L, ATTRS, hello, 0, hello.length));
                echo(as, queue, vring, 0x2_0000_0000L, hello, 0x2_0000_8000L);
                assertEquals(21, vring.stop(), "GET_VRING_BASE: the backend read every request");
                memory.detach();
                GuestRam.release(system, low, high, extra);
            }
        }
    }

    @Test
    void aBadMemoryTableDisconnectsTheFrontendOnly() throws Exception {
        Path socket = socketDir().resolve("echo.sock");
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(), ECHO)) {
            int fd = Sockets.unixStreamSocket();
            try (VhostUserChannel channel = new VhostUserChannel(fd)) {
                Sockets.connect(fd, socket.toString());
                // SET_MEM_TABLE saying 2 regions with no descriptor attached.
                byte[] table = ByteBuffer.allocate(8 + 64).order(ByteOrder.LITTLE_ENDIAN).putInt(2).array();
                channel.send(VhostUserRequest.SET_MEM_TABLE.code(), VhostUserChannel.VERSION, table, new int[0],
                        System.nanoTime() + 10_000_000_000L);
                VhostUserChannel.Failure gone = assertThrows(VhostUserChannel.Failure.class,
                        () -> channel.receive(System.nanoTime() + 20_000_000_000L));
                assertEquals("bytes=0 of 12: the backend closed the connection", gone.getMessage());
            }
            assertEquals("socket=" + socket + ": request=SET_MEM_TABLE regions=2 size=72 fds=0: the table, its size"
                    + " and its descriptors do not match", backend.lastError());

            // The next front-end is served.
            try (VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(20),
                    VhostUserPeer.sameUser())) {
                assertTrue((fe.getFeatures() & VhostUserFrontend.VIRTIO_F_VERSION_1) != 0);
            }
        }
    }
}
