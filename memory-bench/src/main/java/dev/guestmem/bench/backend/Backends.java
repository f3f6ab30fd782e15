package dev.guestmem.bench.backend;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.offheap.HostMemoryBackend;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The RAM backends the backend benchmarks compare, by the name their {@code backend} parameter takes: the
 * {@code Arena} every {@link MemorySystem} uses by default, and memory-offheap's {@link HostMemoryBackend}s.
 *
 * <p>A {@code file} backend maps a new file in a fresh temporary directory (removed at {@link #close()}), shared, so
 * guest stores reach the page cache as a {@code memory-backend-file,share=on} guest's do.
 */
public final class Backends implements AutoCloseable {
    private final Path dir;

    public Backends() {
        try {
            dir = Files.createTempDirectory("guestmem-bench-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The allocator called {@code name}: {@code arena}, {@code anonymous} (private mmap), {@code anonymous-shared},
     * {@code memfd}, {@code file}, or one of those with {@code -prealloc} appended.
     */
    public MemorySystem.RamAllocator allocator(String name) {
        boolean prealloc = name.endsWith("-prealloc");
        String base = prealloc ? name.substring(0, name.length() - "-prealloc".length()) : name;
        HostMemoryBackend.Builder b = switch (base) {
            case "arena" -> {
                if (prealloc) {
                    throw new IllegalArgumentException("backend=" + name + ": Arena memory is always populated");
                }
                yield null;
            }
            case "anonymous" -> HostMemoryBackend.anonymous();
            case "anonymous-shared" -> HostMemoryBackend.anonymous().share(true);
            case "memfd" -> HostMemoryBackend.memfd();
            case "file" -> HostMemoryBackend.file(dir.resolve("ram-" + System.nanoTime())).share(true).create(true);
            default -> throw new IllegalArgumentException("backend=" + name
                    + ": expected arena, anonymous, anonymous-shared, memfd or file, optionally with -prealloc");
        };
        return b == null ? MemorySystem.ANONYMOUS_RAM : b.prealloc(prealloc).build();
    }

    /** Removes the temporary directory and the files in it (their mappings stay valid until freed). */
    @Override
    public void close() {
        try (var files = Files.list(dir)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(p);
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
