package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.BulkCopies;
import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * How the direct pieces of {@link AddressSpace#read} and {@link AddressSpace#write} (and {@code writeRom}) move their
 * bytes between guest RAM and the caller's segment: where QEMU's {@code flatview_read_continue} and
 * {@code flatview_write_continue} call the C library's {@code memcpy}. memory-core makes no native calls, so its own
 * copier is the JDK's {@link MemorySegment#copy}; memory-offheap provides one that hands large pieces to the C
 * library's {@code memmove} through a critical downcall.
 *
 * <h2>Contract of {@link #copy}</h2>
 * Exactly {@link MemorySegment#copy(MemorySegment, long, MemorySegment, long, long)}'s: the same bytes land, the two
 * ranges may overlap, and a segment that is not alive, not accessible from the calling thread, out of bounds or (for
 * the destination) read-only makes it throw what that method throws, before any byte moves. A copier may refuse
 * more, never less. It must never let a segment's memory be freed while it copies (a downcall keeps the segments it
 * is passed alive for the call: closing their arena meanwhile fails, see {@link AbstractRamBlock#closeArena}), and
 * never touch memory that can fault (a file another process may truncate) outside the JDK's own accesses, which turn
 * the fault into an exception where native code would kill the JVM.
 *
 * <h2>Which copier is installed</h2>
 * Chosen once, when the access path first copies, and the same for the life of the JVM ({@link #installed()}):
 * <ul>
 *   <li>the first {@link Provider} found by {@link java.util.ServiceLoader} that opens: memory-offheap provides
 *   {@code memmove}, which opens on Linux x86_64 when native access is enabled for it;</li>
 *   <li>otherwise {@link #jdk()}.</li>
 * </ul>
 * The system property {@code guestmem.copy} overrides the choice: {@code auto} (the default) as above, {@code jdk}
 * to use the JDK's copy even where a provider would open. Any other value is refused, naming it, at the first copy.
 *
 * <p>Threading: {@link #copy} may be called by any number of threads at once.
 */
public interface BulkCopier {
    /** A short name for reports: {@code MemorySegment.copy} or the provider's (memory-offheap's names its threshold). */
    String name();

    /**
     * Copies {@code bytes} bytes from {@code src} at {@code srcOffset} to {@code dst} at {@code dstOffset} (offsets
     * and size in bytes, relative to each segment), as {@link MemorySegment#copy(MemorySegment, long, MemorySegment,
     * long, long)} does; see the class comment.
     */
    void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long bytes);

    /** The copier the access path uses, chosen once (see the class comment). */
    static BulkCopier installed() {
        return BulkCopies.INSTALLED;
    }

    /** The JDK's {@link MemorySegment#copy}: memory-core's own copier, and the default. */
    static BulkCopier jdk() {
        return BulkCopies.JDK;
    }

    /**
     * A service that offers a copier, found with {@link java.util.ServiceLoader}
     * ({@code provides dev.guestmem.memory.BulkCopier.Provider with ...}, or a
     * {@code META-INF/services/dev.guestmem.memory.BulkCopier$Provider} entry on the class path).
     */
    interface Provider {
        /**
         * Sets the copier up and returns it, or empty where it cannot work here (another OS, native access not
         * enabled). Called at most once per JVM; must not throw for a host that merely lacks the feature.
         */
        Optional<BulkCopier> open();
    }
}
