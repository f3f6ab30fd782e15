package dev.guestmem.bench.cli;

import dev.guestmem.memory.map.MachineMap;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;

/**
 * The text inputs of the tool's commands: a file, or standard input for {@code -}, as UTF-8, read up to
 * {@link #MAX_BYTES} (so {@code /dev/zero} or an endless pipe is refused, not read until the heap runs out).
 */
final class InputText {
    /** The largest input read: 512 MiB, about five times the map or dump of a million regions. */
    static final int MAX_BYTES = 512 << 20;

    private InputText() {
    }

    /**
     * The text of {@code arg} ({@code -} is {@code stdin}).
     *
     * @throws IOException if it cannot be read, or is larger than {@link #MAX_BYTES}
     * @throws dev.guestmem.memory.map.MapFormatException if it is not UTF-8 text
     */
    static String read(String arg, InputStream stdin) throws IOException {
        try (InputStream in = open(arg, stdin)) {
            return MachineMap.utf8(in.readAllBytes());
        }
    }

    /**
     * The bytes of {@code arg} ({@code -} is {@code stdin}, which closing the stream leaves open), as a stream that
     * fails with an {@link IOException} once more than {@link #MAX_BYTES} have been read.
     *
     * @throws IOException if it cannot be opened
     */
    static InputStream open(String arg, InputStream stdin) throws IOException {
        if ("-".equals(arg)) {
            return new Bounded(stdin, false);
        }
        Path path = Path.of(arg);
        if (Files.isDirectory(path)) {
            throw new IOException("it is a directory");
        }
        return new Bounded(Files.newInputStream(path), true);
    }

    /** A stream that refuses to give more than {@link #MAX_BYTES} in all. */
    private static final class Bounded extends FilterInputStream {
        private final boolean close;
        private long left = MAX_BYTES;

        Bounded(InputStream in, boolean close) {
            super(in);
            this.close = close;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return 0;
            }
            // One byte past the limit tells a file of exactly MAX_BYTES from a larger one.
            int n = in.read(b, off, (int) Math.min(len, left + 1));
            if (n > 0) {
                left -= n;
                if (left < 0) {
                    throw new IOException("it is larger than " + (MAX_BYTES >> 20) + " MiB");
                }
            }
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            // Skipped bytes count against the limit as read ones do.
            return n <= 0 ? 0 : Math.max(0, read(new byte[(int) Math.min(n, 8192)]));
        }

        @Override
        public boolean markSupported() {
            return false;
        }

        @Override
        public void close() throws IOException {
            if (close) {
                in.close();
            }
        }
    }

    /** What went wrong with a file, in words ("no such file"), without the exception's class or the path. */
    static String describe(IOException e) {
        return switch (e) {
            case NoSuchFileException x -> "no such file or directory";
            case AccessDeniedException x -> "permission denied";
            case NotDirectoryException x -> "not a directory";
            case FileSystemException x -> x.getReason() != null ? x.getReason() : x.getClass().getSimpleName();
            default -> e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
        };
    }
}
