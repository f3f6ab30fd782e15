package dev.guestmem.offheap.vhost;

import java.util.Map;
import java.util.List;
import dev.guestmem.memory.contract.ProcFs;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.offheap.internal.linux.Linux;
import dev.guestmem.offheap.internal.linux.Sockets;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.function.IntConsumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A backend that answers GET_FEATURES wrongly, played by a thread on the other end of a real Unix socket: each wrong
 * answer closes the connection with its reason, thrown to the requesting thread only, and leaves no descriptor open.
 */
class VhostUserBadReplyTest {
    @TempDir
    Path tmp;

    static Stream<Arguments> badBackends() {
        return Stream.of(
                Arguments.of("wrong request", (IntConsumer) fd -> reply(fd, 2, 0x5, 8, new int[0]),
                        "reply request=SET_FEATURES: not the request's reply"),
                Arguments.of("wrong size", (IntConsumer) fd -> reply(fd, 1, 0x5, 4, new int[0]),
                        "reply size=4 expected=8"),
                Arguments.of("not a reply", (IntConsumer) fd -> reply(fd, 1, 0x1, 8, new int[0]),
                        "reply flags=0x1: not a version 1 reply"),
                Arguments.of("huge size", (IntConsumer) fd -> reply(fd, 1, 0x5, 1 << 30, new int[0]),
                        "request=GET_FEATURES size=1073741824 max=4096: payload too big"),
                Arguments.of("descriptors", (IntConsumer) fd -> {
                    int e = Sockets.eventfd(0, Sockets.EFD_CLOEXEC);
                    reply(fd, 1, 0x5, 8, new int[] {e, e});
                    Linux.close(e);
                }, "reply fds=2: a reply carries none"),
                Arguments.of("truncated", (IntConsumer) fd -> {
                    Sockets.sendmsg(fd, new byte[] {1, 0, 0, 0, 5}, 0, 5, new int[0]);
                }, "bytes=5 of 12: the backend closed the connection"),
                Arguments.of("closed", (IntConsumer) fd -> { },
                        "bytes=0 of 12: the backend closed the connection"),
                Arguments.of("silent", (IntConsumer) fd -> Sockets.poll(fd, Sockets.POLLHUP, 30_000),
                        "timeout: waited in vain for the reply"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badBackends")
    void aBadReplyClosesTheConnection(String name, IntConsumer backend, String reason) throws Exception {
        Map<Integer, String> fdsBefore = ProcFs.openFdTargets();
        String path = tmp.resolve("bad.sock").toString();
        int listener = Sockets.unixStreamSocket();
        Sockets.bind(listener, path);
        Sockets.listen(listener, 1);
        CompletableFuture<Void> peer = CompletableFuture.runAsync(() -> {
            Sockets.poll(listener, Sockets.POLLIN, 30_000);
            int fd = Sockets.accept(listener);
            try {
                Sockets.poll(fd, Sockets.POLLIN, 30_000);
                Sockets.recvmsg(fd, new byte[12], 0, 12, 0);   // the GET_FEATURES request
                backend.accept(fd);
            } finally {
                Linux.close(fd);
            }
        });
        // Only the silent peer waits out its timeout; the others get one long enough for a loaded machine.
        Duration timeout = name.equals("silent") ? Duration.ofMillis(300) : Duration.ofSeconds(30);
        VhostUserFrontend fe = VhostUserFrontend.connect(Path.of(path), timeout, VhostUserPeer.sameUser());
        VhostUserException e = assertThrows(VhostUserException.class, fe::getFeatures);
        assertEquals("socket=" + path + " request=GET_FEATURES: " + reason, e.getMessage());
        assertFalse(fe.isOpen());
        assertEquals(e.getMessage(), fe.closedReason());
        assertTrue(assertThrows(VhostUserException.class, fe::getFeatures).getMessage().endsWith(": " + reason + ")"));
        fe.close();
        peer.get();
        Linux.close(listener);
        assertEquals(List.of(), ProcFs.openedSinceExceptPipes(fdsBefore), "no descriptor leaks");
    }

    private static void reply(int fd, int request, int flags, int size, int[] fds) {
        byte[] msg = new byte[12 + 8];
        ByteBuffer.wrap(msg).order(ByteOrder.LITTLE_ENDIAN).putInt(request).putInt(flags).putInt(size).putLong(0);
        Sockets.sendmsg(fd, msg, 0, msg.length, fds);
    }

}
