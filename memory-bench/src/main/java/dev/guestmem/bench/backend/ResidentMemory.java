package dev.guestmem.bench.backend;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * How much of a segment's memory is resident: the 4 KiB pages of its address range that are present in this
 * process's page tables, from {@code /proc/self/pagemap} (bit 63 of each page's entry; readable without privileges).
 * Exact for any range, also one that shares a mapping with other memory, as an {@code Arena}'s does.
 */
public final class ResidentMemory {
    private static final long PAGE = 4096;
    private static final long PRESENT = 1L << 63;
    private static final int CHUNK_PAGES = 1 << 16;

    private ResidentMemory() {
    }

    /** Resident bytes of the pages of {@code segment}'s address range. */
    public static long of(MemorySegment segment) {
        long first = segment.address() / PAGE;
        long end = (segment.address() + segment.byteSize() + PAGE - 1) / PAGE;
        long present = 0;
        ByteBuffer buf = ByteBuffer.allocate(CHUNK_PAGES * 8).order(ByteOrder.nativeOrder());
        try (FileChannel pagemap = FileChannel.open(Path.of("/proc/self/pagemap"), StandardOpenOption.READ)) {
            for (long page = first; page < end; ) {
                int n = (int) Math.min(CHUNK_PAGES, end - page);
                buf.clear().limit(n * 8);
                long pos = page * 8;
                while (buf.hasRemaining()) {
                    if (pagemap.read(buf, pos + buf.position()) < 0) {
                        throw new IOException("/proc/self/pagemap ended at page " + Long.toHexString(page));
                    }
                }
                buf.flip();
                for (int i = 0; i < n; i++) {
                    if ((buf.getLong() & PRESENT) != 0) {
                        present++;
                    }
                }
                page += n;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return present * PAGE;
    }

    /** {@code bytes} in MiB with one decimal, for reports. */
    public static String mib(long bytes) {
        return String.format("%.1f MiB", bytes / (1024.0 * 1024.0));
    }
}
