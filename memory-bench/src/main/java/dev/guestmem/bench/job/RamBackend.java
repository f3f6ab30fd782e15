package dev.guestmem.bench.job;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.offheap.HostMemoryBackend;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The main job's {@code --ram-backend}: where guest RAM comes from. {@code anonymous} (lazily zeroed private mmap,
 * QEMU's {@code memory-backend-ram}), {@code memfd} (a sealed, shared memfd, {@code memory-backend-memfd}),
 * {@code file:DIR} (a new unlinked shared file in directory DIR per region, {@code memory-backend-file,mem-path=DIR,
 * share=on}), {@code arena} (memory-core's own RAM in an {@code Arena}, no native calls).
 *
 * @param spec     what the user wrote
 * @param shareable whether another process can map the RAM (a vhost-user backend needs that)
 */
record RamBackend(String spec, boolean shareable, Path directory) {
    static final String KINDS = "anonymous, memfd, file:DIR, arena";

    /** Parses {@code spec}; a bad one throws {@link IllegalArgumentException} with a one-line message. */
    static RamBackend parse(String spec) {
        return switch (spec) {
            case "anonymous", "arena" -> new RamBackend(spec, false, null);
            case "memfd" -> new RamBackend(spec, true, null);
            default -> {
                if (spec.startsWith("file:") && spec.length() > 5) {
                    Path dir = Path.of(spec.substring(5));
                    if (!Files.isDirectory(dir) || !Files.isWritable(dir)) {
                        throw new IllegalArgumentException("ram-backend=" + spec + ": " + dir
                                + " is not a writable directory");
                    }
                    yield new RamBackend(spec, true, dir);
                }
                throw new IllegalArgumentException("ram-backend=" + spec + ": one of " + KINDS);
            }
        };
    }

    /** The allocator of the machine's RAM regions. */
    MemorySystem.RamAllocator allocator() {
        return switch (spec) {
            case "anonymous" -> HostMemoryBackend.anonymous().build();
            case "memfd" -> HostMemoryBackend.memfd().build();
            case "arena" -> MemorySystem.ANONYMOUS_RAM;
            default -> HostMemoryBackend.file(directory).share(true).build();
        };
    }
}
