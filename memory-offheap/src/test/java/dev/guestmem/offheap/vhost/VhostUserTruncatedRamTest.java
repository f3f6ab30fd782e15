package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A front-end that truncates the file behind its memory under the Java backend: the Java front-end in this process
 * shares 1 MiB of guest RAM (a shared file, or a memfd without seals), and a second process ({@code guestmem-peer} from
 * native-test-images) cuts the file to its first half. The backend's address space then answers
 * {@link MemTxResult#ERROR} for the pages gone and keeps serving the half kept; a request whose buffers are gone is
 * served with the device seeing the error; a ring whose own structures are gone breaks the device (libvhost-user's
 * {@code vu_panic}): the connection closes with one reason and the next front-end is served. Forbidden: an exception
 * in the test's thread or escaping a backend or ring thread, a wrong value from the half kept, a hang. A sealed memfd
 * refuses the truncation and keeps the backend's plain accesses (atomics, which guarded RAM refuses, work on it).
 */
class VhostUserTruncatedRamTest {
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;
    private static final long SIZE = 1 << 20;
    /** What the peer leaves of the file: its first half. */
    private static final long KEEP = SIZE / 2;
    private static final long PEER_SECONDS = 30;

    @TempDir
    Path tmp;

    private final ConcurrentLinkedQueue<String> escaped = new ConcurrentLinkedQueue<>();
    private Thread.UncaughtExceptionHandler previousHandler;
    private final RecordingEcho device = new RecordingEcho();
    /** Where the backend listens, in a directory of mode 0700. */
    private Path socket;

    @BeforeEach
    void socketAndEscapes() throws IOException {
        socket = Files.createTempDirectory(tmp, "backend",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"))).resolve("b.sock");
        previousHandler = Thread.getDefaultUncaughtExceptionHandler();
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> escaped.add(t.getName() + ": " + e));
    }

    @AfterEach
    void restore() {
        Thread.setDefaultUncaughtExceptionHandler(previousHandler);
        assertEquals(List.of(), List.copyOf(escaped), "nothing escaped a backend or ring thread");
    }

    /** The device of these tests: the echo, keeping every result its accesses to the buffers got. */
    private static final class RecordingEcho implements VhostUserBackend.Device {
        final ConcurrentLinkedQueue<Integer> results = new ConcurrentLinkedQueue<>();

        @Override
        public long features() {
            return 0;
        }

        @Override
        public int serve(AddressSpace memory, List<SplitVirtqueue.Buffer> chain) {
            List<byte[]> in = new ArrayList<>();
            int total = 0;
            for (SplitVirtqueue.Buffer b : chain) {
                if (!b.deviceWrites()) {
                    byte[] bytes = new byte[b.length()];
                    results.add(memory.read(b.guestAddress(), ATTRS, bytes, 0, bytes.length));
                    in.add(bytes);
                    total += bytes.length;
                }
            }
            byte[] all = new byte[total];
            int at = 0;
            for (byte[] bytes : in) {
                System.arraycopy(bytes, 0, all, at, bytes.length);
                at += bytes.length;
            }
            int done = 0;
            for (SplitVirtqueue.Buffer b : chain) {
                if (b.deviceWrites() && done < all.length) {
                    int n = Math.min(b.length(), all.length - done);
                    results.add(memory.write(b.guestAddress(), ATTRS, all, done, n));
                    done += n;
                }
            }
            return done;
        }
    }

    /** The front-end's side: its guest RAM, the connection and one queue whose rings start at {@code queueAt}. */
    private record Frontend(MemorySystem system, MemoryRegion ram, AddressSpace as, VhostUserFrontend fe,
                            VhostUserMemoryListener memory, SplitVirtqueue queue, VhostUserVring vring)
            implements AutoCloseable {
        static Frontend connect(Path socket, HostMemoryBackend backend, long queueAt) {
            MemorySystem system = new MemorySystem();
            MemoryRegion root = system.container("system", U64.SIZE_2_64);
            MemoryRegion ram = system.ram("shared.ram", SIZE, backend);
            system.transaction(() -> root.addSubregion(0, ram));
            AddressSpace as = system.addressSpace("memory", root);
            VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(20), VhostUserPeer.sameUser());
            fe.setProtocolFeatures(fe.getProtocolFeatures() & VhostUserFrontend.PROTOCOL_F_REPLY_ACK);
            fe.setOwner();
            fe.setFeatures(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES);
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            SplitVirtqueue queue = new SplitVirtqueue(as, queueAt, 16);
            VhostUserVring vring = VhostUserVring.start(fe, memory, queue, 0, false);
            return new Frontend(system, ram, as, fe, memory, queue, vring);
        }

        /** Puts {@code hello} at {@code src} and a request echoing it to {@code dst} on the queue; returns its head. */
        int request(long src, byte[] hello, long dst) {
            if (U64.lt(src, KEEP)) {
                assertEquals(MemTxResult.OK, as.write(src, ATTRS, hello, 0, hello.length));
            }
            return queue.add(List.of(new SplitVirtqueue.Buffer(src, hello.length, false),
                    new SplitVirtqueue.Buffer(dst, hello.length, true)));
        }

        /** Kicks and waits for the used element of the request {@code head}. */
        void awaitUsed(int head, int written) {
            vring.kick();
            SplitVirtqueue.Used used;
            while ((used = queue.poll()) == null) {
                assertTrue(vring.awaitCall(20_000), "the backend signals the used buffer");
            }
            assertEquals(new SplitVirtqueue.Used(head, written), used);
        }

        @Override
        public void close() {
            vring.close();
            fe.close();
            GuestRam.release(system, ram);
        }
    }

    /** Unsealed RAM of each kind the front-end can truncate: a shared file, a memfd without seals. */
    private HostMemoryBackend unsealed(String kind) {
        return switch (kind) {
            case "file" -> HostMemoryBackend.file(tmp.resolve("guest.ram")).create(true).share(true).build();
            case "memfd" -> HostMemoryBackend.memfd().seal(false).build();
            default -> throw new IllegalArgumentException("kind=" + kind);
        };
    }

    /**
     * The second process cuts the file behind {@code ram} to {@code length} bytes, by its path in this process
     * ({@code /proc/PID/fd/N}, which opens the file itself, memfd or not); returns what the peer printed.
     */
    private static String truncate(MemoryRegion ram, long length) throws IOException, InterruptedException {
        String peer = System.getProperty("guestmem.peer");
        if (peer == null || !Files.isExecutable(Path.of(peer))) {
            fail("guestmem.peer=" + peer + ": the peer program is not built; build native-test-images first"
                    + " (add -pl native-test-images,memory-core,memory-offheap)");
        }
        Path fd = Path.of("/proc/" + ProcessHandle.current().pid() + "/fd/" + ram.ramBlock().fd());
        Process p = new ProcessBuilder(peer, fd.toString(), "truncate", Long.toString(length))
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out;
        try (InputStream in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.US_ASCII).strip();
        }
        if (!p.waitFor(PEER_SECONDS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("guestmem-peer did not exit within " + PEER_SECONDS + " s");
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"file", "memfd"})
    void theBackendsAccessesToTruncatedMemoryAreErrors(String kind) throws Exception {
        byte[] hello = "kept across the truncation".getBytes(StandardCharsets.US_ASCII);
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(), device);
             Frontend f = Frontend.connect(socket, unsealed(kind), 0)) {
            // Before: the backend reads and writes both halves.
            f.awaitUsed(f.request(0x2000, hello, 0x9000), hello.length);
            AddressSpace memory = backend.memory();
            assertEquals(MemTxResult.OK, memory.stqLe(0xc_0000, 0x1122_3344_5566_7788L, ATTRS));
            int[] r = {-1};
            assertEquals(0x1122_3344_5566_7788L, f.as().ldqLe(0xc_0000, ATTRS, r), "the same memory");
            assertEquals(MemTxResult.OK, r[0]);
            memory.atomicFetchOp(AtomicOp.FETCH_ADD, 0x100, 1, 8, false, r);
            assertEquals(MemTxResult.ATOMIC_REFUSED, r[0],
                    "a file that can shrink is RAM that may fault: its atomics are refused, its accesses guarded");
            assertTrue(device.results.stream().allMatch(x -> x == MemTxResult.OK), device.results.toString());
            device.results.clear();

            assertEquals("ok truncate", truncate(f.ram(), KEEP));

            // After: the part gone is an error, the part kept reads what it held and takes writes.
            assertEquals(0, memory.ldqLe(0xc_0000, ATTRS, r));
            assertEquals(MemTxResult.ERROR, r[0]);
            assertEquals(MemTxResult.ERROR, memory.stlLe(SIZE - 4, 7, ATTRS));
            byte[] across = new byte[0x100];
            assertEquals(MemTxResult.ERROR, memory.read(KEEP - 0x80, ATTRS, across, 0, across.length));
            byte[] back = new byte[hello.length];
            assertEquals(MemTxResult.OK, memory.read(0x9000, ATTRS, back, 0, back.length));
            assertArrayEquals(hello, back, "the echo of before, in the part kept");
            assertEquals(MemTxResult.OK, memory.stqLe(KEEP - 8, 42, ATTRS));
            assertEquals(42, f.as().ldqLe(KEEP - 8, ATTRS, r));

            // A request whose buffers are gone: served, the device seeing the errors; the rings are in the part kept.
            int head = f.request(0xd_0000, hello, 0xe_0000);
            f.awaitUsed(head, hello.length);
            assertEquals(List.of(MemTxResult.ERROR, MemTxResult.ERROR), List.copyOf(device.results));
            device.results.clear();
            // And the ring goes on: the next request, in the part kept, is echoed.
            f.awaitUsed(f.request(0x3000, hello, 0xa000), hello.length);
            assertEquals(MemTxResult.OK, f.as().read(0xa000, ATTRS, back, 0, back.length));
            assertArrayEquals(hello, back);
            assertTrue(f.fe().isOpen(), f.fe().closedReason());
            assertEquals(null, backend.lastError());
        }
    }

    /**
     * A ring whose memory goes: all of it (the first access, the available index, faults), or all but the descriptor
     * table and the head of the available ring (the request is served, then the used element's store faults).
     */
    @ParameterizedTest(name = "{0}, rings at {1}")
    @CsvSource({"file, 0xc0000, 0xc0102, 0", "memfd, 0xc0000, 0xc0102, 0", "file, 0x7fef0, 0x8001c, 2",
        "memfd, 0x7fef0, 0x8001c, 2"})
    void aRingInTruncatedMemoryBreaksTheDevice(String kind, String rings, String faultAt, int served)
            throws Exception {
        byte[] hello = "kicked after the truncation".getBytes(StandardCharsets.US_ASCII);
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(), device)) {
            try (Frontend f = Frontend.connect(socket, unsealed(kind), Long.decode(rings))) {
                f.request(0x2000, hello, 0x9000);   // published in the ring before its memory goes
                assertEquals("ok truncate", truncate(f.ram(), KEEP));
                f.vring().kick();
                // The ring's access faults: the device is broken and the connection closed, as vu_panic does.
                long deadline = System.nanoTime() + 20_000_000_000L;
                while (backend.lastError() == null) {
                    assertTrue(System.nanoTime() < deadline, "the backend gives up on the broken device");
                    Thread.sleep(10);
                }
                String error = backend.lastError();
                assertTrue(error.contains("vring=0: guestAddress=" + faultAt + " result=1")
                        && error.endsWith("the device is broken"), error);
                assertThrows(VhostUserException.class, () -> f.fe().getFeatures(), "the connection is closed");
                assertEquals(Collections.nCopies(served, MemTxResult.OK), List.copyOf(device.results),
                        "the device's accesses, in the part kept");
            }
            // The backend serves the next front-end, over a sealed memfd.
            try (Frontend f = Frontend.connect(socket, HostMemoryBackend.memfd().build(), 0)) {
                byte[] next = "the next front-end".getBytes(StandardCharsets.US_ASCII);
                f.awaitUsed(f.request(0x2000, next, 0x9000), next.length);
                byte[] back = new byte[next.length];
                assertEquals(MemTxResult.OK, f.as().read(0x9000, ATTRS, back, 0, back.length));
                assertArrayEquals(next, back);
            }
        }
    }

    @Test
    void aSealedMemfdRefusesTheTruncationAndKeepsThePlainAccesses() throws Exception {
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(), device);
             Frontend f = Frontend.connect(socket, HostMemoryBackend.memfd().build(), 0)) {
            AddressSpace memory = backend.memory();
            assertNotNull(memory);
            int[] r = {-1};
            assertEquals(0, memory.atomicFetchOp(AtomicOp.FETCH_ADD, 0xc_0000, 5, 8, false, r));
            assertEquals(MemTxResult.OK, r[0], "a sealed memfd cannot fault: its RAM keeps the plain accesses");
            assertEquals("error truncate EPERM", truncate(f.ram(), KEEP));
            assertEquals(5, memory.ldqLe(0xc_0000, ATTRS, r));
            assertEquals(MemTxResult.OK, r[0]);
            assertEquals(MemTxResult.OK, memory.stqLe(SIZE - 8, 9, ATTRS));
            assertEquals(9, f.as().ldqLe(SIZE - 8, ATTRS, r));
            assertEquals(null, backend.lastError());
        }
    }
}
