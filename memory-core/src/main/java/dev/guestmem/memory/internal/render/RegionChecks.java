package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.U64;

/**
 * The region tree's argument checks that the region factories and the mutators share: a region's size for its kind,
 * and an alias window inside its target. Sizes are bytes, {@link U64#SIZE_2_64} meaning 2^64; the window arithmetic
 * is exact over 65 bits without leaving {@code long}s.
 *
 * <p>Threading: stateless.
 */
public final class RegionChecks {
    private RegionChecks() {
    }

    /** Throws unless {@code size} is allowed for a region of {@code kind} backed by {@code block} (or none). */
    public static void checkSize(MemoryRegion.Kind kind, String name, long size, RamBlock block) {
        if (size == 0 && (kind == MemoryRegion.Kind.RAM || kind == MemoryRegion.Kind.ROM
                || kind == MemoryRegion.Kind.ROM_DEVICE || kind == MemoryRegion.Kind.RAM_DEVICE)) {
            throw new IllegalArgumentException("region=" + name + " kind=" + kind.mapName()
                    + " size=0: RAM-backed regions need at least one byte");
        }
        if (block != null && Long.compareUnsigned(size, block.maxLength()) > 0) {
            throw new IllegalArgumentException("region=" + name + " size=" + U64.sizeHex(size)
                    + " ramLength=" + U64.hex(block.maxLength()) + ": the region would extend past its RAM");
        }
    }

    /** Throws unless {@code [offset, offset + size)} lies inside {@code target}. */
    public static void checkAliasWindow(String name, MemoryRegion target, long offset, long size) {
        if (!windowFits(offset, size, target.size())) {
            throw new IllegalArgumentException("region=" + name + " offset=" + U64.hex(offset) + " size="
                    + U64.sizeHex(size) + " target=" + target.name() + " targetSize=" + U64.sizeHex(target.size())
                    + ": the alias window extends past its target");
        }
    }

    /**
     * Whether {@code offset + size <= targetSize} as unsigned numbers of 65 bits, each size being bytes with
     * {@link U64#SIZE_2_64} for 2^64.
     */
    static boolean windowFits(long offset, long size, long targetSize) {
        if (targetSize == U64.SIZE_2_64) {
            // offset + size <= 2^64: a 2^64 window fits only at 0; another when offset <= 2^64 - size.
            return size == U64.SIZE_2_64 ? offset == 0 : size == 0 || Long.compareUnsigned(offset, -size) <= 0;
        }
        if (size == U64.SIZE_2_64 || Long.compareUnsigned(size, targetSize) > 0) {
            return false;
        }
        return Long.compareUnsigned(offset, targetSize - size) <= 0;
    }
}
