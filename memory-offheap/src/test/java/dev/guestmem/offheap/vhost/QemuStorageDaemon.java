package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real, unmodified Debian {@code qemu-storage-daemon} exporting a raw image as a vhost-user-blk device on a socket
 * in a directory only this user can enter. Closing it kills the daemon. Where the daemon is missing the test fails
 * with the line saying what to install: it never skips.
 */
final class QemuStorageDaemon implements AutoCloseable {
    /**
     * Standard input for child processes: none. A pipe would be one more descriptor of this JVM that the JDK closes
     * on its own thread whenever the child ends, under the feet of tests that count this process's descriptors.
     */
    static final ProcessBuilder.Redirect NO_INPUT = ProcessBuilder.Redirect.from(new File("/dev/null"));

    static final String MISSING = "qemu-storage-daemon missing: install it with 'apt-get install qemu-system-common'"
            + " (scripts/setup-host.sh does it as root)";

    private final Process process;
    private final Path socket;
    private final Path log;

    private QemuStorageDaemon(Process process, Path socket, Path log) {
        this.process = process;
        this.socket = socket;
        this.log = log;
    }

    /** The daemon's executable on PATH; fails the test with {@link #MISSING} where there is none. */
    static Path executable() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, "qemu-storage-daemon");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return fail(MISSING);
    }

    /**
     * Starts the daemon on {@code image} with its socket in a new mode-0700 directory under {@code tmp}, and waits
     * until the socket accepts connections.
     */
    static QemuStorageDaemon start(Path tmp, Path image) {
        Path exe = executable();
        try {
            Path dir = Files.createTempDirectory(tmp, "vhost",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            Path socket = dir.resolve("blk.sock");
            Path log = dir.resolve("daemon.log");
            Process p = new ProcessBuilder(List.of(exe.toString(),
                    "--blockdev", "driver=file,node-name=file0,filename=" + image,
                    "--blockdev", "driver=raw,node-name=disk0,file=file0",
                    "--export", "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=" + socket
                            + ",writable=on"))
                    .redirectInput(NO_INPUT).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            QemuStorageDaemon d = new QemuStorageDaemon(p, socket, log);
            d.awaitSocket();
            return d;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void awaitSocket() throws IOException {
        // Generous: a start-up bound, not a measurement. The daemon binds its socket once it is ready.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!listening(socket)) {
            if (!process.isAlive()) {
                fail("qemu-storage-daemon exited with " + process.exitValue() + ": " + Files.readString(log));
            }
            if (System.nanoTime() > deadline) {
                close();
                fail("qemu-storage-daemon: no socket after 30 s: " + Files.readString(log));
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * Whether a socket bound to {@code path} listens: the daemon binds before it listens, and a connect in between is
     * refused. /proc/net/unix flags a listening socket with __SO_ACCEPTCON (00010000).
     */
    static boolean listening(Path path) throws IOException {
        if (!Files.exists(path)) {
            return false;
        }
        for (String line : Files.readAllLines(Path.of("/proc/net/unix"))) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 8 && f[7].equals(path.toString()) && f[3].equals("00010000")) {
                return true;
            }
        }
        return false;
    }

    Path socket() {
        return socket;
    }

    long pid() {
        return process.pid();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** What the daemon printed. */
    String log() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
