package dev.guestmem.memory.internal.access;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Guest RAM over a real file: {@code size} bytes whose 8-byte words hold {@link #word}, mapped with
 * {@code FileChannel.map(READ_WRITE)} into a shared arena, for tests that truncate it under the guest. The file is a
 * new temporary file, which closing deletes, or one that exists already ({@link #over}, such as another process's
 * memfd by its {@code /proc/PID/fd/N} path), which closing leaves alone.
 */
public final class FileRam implements AutoCloseable {
    /** The file's words, as the guest's little-endian loads see them. */
    public static final ValueLayout.OfLong LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public final Path path;
    public final FileChannel channel;
    public final Arena arena = Arena.ofShared();
    public final MemorySegment segment;

    private final boolean owned;

    public FileRam(Path dir, long size) throws IOException {
        this(Files.createTempFile(dir, "guest-ram", ".bin"), size, true);
    }

    /** RAM over the first {@code size} bytes of the existing file {@code path}, which is rewritten with the words. */
    public static FileRam over(Path path, long size) throws IOException {
        return new FileRam(path, size, false);
    }

    private FileRam(Path path, long size, boolean owned) throws IOException {
        this.path = path;
        this.owned = owned;
        channel = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        ByteBuffer buf = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
        for (long off = 0; off < size; off += 8) {
            buf.putLong(word(off));
        }
        channel.write(buf.flip(), 0);
        segment = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
    }

    /** The word the file holds at byte offset {@code off} (a multiple of 8) until someone writes it. */
    public static long word(long off) {
        return off * 0x9e37_79b9_7f4a_7c15L ^ 0x5a5a_0000_0000_0001L;
    }

    /** Reads the word at {@code off} straight from the mapping (for checks in the test thread). */
    public long wordAt(long off) {
        return segment.get(LE, off);
    }

    @Override
    public void close() throws IOException {
        arena.close();
        channel.close();
        if (owned) {
            Files.deleteIfExists(path);
        }
    }
}
