package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.DirectWrites;
import dev.guestmem.memory.internal.access.IommuNotifiers;
import dev.guestmem.memory.internal.render.GapList;
import dev.guestmem.memory.internal.render.Ioeventfd;
import dev.guestmem.memory.internal.render.RegionChecks;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * A node of the memory region tree, as QEMU's {@code MemoryRegion}: a container, RAM, ROM, a ROM device, an I/O
 * region with {@link MemoryRegionOps}, an alias into another region, an IOMMU, or a reservation. Regions are made by
 * the factory methods of {@link MemorySystem} and nested with {@link #addSubregion} and
 * {@link #addSubregionOverlap}.
 *
 * <p>Units: {@link #addr()} is the offset of this region inside its container; offsets passed to a region's methods
 * are region-relative; sizes are bytes, with {@code -1} ({@link U64#SIZE_2_64}) standing for 2^64 as in QEMU.
 *
 * <p>Order of subregions: {@link #subregions()} lists them as QEMU keeps them, by descending priority, and among
 * equal priorities the most recently added first; that is the order in which they are rendered, so the later-added
 * of two overlapping equal-priority regions is the one the guest sees.
 *
 * <p>Threading: every mutator takes the topology lock of its {@link MemorySystem} and runs as its own transaction
 * unless called inside one. The getters read the tree as the writer left it; threads other than the writer read the
 * published {@link FlatView}s instead, or hold the lock ({@link MemorySystem#begin()}).
 */
public final class MemoryRegion {

    /** The kinds of region, after QEMU's {@code memory_region_init_*} family. */
    public enum Kind {
        /** {@code memory_region_init}: groups subregions; transparent where it has none. */
        CONTAINER("container"),
        /** {@code memory_region_init_ram} and {@code _ram_ptr}: guest RAM. */
        RAM("ram"),
        /** {@code memory_region_init_rom}: RAM the guest can read but not write. */
        ROM("rom"),
        /** {@code memory_region_init_rom_device}: reads from RAM in romd mode, writes to its ops. */
        ROM_DEVICE("rom-device"),
        /** {@code memory_region_init_ram_device_ptr}: device memory mapped like RAM (e.g. a PCI BAR of a VFIO device). */
        RAM_DEVICE("ram-device"),
        /** {@code memory_region_init_io}: MMIO or port I/O served by {@link MemoryRegionOps}. */
        IO("io"),
        /** {@code memory_region_init_alias}: a window into part of another region. */
        ALIAS("alias"),
        /** {@code memory_region_init_iommu}: accesses are translated into another address space. */
        IOMMU("iommu"),
        /** {@code memory_region_init_reservation}: an I/O region with no ops that still hides what lies below. */
        RESERVATION("reservation");

        private final String mapName;

        Kind(String mapName) {
            this.mapName = mapName;
        }

        /** The kind's name in machine maps ({@code "rom-device"}, ...). */
        public String mapName() {
            return mapName;
        }

        /** The kind with this machine-map name, or null. */
        public static Kind fromMapName(String name) {
            for (Kind k : values()) {
                if (k.mapName.equals(name)) {
                    return k;
                }
            }
            return null;
        }
    }

    final MemorySystem system;
    final Kind kind;
    final String name;
    final MemoryRegionOps ops;
    final IommuOps iommuOps;
    final RamBlock ramBlock;
    /**
     * Whether accesses to {@link #ramBlock}'s memory can fault and must go through {@code RamFaults}; asked once,
     * here, so that the access paths read a final field.
     */
    final boolean ramMayFault;
    final MemoryRegion alias;
    /** Whether the region fills the flat view itself (QEMU's {@code terminates}); containers and aliases do not. */
    final boolean terminates;
    /** Whether the device behind {@link #ops} is big-endian (its own order, or the target's for native). */
    final boolean deviceBigEndian;

    long size;
    long addr;
    int priority;
    MemoryRegion container;
    /**
     * QEMU's {@code subregions} list stored back to front: ascending priority, most recently added last among
     * equals, so that adding a region that wins its ties (the usual case) is an append rather than a shift of the
     * whole list. Render order is from the end. A gap buffer, so that a run of regions added below many of higher
     * priority is no shift of those each time either.
     */
    final GapList<MemoryRegion> subregionsReversed = new GapList<>();
    /** Aliases whose target is this region: the reverse edges used to refuse cycles. */
    final ArrayList<MemoryRegion> aliasedBy = new ArrayList<>(0);
    int mappedViaAlias;
    /** When this region was last added to a container, in {@link MemorySystem} insertion order. */
    long addSequence;
    long aliasOffset;
    boolean enabled = true;
    /** Set by {@link #destroy()}; a destroyed region can never be mapped again. Writer only. */
    boolean destroyed;
    boolean readonly;
    boolean nonvolatile;
    boolean unmergeable;
    /** QEMU starts every region in romd mode; only ROM devices ever leave it. */
    boolean romdMode = true;
    /** The dirty-memory clients that log this region, one bit per client (QEMU's {@code dirty_log_mask}). */
    int dirtyLogMask;
    /** How many callers asked each client to log this region (QEMU counts VGA's in {@code vga_logging_count}). */
    private final int[] logCounts = new int[DirtyMemoryClient.COUNT];
    /** Coalesced-MMIO ranges as region-relative [offset, size] pairs, in the order added. Writer only. */
    final ArrayList<long[]> coalesced = new ArrayList<>(0);
    /** QEMU's {@code flush_coalesced_mmio}: pending coalesced writes must be flushed before accessing this region. */
    volatile boolean flushCoalescedMmio;
    /**
     * This region's ioeventfds in QEMU's order. The writer replaces the array, never changes one; the write path of
     * any thread reads it with a volatile load and sees a complete set.
     */
    volatile Ioeventfd[] ioeventfds = Ioeventfd.NONE;
    /** An IOMMU region's notifiers and their flags; null for other kinds (a map may hold millions of regions). */
    private final IommuNotifiers iommuNotifiers;

    MemoryRegion(MemorySystem system, Kind kind, String name, long size, MemoryRegionOps ops, IommuOps iommuOps,
                 RamBlock ramBlock, MemoryRegion alias, long aliasOffset) {
        this.system = system;
        this.kind = kind;
        this.name = Objects.requireNonNull(name, "name");
        this.size = size;
        this.ops = ops;
        this.iommuOps = iommuOps;
        this.ramBlock = ramBlock;
        this.ramMayFault = ramBlock instanceof AbstractRamBlock b ? b.mayFault() : ramBlock != null;
        this.alias = alias;
        this.aliasOffset = aliasOffset;
        this.terminates = kind != Kind.CONTAINER && kind != Kind.ALIAS;
        this.iommuNotifiers = kind == Kind.IOMMU ? new IommuNotifiers() : null;
        this.deviceBigEndian = ops != null && (ops.endianness() == DeviceEndian.NATIVE ? system.targetBigEndian()
                : ops.endianness() == DeviceEndian.BIG);
    }

    // ---------------------------------------------------------------- getters

    public MemorySystem system() {
        return system;
    }

    public Kind kind() {
        return kind;
    }

    /** The name; names need not be unique (QEMU's are not). */
    public String name() {
        return name;
    }

    /** Size in bytes; {@code -1} means 2^64. */
    public long size() {
        return size;
    }

    /** The offset of this region inside its container (meaningful while {@link #container()} is not null). */
    public long addr() {
        return addr;
    }

    /** The priority among the container's subregions (signed, as in QEMU). */
    public int priority() {
        return priority;
    }

    /** The container this region is a subregion of, or null. */
    public MemoryRegion container() {
        return container;
    }

    /** The subregions in render order: descending priority, most recently added first among equal priorities. */
    public List<MemoryRegion> subregions() {
        ArrayList<MemoryRegion> l = new ArrayList<>(subregionsReversed);
        Collections.reverse(l);
        return Collections.unmodifiableList(l);
    }

    public boolean isEnabled() {
        return enabled;
    }

    /** QEMU's {@code mr->readonly}: set by {@link #setReadonly}; a ROM is read-only by its kind as well. */
    public boolean isReadonly() {
        return readonly;
    }

    public boolean isNonvolatile() {
        return nonvolatile;
    }

    public boolean isUnmergeable() {
        return unmergeable;
    }

    /** QEMU's {@code romd_mode}: true for every region except a ROM device switched to MMIO mode. */
    public boolean isRomdMode() {
        return romdMode;
    }

    /** The region this alias points into, or null when this is not an alias. */
    public MemoryRegion alias() {
        return alias;
    }

    /** The offset inside {@link #alias()} at which this alias's window starts. */
    public long aliasOffset() {
        return aliasOffset;
    }

    /** The I/O callbacks of an I/O region or ROM device ({@link MemoryRegionOps#UNASSIGNED} for a reservation). */
    public MemoryRegionOps ops() {
        return ops;
    }

    /** The translation callbacks of an IOMMU region, or null. */
    public IommuOps iommuOps() {
        return iommuOps;
    }

    /** The host memory of a RAM, ROM, ROM device or RAM device region, or null. */
    public RamBlock ramBlock() {
        return ramBlock;
    }

    /** The host memory as a segment of {@link #size()} bytes; throws when the region has no RAM. */
    public MemorySegment ramSegment() {
        if (ramBlock == null) {
            throw new IllegalStateException("region=" + name + " kind=" + kind.mapName() + " has no RAM");
        }
        return ramBlock.hostSegment();
    }

    /**
     * QEMU's {@code memory_region_get_fd}: the fd behind the RAM this region (or the region an alias chain ends at)
     * maps, or -1 when that RAM has none or the region has no RAM. The fd belongs to the block; see
     * {@link RamBlock#fd()}.
     */
    public int getFd() {
        MemoryRegion mr = this;
        while (mr.alias != null) {
            mr = mr.alias;
        }
        return mr.ramBlock == null ? -1 : mr.ramBlock.fd();
    }

    /**
     * QEMU's {@code memory_region_msync}: makes region-relative bytes {@code [addr, addr+size)} of this region's
     * RAM durable in the file behind it (msync); nothing for RAM without a file, or a region without RAM (an alias
     * included, as in QEMU).
     *
     * @throws IllegalArgumentException if the range leaves the block's used length
     */
    public void msync(long addr, long size) {
        if (ramBlock instanceof AbstractRamBlock b) {
            b.msync(addr, size);
        }
    }

    /**
     * QEMU's {@code memory_region_writeback}: what a device calls to persist guest writes to nonvolatile memory
     * (virtio-pmem's flush, a pmem NVDIMM): {@link #msync} of the range when the region logs dirty memory for any
     * client, as QEMU does, and nothing otherwise.
     */
    public void writeback(long addr, long size) {
        if (dirtyLogMask() != 0) {
            msync(addr, size);
        }
    }

    /** QEMU's {@code memory_region_is_ram}: RAM, ROM and RAM devices (not ROM devices). */
    public boolean isRam() {
        return kind == Kind.RAM || kind == Kind.ROM || kind == Kind.RAM_DEVICE;
    }

    /** QEMU's {@code memory_region_is_rom}: RAM that the guest cannot write. */
    public boolean isRom() {
        return isRam() && (readonly || kind == Kind.ROM);
    }

    /** QEMU's {@code memory_region_is_romd}: a ROM device in romd mode. */
    public boolean isRomd() {
        return kind == Kind.ROM_DEVICE && romdMode;
    }

    public boolean isRamDevice() {
        return kind == Kind.RAM_DEVICE;
    }

    public boolean isIommu() {
        return kind == Kind.IOMMU;
    }

    /** Whether this region fills the flat view itself, rather than only through its subregions. */
    public boolean terminates() {
        return terminates;
    }

    /**
     * When this region was last added to a container: larger is later. Listing a container's subregions by this
     * number gives the order in which they were added, which decides ties between equal priorities.
     */
    public long addSequence() {
        return addSequence;
    }

    /**
     * The dirty-memory clients logging this region (QEMU's {@code memory_region_get_dirty_log_mask}): its own, and
     * while global dirty logging is on, MIGRATION for RAM and IOMMUs.
     */
    public int dirtyLogMask() {
        return system.dirtyLogMaskOf(this);
    }

    /** QEMU's {@code memory_region_is_mapped}: in a container, or the target of a mapped alias. */
    public boolean isMapped() {
        return container != null || mappedViaAlias > 0;
    }

    // ---------------------------------------------------------------- subregions

    /**
     * QEMU's {@code memory_region_add_subregion}: maps {@code subregion} at {@code offset} inside this region with
     * priority 0.
     */
    public void addSubregion(long offset, MemoryRegion subregion) {
        addSubregionOverlap(offset, subregion, 0);
    }

    /**
     * QEMU's {@code memory_region_add_subregion_overlap}: maps {@code subregion} at {@code offset} (relative to
     * this region) with a signed priority; higher priorities hide lower ones, and among equal priorities the
     * region added last wins.
     *
     * @throws IllegalArgumentException if the subregion belongs to another system, is already mapped in a
     *                                  container, is this region, or would make the tree cyclic; the tree is left
     *                                  unchanged
     */
    public void addSubregionOverlap(long offset, MemoryRegion subregion, int priority) {
        Objects.requireNonNull(subregion, "subregion");
        system.transaction(() -> {
            RegionChecks.checkCanAdd(this, subregion, offset);
            subregion.priority = priority;
            link(offset, subregion);
        });
    }

    /** QEMU's {@code memory_region_del_subregion}. */
    public void delSubregion(MemoryRegion subregion) {
        Objects.requireNonNull(subregion, "subregion");
        system.transaction(() -> {
            if (subregion.container != this) {
                throw new IllegalArgumentException("container=" + name + " subregion=" + subregion.name
                        + ": not a subregion of this container"
                        + (subregion.container == null ? "" : " (it is in container=" + subregion.container.name + ")"));
            }
            unlink(subregion);
        });
    }

    /**
     * Destroys this region, as QEMU does when the last reference to a region's owner goes
     * ({@code memory_region_finalize}, then {@code qemu_ram_free} for its RAM block): its subregions are taken out
     * of it, it can never be mapped or aliased again, and a RAM-backed region's {@link RamBlock} leaves the ram_addr
     * space (its range and name become free) and has its memory freed once nothing can use it any more.
     *
     * <h4>When the memory is freed</h4>
     * Not at once: after the commit that ends the transaction this call is part of (so no published view maps the
     * region any more), then after the last {@link DmaMapping} and {@link MemoryRegionCache} over the block ended,
     * and then after a grace period of {@link MemorySystem#rcu()}, on the RCU reclaimer thread: then the block's
     * backend frees it (an anonymous block closes its arena, exactly once).
     * <ul>
     *   <li>A reader inside a read-side section of the RCU domain ({@link Rcu.Reader#lock()}) keeps every block it
     *   reached in the section usable until it unlocks.</li>
     *   <li>An access through an {@link AddressSpace} that began on a view that still mapped the region, and finds
     *   the memory freed while it runs, is redone from the first byte it had not finished, on the address space's
     *   current view, which no longer maps the region: it neither fails nor returns freed memory's bytes, and is as if
     *   it had begun after the region left the map.</li>
     *   <li>A segment kept after all of that ({@link #ramSegment()}, a slice of it) fails cleanly: an
     *   {@link IllegalStateException} from the closed arena, never a crash or another block's bytes.</li>
     * </ul>
     *
     * @throws IllegalStateException if the region is still a subregion, still the target of an alias that is not
     *                               destroyed, the root of an address space, or already destroyed; nothing changes
     */
    public void destroy() {
        system.transaction(() -> {
            RegionChecks.checkCanDestroy(this, system.addressSpaceWithRoot(this));
            for (int i = subregionsReversed.size() - 1; i >= 0; i--) {
                unlink(subregionsReversed.get(i));
            }
            if (alias != null) {
                alias.aliasedBy.remove(this);
            }
            destroyed = true;
            if (ramBlock instanceof AbstractRamBlock b) {
                system.queueRelease(b);
            }
        });
    }

    /** Whether {@link #destroy()} was called. */
    public boolean isDestroyed() {
        return destroyed;
    }

    /** Inserts a checked subregion at its priority's place (QEMU's {@code memory_region_update_container_subregions}). */
    private void link(long offset, MemoryRegion subregion) {
        subregion.container = this;
        for (MemoryRegion a = subregion.alias; a != null; a = a.alias) {
            a.mappedViaAlias++;
        }
        subregion.addr = offset;
        subregion.addSequence = system.nextAddSequence();
        // QEMU inserts before the first region of lower or equal priority; back to front that is after the last
        // region of lower or equal priority: found by binary search (the list is sorted by priority), so adding
        // many regions below many of higher priority does not walk them all each time.
        int lo = 0;
        int hi = subregionsReversed.size();
        if (hi > 0 && subregion.priority < subregionsReversed.get(hi - 1).priority) {
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (subregion.priority < subregionsReversed.get(mid).priority) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
        } else {
            lo = hi; // the usual case: it wins its ties, an append
        }
        subregionsReversed.add(lo, subregion);
        system.noteChange(subregion);
        if (enabled && subregion.enabled) {
            system.markUpdatePending();
        }
    }

    private void unlink(MemoryRegion subregion) {
        system.noteChange(subregion);
        subregion.container = null;
        for (MemoryRegion a = subregion.alias; a != null; a = a.alias) {
            a.mappedViaAlias--;
            assert a.mappedViaAlias >= 0 : "mappedViaAlias of " + a.name;
        }
        subregionsReversed.remove(subregion);
        if (enabled && subregion.enabled) {
            system.markUpdatePending();
        }
    }

    // ---------------------------------------------------------------- attributes

    /** QEMU's {@code memory_region_set_enabled}. */
    public void setEnabled(boolean enabled) {
        system.transaction(() -> {
            if (this.enabled != enabled) {
                change(() -> this.enabled = enabled, false, true);
            }
        });
    }

    /**
     * QEMU's {@code memory_region_set_address}: moves this region inside its container. Like QEMU, a moved region
     * is removed and added again, so among equal priorities it becomes the most recently added.
     */
    public void setAddress(long addr) {
        system.transaction(() -> {
            if (this.addr == addr) {
                return;
            }
            MemoryRegion c = container;
            if (c == null) {
                // An address space root's own addr shifts its whole view (as in QEMU).
                system.requireFullRender();
                this.addr = addr;
                return;
            }
            c.unlink(this);
            c.link(addr, this);
        });
    }

    /**
     * QEMU's {@code memory_region_set_size}; {@code -1} means 2^64. The RAM of a RAM-backed region does not grow:
     * its size may only shrink or return to at most its block's length.
     */
    public void setSize(long size) {
        system.transaction(() -> {
            if (this.size == size) {
                return;
            }
            RegionChecks.checkSize(kind, name, size, ramBlock);
            if (alias != null) {
                RegionChecks.checkAliasWindow(name, alias, aliasOffset, size);
            }
            change(() -> this.size = size, true, true);
        });
    }

    /**
     * QEMU's {@code memory_region_ram_resize}: a resizeable RAM region (made by {@link MemorySystem#resizeableRam})
     * takes {@code newSize} bytes; its block's used length becomes {@code newSize} rounded up to the host page size,
     * listeners see the new size through the normal commit, and then the block's resize callback runs. See
     * {@link RamList} for the details.
     *
     * @throws IllegalArgumentException if the region has no RAM, its block is not resizeable and the used length
     *                                  would change, or the rounded size is larger than the block's max length
     */
    public void ramResize(long newSize) {
        system.ramList().resize(this, newSize);
    }

    /** QEMU's {@code memory_region_set_alias_offset}: moves this alias's window inside its target. */
    public void setAliasOffset(long offset) {
        system.transaction(() -> {
            RegionChecks.checkAlias(this);
            if (aliasOffset == offset) {
                return;
            }
            RegionChecks.checkAliasWindow(name, alias, offset, size);
            change(() -> aliasOffset = offset, false, false);
        });
    }

    /** QEMU's {@code memory_region_set_readonly}: accesses through this region (and below it) cannot write. */
    public void setReadonly(boolean readonly) {
        system.transaction(() -> {
            if (this.readonly != readonly) {
                change(() -> this.readonly = readonly, false, false);
            }
        });
    }

    /** QEMU's {@code memory_region_set_nonvolatile}. */
    public void setNonvolatile(boolean nonvolatile) {
        system.transaction(() -> {
            if (this.nonvolatile != nonvolatile) {
                change(() -> this.nonvolatile = nonvolatile, false, false);
            }
        });
    }

    /**
     * QEMU's {@code memory_region_set_unmergeable}: flat ranges of this region (and below it) are never merged with
     * their neighbours, so each mapping reaches listeners as its own section.
     */
    public void setUnmergeable(boolean unmergeable) {
        system.transaction(() -> {
            if (this.unmergeable != unmergeable) {
                change(() -> {
                    system.unmergeableChanged(unmergeable);
                    this.unmergeable = unmergeable;
                }, false, false);
            }
        });
    }

    /**
     * QEMU's {@code memory_region_rom_device_set_romd}: in romd mode the guest reads a ROM device's memory
     * directly; out of it every access goes to the device's ops.
     */
    public void setRomd(boolean romdMode) {
        system.transaction(() -> {
            RegionChecks.checkRomDevice(this);
            if (this.romdMode != romdMode) {
                change(() -> this.romdMode = romdMode, false, true);
            }
        });
    }

    /**
     * The mutators' one shape, inside their transaction: notes where this region shows through the tree (so the
     * commit re-renders those windows), applies {@code set}, notes again when the change moves or resizes the region
     * ({@code reshapes}), and tells the commit that something visible changed: always when {@code evenIfDisabled},
     * else only while this region is enabled (a disabled region shows nowhere). Writer only.
     */
    private void change(Runnable set, boolean reshapes, boolean evenIfDisabled) {
        system.noteChange(this);
        set.run();
        if (reshapes) {
            system.noteChange(this);
        }
        if (evenIfDisabled || enabled) {
            system.markUpdatePending();
        }
    }

    // ---------------------------------------------------------------- dirty logging

    /**
     * QEMU's {@code memory_region_set_log}: starts ({@code log}) or stops logging writes to this region for
     * {@code client}. Requests are counted, as QEMU counts the VGA client's: logging stops when as many stops as
     * starts have been asked for. Starting and stopping changes the flat ranges' dirty masks, so listeners hear
     * {@code logStart}/{@code logStop} on commit.
     *
     * @throws IllegalStateException if logging is stopped more often than it was started
     */
    public void setLog(boolean log, DirtyMemoryClient client) {
        system.transaction(() -> {
            int c = client.index();
            int old = logCounts[c];
            int now = old + (log ? 1 : -1);
            if (now < 0) {
                throw new IllegalStateException("region=" + name + " client=" + client
                        + ": logging stopped more often than it was started");
            }
            logCounts[c] = now;
            if ((old > 0) == (now > 0)) {
                return;
            }
            change(() -> dirtyLogMask = (dirtyLogMask & ~client.mask()) | (log ? client.mask() : 0), false, false);
        });
    }

    /** QEMU's {@code memory_region_set_dirty}: marks {@code [offset, offset + len)} dirty for every logging client. */
    public void setDirty(long offset, long len) {
        RegionChecks.checkRamRange(this, "setDirty", offset, len);
        int mask = system.dirtyLogMaskOf(this);
        if (len != 0 && mask != 0) {
            DirectWrites.setDirty(this, mask, offset, len);
        }
    }

    /** QEMU's {@code memory_region_get_dirty}: whether any page of {@code [offset, offset + len)} is dirty for client. */
    public boolean getDirty(long offset, long len, DirtyMemoryClient client) {
        RegionChecks.checkRamRange(this, "getDirty", offset, len);
        return system.dirtyBitmap(client).getDirty(ramBlock.offset() + offset, len);
    }

    /**
     * QEMU's {@code memory_region_snapshot_and_clear_dirty}: takes and clears {@code client}'s bits of
     * {@code [offset, offset + len)}, in whole 64-page words as QEMU does. Listeners hear, in this order: the sync of
     * this region's logged sections ({@code logSync}, or {@code logSyncGlobal}), then, once the bits are taken,
     * {@code logClear} for exactly {@code [offset, offset + len)} (not widened to words), then
     * {@code logGlobalAfterSync}.
     */
    public DirtySnapshot snapshotAndClearDirty(long offset, long len, DirtyMemoryClient client) {
        return snapshotAndClearDirty(offset, len, client, new DirtySnapshot());
    }

    /**
     * {@link #snapshotAndClearDirty(long, long, DirtyMemoryClient)} into {@code into}, which is refilled and
     * returned: a display or a migration that takes the same range over and over allocates nothing (see
     * {@link DirtyBitmap#snapshotAndClear(long, long, DirtySnapshot)}).
     */
    public DirtySnapshot snapshotAndClearDirty(long offset, long len, DirtyMemoryClient client, DirtySnapshot into) {
        Objects.requireNonNull(into, "into");
        RegionChecks.checkRamRange(this, "snapshotAndClearDirty", offset, len);
        // As QEMU: bits gathered elsewhere are synced in first, and listeners hear that a sync is over afterwards.
        system.dirtyLog().sync(this);
        DirtySnapshot snap = client == DirtyMemoryClient.CODE
                ? system.codeProtection().snapshotAndClear(ramBlock.offset() + offset, len, into)
                : system.dirtyBitmap(client).snapshotAndClear(ramBlock.offset() + offset, len, into);
        system.dirtyLog().clear(this, null, offset, len);
        system.globalAfterDirtyLogSync();
        return snap;
    }

    /**
     * QEMU's {@code memory_region_reset_dirty}: clears {@code client}'s bits of {@code [offset, offset + len)}, then,
     * as QEMU's {@code cpu_physical_memory_test_and_clear_dirty} does whether or not a bit was set, tells listeners
     * ({@code logClear}) for that range widened to whole target pages; nothing when {@code len} is 0. For
     * {@link DirtyMemoryClient#CODE} this protects the pages, soft TLBs included, as {@link CodeProtection#protect}
     * does (QEMU resets the TLBs on every clear).
     */
    public void resetDirty(long offset, long len, DirtyMemoryClient client) {
        RegionChecks.checkRamRange(this, "resetDirty", offset, len);
        if (client == DirtyMemoryClient.CODE) {
            // QEMU's clear resets the TLBs too: through code protection, so soft TLBs stop storing fast there.
            system.codeProtection().clearAndRearm(ramBlock.offset() + offset, len);
        } else {
            system.dirtyBitmap(client).testAndClearDirty(ramBlock.offset() + offset, len);
        }
        system.dirtyLog().clearPages(this, null, offset, len);
    }

    /**
     * QEMU's {@code memory_region_clear_dirty_bitmap}: asks the listeners that keep dirty logs of their own (a
     * hypervisor's, a peer's) to clear and re-arm them for region-relative {@code [start, start + len)}; guestmem's
     * own bitmaps are left as they are. Every listener that implements {@link MemoryListener#logClear}, in priority
     * order, hears it once for each range of its own address space's view that maps part of the range and logs
     * some client (an alias mapping the region twice gives two), with the section clipped to that part, in address
     * order. A listener that does not implement {@code logClear} costs nothing, and while none does this is one
     * read. {@link #resetDirty}, {@link #snapshotAndClearDirty} and {@link #ramResize} call it too, as QEMU's do.
     *
     * <p>Threading: any thread; takes the topology lock only when some listener implements {@code logClear}. A
     * listener being registered meanwhile may or may not hear this clear.
     *
     * @param start region-relative offset of the first byte
     * @param len   bytes; 0 does nothing
     * @throws IllegalArgumentException if the range does not lie inside the region
     */
    public void clearDirtyBitmap(long start, long len) {
        RegionChecks.checkInside(this, start, len);
        system.dirtyLog().clear(this, null, start, len);
    }

    /**
     * QEMU's {@code memory_region_flush_rom_device}: the device model of this ROM device wrote
     * {@code [addr, addr + size)} of its RAM directly (through {@link #ramSegment()}), not through an address space;
     * the range is marked dirty for every client that logs the region, as a store through the access path would
     * mark it (QEMU's {@code invalidate_and_set_dirty}, through which a JIT learns that code there may have changed).
     * Nothing when {@code size} is 0. As in QEMU, only for a ROM device in romd mode; other RAM-backed regions use
     * {@link #setDirty}.
     *
     * <p>Threading: any thread, without locks, like a store.
     *
     * @param addr region-relative offset of the first byte written
     * @param size bytes written
     * @throws IllegalArgumentException if this is not a ROM device in romd mode, or the range is outside its RAM
     */
    public void flushRomDevice(long addr, long size) {
        RegionChecks.checkRomd(this);
        RegionChecks.checkRamRange(this, "flushRomDevice", addr, size);
        if (size != 0) {
            DirectWrites.invalidateAndSetDirty(this, addr, size);
        }
    }

    // ---------------------------------------------------------------- coalesced MMIO and ioeventfds

    /** QEMU's {@code memory_region_set_coalescing}: the whole region coalesces its writes. */
    public void setCoalescing() {
        system.transaction(() -> {
            clearCoalescing();
            addCoalescing(0, size == U64.SIZE_2_64 ? -1L : size);
        });
    }

    /**
     * QEMU's {@code memory_region_add_coalescing}: writes to {@code [offset, offset + size)} (region-relative) may be
     * buffered and delivered later in order. Listeners hear {@code coalescedIoAdd} at once for every place the
     * range is mapped.
     */
    public void addCoalescing(long offset, long size) {
        system.transaction(() -> {
            long[] range = {offset, size};
            coalesced.add(range);
            system.updateCoalescedRange(this, range, true);
            flushCoalescedMmio = true;
        });
    }

    /** QEMU's {@code memory_region_clear_coalescing}: removes every coalesced range, telling listeners. */
    public void clearCoalescing() {
        system.transaction(() -> {
            if (coalesced.isEmpty()) {
                return;
            }
            flushCoalescedMmio = false;
            while (!coalesced.isEmpty()) {
                system.updateCoalescedRange(this, coalesced.removeFirst(), false);
            }
        });
    }

    /** The coalesced ranges as region-relative {@code [offset, size]} pairs. */
    public List<long[]> coalescedRanges() {
        system.begin();
        try {
            ArrayList<long[]> copy = new ArrayList<>(coalesced.size());
            for (long[] r : coalesced) {
                copy.add(r.clone());
            }
            return copy;
        } finally {
            system.commit();
        }
    }

    /** QEMU's {@code memory_region_set_flush_coalesced}. */
    public void setFlushCoalesced() {
        flushCoalescedMmio = true;
    }

    /** QEMU's {@code memory_region_clear_flush_coalesced}: keeps the flag while coalesced ranges remain. */
    public void clearFlushCoalesced() {
        system.transaction(() -> {
            if (coalesced.isEmpty()) {
                flushCoalescedMmio = false;
            }
        });
    }

    /** Whether accesses to this region must first flush pending coalesced writes. */
    public boolean flushCoalesced() {
        return flushCoalescedMmio;
    }

    /**
     * QEMU's {@code memory_region_add_eventfd}: a guest write of {@code size} bytes (0: any size) at region offset
     * {@code addr}, with value {@code data} in the target's byte order when {@code matchData}, signals {@code e}
     * instead of reaching the device. Listeners hear {@code eventfdAdd} on commit for each place it is mapped.
     */
    public void addEventfd(long addr, int size, boolean matchData, long data, EventNotifier e) {
        Objects.requireNonNull(e, "e");
        system.transaction(() -> {
            Ioeventfd fd = system.ioeventfds().newIoeventfd(this, addr, size, matchData, data, e);
            ioeventfds = Ioeventfd.inserted(ioeventfds, fd); // volatile: the write path sees one set, whole
            system.ioeventfds().registered(1, enabled);
        });
    }

    /** QEMU's {@code memory_region_del_eventfd}; throws when no such registration exists. */
    public void delEventfd(long addr, int size, boolean matchData, long data, EventNotifier e) {
        Objects.requireNonNull(e, "e");
        system.transaction(() -> {
            Ioeventfd fd = system.ioeventfds().newIoeventfd(this, addr, size, matchData, data, e);
            Ioeventfd[] old = ioeventfds;
            Ioeventfd[] next = Ioeventfd.removed(old, fd);
            if (next == old) {
                throw new IllegalArgumentException("region=" + name + " addr=" + U64.hex(addr) + " size=" + size
                        + " matchData=" + matchData + " data=" + U64.hex(data) + ": no such ioeventfd");
            }
            ioeventfds = next;
            system.ioeventfds().registered(-1, enabled);
        });
    }

    /**
     * QEMU's {@code memory_region_dispatch_write_eventfds}: signals the first ioeventfd that a write of {@code size}
     * bytes of {@code data} (device byte order) at region offset {@code addr} matches, and says whether one did.
     * Lock-free; for the write path of any thread.
     */
    boolean dispatchWriteEventfds(long addr, long data, int size) {
        return Ioeventfd.signalFirst(ioeventfds, addr, data, size);
    }

    // ---------------------------------------------------------------- IOMMU notifiers

    /**
     * QEMU's {@code memory_region_register_iommu_notifier}: subscribes {@code n} to this IOMMU's mapping changes (an
     * alias registers on its target). If the IOMMU refuses the new set of flags
     * ({@link IommuOps#notifyFlagChanged} throws), the registration is undone and the exception propagates.
     */
    public void registerIommuNotifier(IommuNotifier n) {
        Objects.requireNonNull(n, "n");
        MemoryRegion mr = RegionChecks.iommuTarget(this, "registerIommuNotifier");
        system.transaction(() -> mr.iommuNotifiers.register(mr, n));
    }

    /** QEMU's {@code memory_region_unregister_iommu_notifier}. */
    public void unregisterIommuNotifier(IommuNotifier n) {
        MemoryRegion mr = RegionChecks.iommuTarget(this, "unregisterIommuNotifier");
        system.transaction(() -> mr.iommuNotifiers.unregister(mr, n));
    }

    /** The union of the flags of this IOMMU's notifiers. */
    public int iommuNotifyFlags() {
        return RegionChecks.iommuTarget(this, "iommuNotifyFlags").iommuNotifiers.flags();
    }

    /**
     * QEMU's {@code memory_region_notify_iommu}: an IOMMU model reports a mapping change of context
     * {@code iommuIdx}; every notifier of that context whose range and flags fit hears it. Lock-free.
     */
    public void notifyIommu(int iommuIdx, IommuTlbEvent event) {
        RegionChecks.iommuTarget(this, "notifyIommu").iommuNotifiers.notify(iommuIdx, event);
    }

    /**
     * QEMU's {@code memory_region_iommu_replay}: tells {@code n} about every current mapping, through the IOMMU's
     * own replay if it has one, else by translating each minimum-size page of the region and notifying those that
     * are mapped.
     */
    public void iommuReplay(IommuNotifier n) {
        IommuNotifiers.replay(RegionChecks.iommuTarget(this, "iommuReplay"), n);
    }

    /**
     * QEMU's {@code memory_region_unmap_iommu_notifier_range}: tells {@code n} that everything in its range is
     * unmapped.
     */
    public static void unmapIommuNotifierRange(IommuNotifier n) {
        n.deliver(new IommuTlbEvent(IommuNotifier.UNMAP,
                new IommuTlbEntry(null, n.start(), 0, n.end() - n.start(), IommuOps.IOMMU_NONE)));
    }

    // ---------------------------------------------------------------- RamDiscardManager

    /** QEMU's {@code mr->rdm}: who populates and discards this RAM region's memory in parts, or null. Writer only. */
    private RamDiscardManager ramDiscardManager;

    /**
     * QEMU's {@code memory_region_set_ram_discard_manager}: makes {@code rdm} the manager of this RAM region's
     * memory, or clears it ({@code null}). As in QEMU 7.2, only while the region is not mapped (so that whoever maps
     * it finds the manager from the start), and a manager is never replaced by another without being cleared first.
     *
     * @throws IllegalArgumentException if the region is not RAM ({@link #isRam()})
     * @throws IllegalStateException    if the region is mapped, or {@code rdm} is not null and a manager is set
     */
    public void setRamDiscardManager(RamDiscardManager rdm) {
        system.transaction(() -> {
            RegionChecks.checkCanSetRamDiscardManager(this, rdm, mappedViaAlias);
            ramDiscardManager = rdm;
        });
    }

    /** QEMU's {@code memory_region_get_ram_discard_manager}: the manager of this region's RAM, or null. */
    public RamDiscardManager getRamDiscardManager() {
        return isRam() ? ramDiscardManager : null;
    }

    /** QEMU's {@code memory_region_has_ram_discard_manager}. */
    public boolean hasRamDiscardManager() {
        return getRamDiscardManager() != null;
    }

    // ---------------------------------------------------------------- queries

    /**
     * QEMU's {@code memory_region_find}: the lowest-addressed section of the flat view that intersects
     * {@code [addr, addr + size)}, where {@code addr} is relative to this region. The region's chain of containers
     * is followed up to its root, which must be the root of an address space; returns null when it is not, or when
     * nothing is mapped in the range.
     *
     * @param addr offset inside this region
     * @param size bytes, at least 1
     */
    public MemoryRegionSection find(long addr, long size) {
        if (size == 0) {
            throw new IllegalArgumentException("region=" + name + " addr=" + U64.hex(addr) + " size=0: empty range");
        }
        system.begin();
        try {
            long a = addr + this.addr;
            MemoryRegion root = this;
            while (root.container != null) {
                root = root.container;
                a += root.addr;
            }
            AddressSpace as = system.addressSpaceWithRoot(root);
            if (as == null) {
                return null;
            }
            return as.flatView().findSection(a, U64.saturatingAdd(a, size - 1));
        } finally {
            system.commit();
        }
    }

    /**
     * QEMU's {@code memory_region_present}: whether something other than this container itself is mapped at
     * {@code addr} (relative to this region).
     */
    public boolean present(long addr) {
        MemoryRegionSection s = find(addr, 1);
        return s != null && s.region() != this;
    }

    @Override
    public String toString() {
        return "MemoryRegion[" + name + " " + kind.mapName() + " size=" + U64.sizeHex(size)
                + (container == null ? "" : " in " + container.name + "@" + U64.hex(addr)) + "]";
    }
}
