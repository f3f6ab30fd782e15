package dev.guestmem.bench.cli;

import dev.guestmem.memory.map.MachineMap;

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
        if ("-".equals(arg)) {
            return MachineMap.utf8(readAtMost(stdin));
        }
        Path path = Path.of(arg);
        if (Files.isDirectory(path)) {
            throw new IOException("it is a directory");
        }
        try (InputStream in = Files.newInputStream(path)) {
            return MachineMap.utf8(readAtMost(in));
        }
    }

    private static byte[] readAtMost(InputStream in) throws IOException {
        byte[] bytes = in.readNBytes(MAX_BYTES + 1);
        if (bytes.length > MAX_BYTES) {
            throw new IOException("it is larger than " + (MAX_BYTES >> 20) + " MiB");
        }
        return bytes;
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
