package dev.guestmem.memory.internal.ram;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamList;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import java.lang.foreign.MemorySegment;

/**
 * How a RAM-backed region gets its block, as QEMU's {@code qemu_ram_alloc_internal} and its callers check it: the
 * size a block may have, a name unique in the ram_addr space, and a block from the allocator that is new and large
 * enough. A refused allocation leaves the ram_addr space as it was, names included, and gives back whatever memory
 * the allocator had made. Sizes are bytes.
 *
 * <p>Threading: stateless; the ram list's own lock orders the names it hands out.
 */
public final class RamAllocation {
    /** QEMU rounds used lengths to the host page size; guestmem's RAM is allocated in 4 KiB pages. */
    public static final long HOST_PAGE_SIZE = 4096;

    private static final CoreAccess CORE = SharedSecrets.coreAccess();

    private RamAllocation() {
    }

    /**
     * A new block of at least {@code size} bytes from {@code allocator} for the region called {@code name}, named
     * uniquely in {@code ramList} and not yet placed in it.
     *
     * @throws IllegalArgumentException if {@code size} is 2^63 or more
     * @throws IllegalStateException    if the allocator returned a placed block, or one smaller than {@code size}
     */
    public static RamBlock allocate(RamList ramList, MemorySystem.RamAllocator allocator, String name, long size) {
        if (size == U64.SIZE_2_64 || size < 0) {
            throw new IllegalArgumentException("region=" + name + " size=" + U64.sizeHex(size)
                    + ": RAM larger than 2^63-1 bytes cannot be allocated");
        }
        // Block names are unique within the memory system, as QEMU's idstr (which QEMU makes unique with the owner's
        // path); without owners, a repeated name gets a #n suffix. The region keeps the name it was given.
        String idstr = CORE.uniqueIdstr(ramList, name);
        try {
            RamBlock block = allocator.allocate(idstr, size);
            if (!(block instanceof AbstractRamBlock ab) || ab.offset() != AbstractRamBlock.UNPLACED) {
                throw new IllegalStateException("region=" + name + " block=" + block
                        + ": the allocator must return a new block, not yet placed in a ram_addr space");
            }
            if (block.maxLength() < size) {
                CORE.freeMemory(ab); // nobody else has seen the block: give its memory (and fd) back now
                throw new IllegalStateException("region=" + name + " size=" + U64.hex(size) + " blockLength="
                        + U64.hex(block.maxLength()) + ": the allocator returned too little RAM");
            }
            return block;
        } catch (RuntimeException | Error e) {
            CORE.releaseIdstr(ramList, idstr); // a refused allocation leaves the ram_addr space as it was
            throw e;
        }
    }

    /** The size of RAM over caller-owned {@code memory}: its byte size, which must not be 0. */
    public static long segmentSize(String name, MemorySegment memory) {
        if (memory.byteSize() == 0) {
            throw new IllegalArgumentException("region=" + name + " size=0: RAM-backed regions need at least one byte");
        }
        return memory.byteSize();
    }

    /**
     * The max length of a resizeable block for a region of {@code size} bytes that may grow to {@code maxSize}:
     * {@code maxSize} rounded up to the host page size.
     *
     * @throws IllegalArgumentException if {@code maxSize} is below {@code size} or not below 2^63-2^12
     */
    public static long resizeableMaxLength(String name, long size, long maxSize) {
        if (U64.lt(maxSize, size) || maxSize > Long.MAX_VALUE - (HOST_PAGE_SIZE - 1)) {
            throw new IllegalArgumentException("region=" + name + " size=" + U64.sizeHex(size) + " maxSize="
                    + U64.sizeHex(maxSize) + ": the max size must be at least the size and below 2^63-2^12 bytes");
        }
        return hostPageAligned(maxSize);
    }

    /** {@code bytes} rounded up to the host page size; {@code bytes} below 2^63-2^12. */
    public static long hostPageAligned(long bytes) {
        return (bytes + HOST_PAGE_SIZE - 1) & -HOST_PAGE_SIZE;
    }
}
