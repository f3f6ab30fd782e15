package dev.guestmem.offheap.vhost;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A second JVM that is a vhost-user backend: the echo device of {@link VhostUserJavaBackendTest} on the socket named
 * by its argument. Prints {@code listening} once the socket is there, and serves until its standard input closes.
 */
public final class EchoBackendMain {
    private EchoBackendMain() {
    }

    public static void main(String[] args) throws IOException {
        try (VhostUserBackend backend = VhostUserBackend.listen(Path.of(args[0]), VhostUserPeer.sameUser(),
                VhostUserJavaBackendTest.ECHO)) {
            System.out.println("listening");
            System.out.flush();
            while (System.in.read() >= 0) {
                // served on the backend's own threads until the parent closes this pipe
            }
            String error = backend.lastError();
            System.out.println(error == null ? "clean" : error);
        }
    }
}
