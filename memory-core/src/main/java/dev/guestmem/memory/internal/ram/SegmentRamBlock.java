package dev.guestmem.memory.internal.ram;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.RamFlag;
import dev.guestmem.memory.U64;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.Set;

/**
 * RAM over a segment: one the caller owns (QEMU's {@code memory_region_init_ram_ptr} and
 * {@code memory_region_init_ram_device_ptr}, flagged {@link RamFlag#PREALLOC}), which guestmem never frees, or
 * anonymous memory (QEMU's {@code qemu_ram_alloc}) from {@link #anonymous}.
 */
public final class SegmentRamBlock extends AbstractRamBlock {
    private static final long PAGE_ALIGNMENT = 4096;

    /** Closes the anonymous memory's arena once: when the block is freed, or when it becomes unreachable. */
    private static final Cleaner CLEANER = Cleaner.create();

    private final MemorySegment segment;
    /** See {@link #mayFault()}; decided once, when the block is made. */
    private final boolean mayFault;
    /** Closes the arena of anonymous memory; null for memory the caller owns. */
    private final Cleaner.Cleanable arenaCloser;

    /**
     * Zeroed, page-aligned memory in a shared {@link Arena} of its own, closed exactly once: by
     * {@link #freeMemory()} after the region is destroyed and a grace period has passed, or, for a block that is
     * never destroyed, when the garbage collector finds the block unreachable (its region, every view that maps it,
     * and every mapping and cache over it gone).
     *
     * @throws IllegalStateException when the JVM cannot allocate {@code size} bytes (the message names the size; the
     *                               cause is the JVM's {@link OutOfMemoryError})
     */
    public static SegmentRamBlock anonymous(String idstr, long size) {
        if (size <= 0) {
            throw new IllegalArgumentException("name=" + idstr + " size=" + U64.sizeHex(size)
                    + ": anonymous RAM must be between 1 byte and 2^63-1 bytes");
        }
        Arena arena = Arena.ofShared();
        MemorySegment memory;
        try {
            memory = arena.allocate(size, PAGE_ALIGNMENT);
        } catch (OutOfMemoryError e) {
            arena.close();
            // The JVM's own message, when there is one, has the bytes it asked the OS for; ours names the request.
            throw new IllegalStateException("region=" + idstr + " size=" + U64.sizeHex(size) + ": the JVM cannot "
                    + "allocate this much anonymous RAM (" + (e.getMessage() == null ? "out of memory" : e.getMessage())
                    + "); RAM that large needs a memory-offheap backend, which maps it and zeroes it lazily", e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
        return new SegmentRamBlock(idstr, memory, Set.of(), arena, false);
    }

    /**
     * A block over memory the caller owns, which guestmem never frees.
     *
     * @param mayFault whether something outside this JVM can take pages away under {@code segment} (see
     *                 {@link #mayFault()})
     */
    public static SegmentRamBlock prealloc(String idstr, MemorySegment segment, boolean mayFault) {
        return new SegmentRamBlock(idstr, segment, Set.of(RamFlag.PREALLOC), null, mayFault);
    }

    private SegmentRamBlock(String idstr, MemorySegment segment, Set<RamFlag> flags, Arena arena, boolean mayFault) {
        super(idstr, segment.byteSize(), flags);
        this.segment = segment;
        this.mayFault = mayFault;
        // The action holds the arena only, never the block, or the block could not become unreachable.
        this.arenaCloser = arena == null ? null : CLEANER.register(this, () -> closeArena(arena));
    }

    @Override
    protected void freeMemory() {
        if (arenaCloser != null) {
            arenaCloser.clean(); // runs the close at most once, whichever of this and the cleaner comes first
        }
    }

    /**
     * Anonymous memory never faults; memory the caller owns does when the caller says so
     * ({@code MemorySystem.ramFromSegment} with {@code mayFault}), or, when it does not, when it is a file mapping
     * ({@code FileChannel.map}), which another process can truncate.
     */
    @Override
    protected boolean mayFault() {
        return mayFault;
    }

    @Override
    public MemorySegment hostSegment() {
        return segment;
    }
}
