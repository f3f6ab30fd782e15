package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamDiscardManager;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.List;

/**
 * The region tree's argument checks, which the region factories and {@link MemoryRegion}'s mutators call before they
 * change anything: a region's size for its kind, an alias window inside its target, whether a subregion may be added
 * or a region destroyed, and the ranges of the dirty-logging and ioeventfd calls. Each throws with a one-line
 * {@code key=value} message and changes nothing. Sizes are bytes, {@link U64#SIZE_2_64} meaning 2^64; the window
 * arithmetic is exact over 65 bits without leaving {@code long}s; offsets are region-relative.
 *
 * <p>Threading: stateless; the tree checks read the tree as the writer left it (topology lock held).
 */
public final class RegionChecks {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();

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

    /** Throws if {@code r} was destroyed; {@code role} names it in the message ({@code "container=x subregion"}). */
    public static void checkNotDestroyed(MemoryRegion r, String role) {
        if (r.isDestroyed()) {
            throw new IllegalStateException(role + "=" + r.name() + ": the region was destroyed");
        }
    }

    /**
     * Throws unless {@code subregion} may be added to {@code container} at {@code offset}: same system, neither
     * destroyed nor the unassigned region, the container not an alias, the subregion not mapped yet, and no cycle.
     */
    public static void checkCanAdd(MemoryRegion container, MemoryRegion subregion, long offset) {
        String name = container.name();
        if (subregion.system() != container.system()) {
            throw new IllegalArgumentException("container=" + name + " subregion=" + subregion.name()
                    + ": the subregion belongs to another MemorySystem");
        }
        checkNotDestroyed(container, "container");
        checkNotDestroyed(subregion, "container=" + name + " subregion");
        if (container.kind() == MemoryRegion.Kind.ALIAS) {
            throw new IllegalArgumentException("container=" + name + " subregion=" + subregion.name()
                    + ": an alias has no subregions");
        }
        MemoryRegion unassigned = container.system().unassignedRegion();
        if (container == unassigned || subregion == unassigned) {
            throw new IllegalArgumentException("container=" + name + " subregion=" + subregion.name()
                    + ": the system's unassigned region is never mapped and has no subregions");
        }
        MemoryRegion in = subregion.container();
        if (in != null) {
            throw new IllegalArgumentException("container=" + name + " subregion=" + subregion.name()
                    + " addr=" + U64.hex(offset) + ": the subregion is already mapped in container="
                    + in.name() + " at addr=" + U64.hex(subregion.addr()));
        }
        if (new CycleSearch().closesCycle(container, subregion)) {
            throw new IllegalArgumentException("container=" + name + " subregion=" + subregion.name()
                    + ": adding it would make a cycle (the subregion contains or aliases the container)");
        }
    }

    /**
     * Throws unless {@code r} may be destroyed: not the unassigned region, not destroyed, not a subregion, not the
     * target of a live alias, not the root of an address space ({@code rootOf}, the first whose root it is, or null)
     * and without a {@link RamDiscardManager}.
     */
    public static void checkCanDestroy(MemoryRegion r, AddressSpace rootOf) {
        String name = r.name();
        if (r == r.system().unassignedRegion()) {
            throw new IllegalStateException("region=" + name + ": the unassigned region is never destroyed");
        }
        checkNotDestroyed(r, "region");
        if (r.container() != null) {
            throw new IllegalStateException("region=" + name + " container=" + r.container().name()
                    + ": a mapped region cannot be destroyed; delSubregion it first");
        }
        List<MemoryRegion> aliasedBy = CORE.aliasedBy(r);
        if (!aliasedBy.isEmpty()) {
            // Destroyed aliases leave this list, so these are live: QEMU's alias holds a reference on its target.
            throw new IllegalStateException("region=" + name + " alias=" + aliasedBy.getFirst().name()
                    + ": the region is the target of an alias that is not destroyed");
        }
        if (rootOf != null) {
            throw new IllegalStateException("region=" + name + " addressSpace=" + rootOf.name()
                    + ": the root of an address space cannot be destroyed");
        }
        RamDiscardManager rdm = r.getRamDiscardManager();
        if (rdm != null) {
            // The manager would go on discarding a freed block: QEMU's virtio-mem clears it on unrealize first.
            throw new IllegalStateException("region=" + name + " ramDiscardManager=" + rdm
                    + ": clear the RamDiscardManager (setRamDiscardManager(null)) before destroying the region");
        }
    }

