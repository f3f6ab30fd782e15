package dev.guestmem.memory;

import java.lang.foreign.MemorySegment;
import java.util.Set;

/**
 * The host memory behind a RAM-backed region, as QEMU's {@code RAMBlock}: a contract that each backend implements
 * (anonymous memory in an {@code Arena} here; files, fds and memfds in memory-offheap), not a class that assumes
 * an {@code Arena}. Backends extend {@link AbstractRamBlock}, which keeps the state the {@link MemorySystem} owns:
 * the block's place in the ram_addr space and its used length. The interface is sealed: every block is an
 * {@code AbstractRamBlock}, which is open for backends to extend.
 *
 * <h2>Lengths</h2>
 * {@link #maxLength()} bytes of host memory are reserved for the whole life of the block, and that is the length
 * of {@link #hostSegment()} and of the block's ram_addr range. {@link #usedLength()} bytes of it are in use: the
 * same as the max length, except for {@link RamFlag#RESIZEABLE} blocks, whose used length changes with
 * {@link MemoryRegion#ramResize}.
 *
 * <h2>Lifetime</h2>
 * The segment stays valid while the block's region lives and while any direct {@link DmaMapping} or
 * {@link MemoryRegionCache} over it does. {@link MemoryRegion#destroy()} ends it: the memory is freed after the last of
 * those and a grace period of {@link MemorySystem#rcu()} (see {@link AbstractRamBlock#freeMemory()}).
 *
 * <p>Threading: all methods may be called from any thread.
 */
public sealed interface RamBlock permits AbstractRamBlock {
    /**
     * The block's name (QEMU's {@code idstr}), normally the region's name; unique among the blocks of its
     * {@link MemorySystem} (see {@link RamList}).
     */
    String idstr();

    /** The host memory, {@link #maxLength()} bytes long; offsets are block-relative. */
    MemorySegment hostSegment();

    /** Bytes in use now, at most {@link #maxLength()}. */
    long usedLength();

    /** Bytes reserved, the most {@link #usedLength()} can grow to. */
    long maxLength();

    /**
     * The ram_addr of the block's first byte (QEMU's {@code RAMBlock.offset}): the block covers ram_addrs
     * {@code [offset(), offset() + maxLength())} of its {@link MemorySystem}'s {@link RamList}. Assigned when the
     * region is made and never changed; {@link AbstractRamBlock#UNPLACED} for a block no memory system has taken.
     */
    long offset();

    /** What kind of memory this is (QEMU's {@code RAMBlock.flags}); an unmodifiable set. */
    Set<RamFlag> flags();

    /**
     * QEMU's {@code RAMBlock.fd} ({@code memory_region_get_fd}): the file descriptor the memory is mapped from, for
     * sharing it with another process, or -1 for memory that has none (anonymous memory, an {@code Arena}). The fd
     * belongs to the block: it stays open until the block's memory is freed, and callers must not close it.
     */
    default int fd() {
        return -1;
    }

    /**
     * QEMU's {@code RAMBlock.fd_offset}: the offset in bytes, in the file behind {@link #fd()}, of the block's first
     * byte; 0 for a block without an fd.
     */
    default long fdOffset() {
        return 0;
    }

    /**
     * QEMU's {@code qemu_ram_pagesize}: the size in bytes of the host pages the block really got (4 KiB, or a huge
     * page size such as 2 MiB). Offsets passed to {@link AbstractRamBlock#discardRange} are multiples of it.
     */
    default long pageSize() {
        return RamList.HOST_PAGE_SIZE;
    }

    /**
     * QEMU's {@code qemu_ram_block_host_offset}: the block-relative offset of the host address {@code hostAddress}
     * (an address of {@link #hostSegment()}'s memory, as {@link MemorySegment#address()} gives).
     *
     * @throws IllegalArgumentException if the address is not inside the block's {@link #maxLength()} bytes
     */
    default long hostOffset(long hostAddress) {
        long base = hostSegment().address();
        long off = hostAddress - base;
        if (off < 0 || off >= maxLength()) {
            throw new IllegalArgumentException("block=" + idstr() + " hostAddress=" + U64.hex(hostAddress)
                    + " base=" + U64.hex(base) + " maxLength=" + U64.hex(maxLength())
                    + ": the address is not in the block");
        }
        return off;
    }

    /**
     * QEMU's {@code resized} callback of a resizeable RAM block: called by {@link MemoryRegion#ramResize} on the
     * writer's thread, inside the topology lock, after listeners have seen the region's new size.
     */
    @FunctionalInterface
    interface Resized {
        /**
         * @param block   the block, whose {@link RamBlock#usedLength()} is already the new one
         * @param newSize the region's new size in bytes, as passed to {@code ramResize} (the used length is this
         *                rounded up to the host page size)
         */
        void resized(RamBlock block, long newSize);
    }
}
