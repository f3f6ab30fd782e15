package dev.guestmem.offheap.internal.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.contract.ProcFs;
import dev.guestmem.offheap.ErrnoException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Unix-socket layer on real sockets: bytes and descriptors both ways, poll timeouts, end of stream, peer creds. */
class SocketsTest {
    @TempDir
    Path dir;

    private int listener = -1;
    private int client = -1;
    private int server = -1;
    private Map<Integer, String> fdsBefore;

    @BeforeEach
    void connectPair() {
        fdsBefore = ProcFs.openFdTargets();
        String path = dir.resolve("s.sock").toString();
        listener = Sockets.unixStreamSocket();
        Sockets.bind(listener, path);
        Sockets.listen(listener, 1);
        client = Sockets.unixStreamSocket();
        Sockets.connect(client, path);
        assertEquals(Sockets.POLLIN, Sockets.poll(listener, Sockets.POLLIN, 10_000) & Sockets.POLLIN);
        server = Sockets.accept(listener);
    }

    @AfterEach
    void closeAll() {
        for (int fd : new int[] {listener, client, server}) {
            if (fd >= 0) {
                Linux.close(fd);
            }
        }
        assertEquals(Map.of(), ProcFs.openedSince(fdsBefore), "every descriptor the test made is closed");
    }

    @Test
    void bytesAndDescriptorsArrive() {
        int efd = Sockets.eventfd(0, Sockets.EFD_CLOEXEC | Sockets.EFD_NONBLOCK);
        try {
            byte[] data = {1, 2, 3, 4, 5};
            assertEquals(5, Sockets.sendmsg(client, data, 0, 5, new int[] {efd}));
            assertEquals(Sockets.POLLIN, Sockets.poll(server, Sockets.POLLIN, 10_000) & Sockets.POLLIN);
            byte[] got = new byte[16];
            Sockets.Received r = Sockets.recvmsg(server, got, 0, 16, 4);
            assertEquals(5, r.bytes());
            assertArrayEquals(data, Arrays.copyOf(got, 5));
            assertFalse(r.controlTruncated());
            assertEquals(1, r.fds().length);
            int received = r.fds()[0];
            assertNotEquals(efd, received, "a new descriptor for the same eventfd");
            // Signalled through the received descriptor, read through the original: one kernel object.
            Sockets.eventfdWrite(received, 7);
            assertEquals(7, Sockets.eventfdRead(efd));
            assertEquals(0, Sockets.eventfdRead(efd), "a read resets the counter");
            Linux.close(received);
        } finally {
            Linux.close(efd);
        }
    }

    @Test
    void descriptorsBeyondTheLimitAreClosedAndReported() {
        int[] efds = new int[3];
        for (int i = 0; i < efds.length; i++) {
            efds[i] = Sockets.eventfd(0, Sockets.EFD_CLOEXEC);
        }
        Map<Integer, String> open = ProcFs.openFdTargets();
        Sockets.sendmsg(client, new byte[] {9}, 0, 1, efds);
        Sockets.poll(server, Sockets.POLLIN, 10_000);
        Sockets.Received r = Sockets.recvmsg(server, new byte[1], 0, 1, 1);
        assertEquals(1, r.bytes());
        assertTrue(r.controlTruncated());
        assertEquals(1, r.fds().length, "only what fits is installed");
        assertEquals(java.util.Set.of(r.fds()[0]), ProcFs.openedSince(open).keySet());
        Linux.close(r.fds()[0]);
        for (int fd : efds) {
            Linux.close(fd);
        }
    }

    @Test
    void pollTimesOutAndEndOfStreamIsZero() {
        assertEquals(0, Sockets.poll(server, Sockets.POLLIN, 20), "nothing sent: the time runs out");
        assertEquals(-1, Sockets.recvmsg(server, new byte[4], 0, 4, 0).bytes(), "nothing there: EAGAIN");
        Linux.close(client);
        client = -1;
        assertTrue((Sockets.poll(server, Sockets.POLLIN, 10_000) & (Sockets.POLLIN | Sockets.POLLHUP)) != 0);
        assertEquals(0, Sockets.recvmsg(server, new byte[4], 0, 4, 0).bytes());
        ErrnoException e = assertThrows(ErrnoException.class,
                () -> Sockets.sendmsg(server, new byte[] {1}, 0, 1, new int[0]));
        assertEquals("EPIPE", e.errnoName(), "a gone peer is an error, not a SIGPIPE");
    }

    @Test
    void peerCredentialsNameThisProcess() {
        Sockets.PeerCredentials cred = Sockets.peerCredentials(server);
        assertEquals(ProcessHandle.current().pid(), cred.pid());
        assertEquals(cred, Sockets.peerCredentials(client));
    }

    @Test
    void badPathsAndRefusedConnectsAreOneLine() {
        int fd = Sockets.unixStreamSocket();
        try {
            String missing = dir.resolve("missing.sock").toString();
            ErrnoException e = assertThrows(ErrnoException.class, () -> Sockets.connect(fd, missing));
            assertEquals("connect(fd=" + fd + ", path=" + missing + ") failed: ENOENT", e.getMessage());
            String longPath = "/tmp/" + "x".repeat(120);
            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                    () -> Sockets.connect(fd, longPath));
            assertTrue(bad.getMessage().startsWith("path=" + longPath + " length=125 max=107"), bad.getMessage());
        } finally {
            Linux.close(fd);
        }
    }
}
