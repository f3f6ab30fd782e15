package dev.guestmem.memory;

import java.lang.foreign.MemorySegment;

/**
 * The host memory behind a RAM-backed region, as QEMU's {@code RAMBlock}: a contract that each backend implements
 * (anonymous memory in an {@code Arena} here; files, fds and memfds in memory-offheap), not a class that assumes
 * an {@code Arena}.
 *
 * <p>Threading: all methods may be called from any thread. The segment stays valid for as long as any reader can
 * reach the block through a published view.
 */
public interface RamBlock {
    /** The block's name (QEMU's {@code idstr}), normally the region's name. */
    String idstr();

    /** The host memory, {@link #maxLength()} bytes long; offsets are block-relative. */
    MemorySegment hostSegment();

    /** Bytes in use now, at most {@link #maxLength()}. */
    long usedLength();

    /** Bytes reserved, the most {@link #usedLength()} can grow to. */
    long maxLength();
}
