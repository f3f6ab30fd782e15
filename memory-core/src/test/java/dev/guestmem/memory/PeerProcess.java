package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * native-test-images' {@code guestmem-peer}: a second process that maps a file (or {@code /proc/PID/fd/N}) shared and
 * writes, reads or truncates it. Found through the {@code guestmem.peer} system property, which the build's surefire
 * configuration sets to the program native-test-images built.
 */
final class PeerProcess {
    private static final long TIMEOUT_SECONDS = 30;

    private PeerProcess() {
    }

    /** What one run printed (one line per operation) and its exit status. */
    record Result(List<String> lines, int status) {
        /** The hex of the {@code index}th line, which must be {@code ok read HEX}. */
        String readHex(int index) {
            String line = lines.get(index);
            assertTrue(line.startsWith("ok read "), () -> "peer line " + index + ": " + line);
            return line.substring("ok read ".length());
        }
    }

    /** The peer program; fails the test with what to do when it was not built. */
    static Path binary() {
        String property = System.getProperty("guestmem.peer");
        if (property == null || !Files.isExecutable(Path.of(property))) {
            fail("guestmem.peer=" + property + ": the peer program is not built; build native-test-images first"
                    + " (./guestmem test builds it before memory-core, or add -pl native-test-images,memory-core)");
        }
        return Path.of(property);
    }

    /** Runs the peer on {@code path} with {@code ops} and waits for it to exit. */
    static Result run(Path path, String... ops) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(binary().toString());
        command.add(path.toString());
        command.addAll(List.of(ops));
        Process p = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out;
        try (InputStream in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
        if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("peer " + command + " did not exit within " + TIMEOUT_SECONDS + " s");
        }
        return new Result(out.lines().toList(), p.exitValue());
    }

    /**
     * A memfd that a peer process creates and holds ({@code guestmem-peer --memfd}); other processes open it by
     * {@link #path()}. Closing ends the peer, and with it the memfd once nobody else holds it.
     */
    static final class Memfd implements AutoCloseable {
        private final Process process;
        private final Path path;

        /** A memfd of {@code size} bytes; {@code sealed}: with F_SEAL_SHRINK and F_SEAL_GROW. */
        Memfd(long size, boolean sealed) throws IOException {
            List<String> command = new ArrayList<>(List.of(binary().toString(), "--memfd", Long.toString(size)));
            if (sealed) {
                command.add("sealed");
            }
            process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            String line = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.US_ASCII)).readLine();
            if (line == null || !line.startsWith("/proc/")) {
                process.destroyForcibly();
                fail("guestmem-peer --memfd printed " + line + " instead of a /proc path");
            }
            path = Path.of(line);
        }

        Path path() {
            return path;
        }

        @Override
        public void close() throws IOException {
            process.getOutputStream().close(); // the peer waits for its standard input to end
            boolean exited;
            try {
                exited = process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                exited = false;
            }
            if (!exited) {
                process.destroyForcibly();
                fail("guestmem-peer --memfd did not exit within " + TIMEOUT_SECONDS + " s");
            }
            assertEquals(0, process.exitValue(), "guestmem-peer --memfd exit status");
        }
    }

    /** Hex digits of {@code bytes}, two a byte, as the peer reads and writes them. */
    static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder(2 * bytes.length);
        for (byte b : bytes) {
            sb.append(Character.forDigit((b >> 4) & 15, 16)).append(Character.forDigit(b & 15, 16));
        }
        return sb.toString();
    }
}