    /**
     * Throws unless {@code rdm} may become the RAM discard manager of {@code r} (QEMU 7.2's rules): {@code r} is RAM,
     * unmapped ({@code mappedViaAlias} is how many mapped aliases reach it), and has none yet unless {@code rdm} is
     * null.
     */
    public static void checkCanSetRamDiscardManager(MemoryRegion r, RamDiscardManager rdm, int mappedViaAlias) {
        String name = r.name();
        if (!r.isRam()) {
            throw new IllegalArgumentException("region=" + name + " kind=" + r.kind().mapName()
                    + ": only a RAM region can have a RamDiscardManager");
        }
        if (r.isMapped()) {
            throw new IllegalStateException("region=" + name + (r.container() == null ? "" : " container="
                    + r.container().name()) + " mappedViaAlias=" + mappedViaAlias
                    + ": a RamDiscardManager is set or cleared only while the region is unmapped");
        }
        RamDiscardManager old = r.getRamDiscardManager();
        if (rdm != null && old != null) {
            throw new IllegalStateException("region=" + name + " ramDiscardManager=" + old
                    + ": the region already has a RamDiscardManager; clear it (null) first");
        }
    }

    /** Throws unless {@code r} is an alias ({@code memory_region_set_alias_offset}). */
    public static void checkAlias(MemoryRegion r) {
        if (r.alias() == null) {
            throw new IllegalArgumentException("region=" + r.name() + " kind=" + r.kind().mapName() + ": not an alias");
        }
    }

    /** Throws unless {@code r} is a ROM device, the only kind with a romd mode. */
    public static void checkRomDevice(MemoryRegion r) {
        if (r.kind() != MemoryRegion.Kind.ROM_DEVICE) {
            throw new IllegalArgumentException("region=" + r.name() + " kind=" + r.kind().mapName()
                    + ": romd mode exists only for rom-device regions");
        }
    }

    /** Throws unless {@code r} is a ROM device in romd mode ({@code memory_region_flush_rom_device}). */
    public static void checkRomd(MemoryRegion r) {
        if (!r.isRomd()) {
            throw new IllegalArgumentException("region=" + r.name() + " kind=" + r.kind().mapName() + " romd="
                    + r.isRomdMode() + ": flushRomDevice needs a rom-device region in romd mode");
        }
    }

    /**
     * Throws unless {@code r} has RAM with memory and {@code [offset, offset + len)} lies inside its block's max
     * length; {@code what} names the call in the message.
     */
    public static void checkRamRange(MemoryRegion r, String what, long offset, long len) {
        RamBlock block = r.ramBlock();
        if (block == null || !CORE.hasHostMemory((AbstractRamBlock) block)) {
            throw new IllegalArgumentException("region=" + r.name() + " kind=" + r.kind().mapName() + ": " + what
                    + " needs a RAM-backed region with memory");
        }
        if (Long.compareUnsigned(offset, block.maxLength()) > 0
                || Long.compareUnsigned(len, block.maxLength() - offset) > 0) {
            throw new IllegalArgumentException("region=" + r.name() + " offset=" + U64.hex(offset) + " len="
                    + U64.hex(len) + " ramLength=" + U64.hex(block.maxLength()) + ": " + what
                    + " outside the region's RAM");
        }
    }

    /** Throws unless region-relative {@code [start, start + len)} lies inside {@code r} ({@code clearDirtyBitmap}). */
    public static void checkInside(MemoryRegion r, long start, long len) {
        long size = r.size();
        boolean inside = size == U64.SIZE_2_64
                ? len == 0 || U64.le(start, -1L - (len - 1))
                : U64.le(start, size) && U64.le(len, size - start);
        if (!inside) {
            throw new IllegalArgumentException("region=" + r.name() + " start=" + U64.hex(start) + " len="
                    + U64.hex(len) + " size=" + U64.sizeHex(size) + ": clearDirtyBitmap outside the region");
        }
    }

    /** Throws unless an ioeventfd of {@code size} bytes (0: any) may be registered at {@code addr} of {@code r}. */
    public static void checkIoeventfdSize(MemoryRegion r, long addr, int size) {
        if (size != 0 && size != 1 && size != 2 && size != 4 && size != 8) {
            throw new IllegalArgumentException("region=" + r.name() + " addr=" + U64.hex(addr) + " size=" + size
                    + ": an ioeventfd is 0 (any), 1, 2, 4 or 8 bytes");
        }
    }

    /** The IOMMU region behind {@code r} (following aliases); throws naming {@code what} when there is none. */
    public static MemoryRegion iommuTarget(MemoryRegion r, String what) {
        MemoryRegion mr = r;
        while (mr.alias() != null) {
            mr = mr.alias();
        }
        if (mr.kind() != MemoryRegion.Kind.IOMMU) {
            throw new IllegalArgumentException("region=" + r.name() + " kind=" + mr.kind().mapName() + ": " + what
                    + " needs an IOMMU region (or an alias of one)");
        }
        return mr;
    }
}
