package dev.guestmem.offheap.vhost;

import java.util.Map;
import dev.guestmem.memory.contract.ProcFs;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import dev.guestmem.offheap.internal.linux.Linux;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The front-end against native-test-images' vhost-hostile-backend, a C program (built there by the machine's gcc)
 * that misbehaves on demand in its own process: each case closes the connection with its reason, thrown only to the
 * thread that made the request, and leaves guest RAM unchanged and no descriptor open.
 */
class VhostUserHostilePeerTest {
    private static Path program;

    @TempDir
    Path tmp;

    @BeforeAll
    static void built() {
        String path = System.getProperty("guestmem.vhost.hostile");
        assertNotNull(path, "guestmem.vhost.hostile: set by the build to native-test-images' vhost-hostile-backend");
        program = Path.of(path);
        assertTrue(Files.isExecutable(program), "program=" + program + ": not built (native-test-images builds it"
                + " with gcc; run the whole build, e.g. ./guestmem test)");
    }

    /** The peer process, its socket and its stdout. */
    private record Peer(Process process, Path socket, BufferedReader out) implements AutoCloseable {
        static Peer start(Path tmp, String mode) throws IOException {
            Path dir = Files.createTempDirectory(tmp, "peer",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            Path socket = dir.resolve("hostile.sock");
            Process p = new ProcessBuilder(program.toString(), socket.toString(), mode)
                    .redirectInput(QemuStorageDaemon.NO_INPUT).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("ready", out.readLine(), "the peer listens");
            return new Peer(p, socket, out);
        }

        @Override
        public void close() {
            process.destroyForcibly();
            try {
                process.waitFor(30, TimeUnit.SECONDS);
                out.close();   // here, not later on the JDK's reaper thread
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    static Stream<Arguments> modes() {
        return Stream.of(
                Arguments.of("wrong-size", "reply size=4 expected=8"),
                Arguments.of("wrong-type", "reply request=SET_FEATURES: not the request's reply"),
                Arguments.of("extra-fds", "reply fds=2: a reply carries none"),
                // More than a message may carry: the kernel passes the 8 the front-end makes room for, closes the rest.
                Arguments.of("many-fds", "fds=8+: descriptors where the protocol allows none"),
                Arguments.of("late-fds", "fds=1: descriptors where the protocol allows none"),
                Arguments.of("truncated", "bytes=6 of 12: the backend closed the connection"),
                Arguments.of("flood", "reply request=code=99: not the request's reply"),
                Arguments.of("silent", "timeout: waited in vain for the reply"),
                Arguments.of("die", "bytes=8 of 12: the backend closed the connection"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("modes")
    void aHostilePeerOnlyLosesItsConnection(String mode, String reason) throws Exception {
        MemorySystem system = new MemorySystem();
        MemoryRegion ram = system.ram("ram", 1 << 20, HostMemoryBackend.memfd().build());
        byte[] pattern = pattern(ram);
        AtomicReference<Throwable> escaped = new AtomicReference<>();
        AtomicReference<VhostUserException> thrown = new AtomicReference<>();
        try (Peer peer = Peer.start(tmp, mode)) {
            Map<Integer, String> fdsBefore = ProcFs.openFdTargets();
            // Only the silent peer waits out its timeout; the others get one long enough for a loaded machine.
            Duration timeout = mode.equals("silent") ? Duration.ofMillis(300) : Duration.ofSeconds(30);
            VhostUserFrontend fe = VhostUserFrontend.connect(peer.socket(), timeout, VhostUserPeer.sameUser());
            Thread requester = new Thread(() -> {
                try {
                    fe.getFeatures();
                } catch (VhostUserException e) {
                    thrown.set(e);
                }
            }, "requester-" + mode);
            requester.setUncaughtExceptionHandler((t, e) -> escaped.set(e));
            requester.start();
            requester.join(TimeUnit.SECONDS.toMillis(60));
            assertFalse(requester.isAlive(), "the request ended");
            assertEquals(null, escaped.get(), "nothing else escaped the requesting thread");
            assertNotNull(thrown.get(), "the request failed");
            assertEquals("socket=" + peer.socket() + " request=GET_FEATURES: " + reason, thrown.get().getMessage());
            assertFalse(fe.isOpen());
            fe.close();
            assertEquals(List.of(), ProcFs.openedSinceExceptPipes(fdsBefore), "no descriptor leaks");
        }
        assertArrayEquals(pattern, ram.ramSegment().toArray(ValueLayout.JAVA_BYTE), "guest RAM unchanged");
        GuestRam.release(system, ram);
    }

    @Test
    void aPeerCannotShrinkTheSealedGuestRamItWasGiven() throws Exception {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 1 << 20, HostMemoryBackend.memfd().build());
        MemoryRegion high = system.ram("high", 1 << 20, HostMemoryBackend.memfd().build());
        system.transaction(() -> {
            root.addSubregion(0, ram);
            root.addSubregion(1 << 24, high);
        });
        AddressSpace as = system.addressSpace("memory", root);
        byte[] pattern = pattern(ram);
        try (Peer peer = Peer.start(tmp, "shrink");
             VhostUserFrontend fe = VhostUserFrontend.connect(peer.socket(), Duration.ofSeconds(20),
                     VhostUserPeer.sameUser())) {
            fe.getFeatures();
            assertEquals(0, fe.getProtocolFeatures());
            fe.setOwner();
            fe.setFeatures(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES);
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            assertEquals(2, memory.regions().size());
            assertTrue(peer.process().waitFor(60, TimeUnit.SECONDS), "the peer tried and exited");
            List<String> lines = new ArrayList<>();
            for (String line; (line = peer.out().readLine()) != null; ) {
                lines.add(line);
            }
            assertEquals(List.of("ftruncate=EPERM", "ftruncate=EPERM"), lines, "the seals held");
            assertEquals(1 << 20, Linux.fstat(ram.getFd()).size());
            assertEquals(1 << 20, Linux.fstat(high.getFd()).size());
            byte[] now = new byte[1 << 20];
            assertEquals(MemTxResult.OK, as.read(0, MemTxAttrs.UNSPECIFIED, now, 0, now.length));
            assertArrayEquals(pattern, now, "guest RAM unchanged");
            memory.detach();
        }
        GuestRam.release(system, ram, high);
    }

    private static byte[] pattern(MemoryRegion ram) {
        byte[] b = new byte[(int) ram.size()];
        new SplittableRandom(ram.name().hashCode()).nextBytes(b);
        MemorySegment.copy(b, 0, ram.ramSegment(), ValueLayout.JAVA_BYTE, 0, b.length);
        return b;
    }

}
