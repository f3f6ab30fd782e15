package dev.guestmem.memory;

import dev.guestmem.memory.internal.dirty.DirtyHook;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.ram.RamAllocation;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The ram_addr space of one {@link MemorySystem}, as QEMU's {@code ram_list} (softmmu/physmem.c): every RAM-backed
 * region's {@link RamBlock} gets a range of it when the region is made, and dirty-memory bitmaps index their pages by
 * ram_addr.
 *
 * <h2>Placement</h2>
 * A ram_addr is an unsigned 64-bit value below 2^64 - 1 ({@link #INVALID_RAM_ADDR} is never one). A block covers
 * {@code [offset, offset + maxLength)}. The first block goes at 0; every later one at QEMU's {@code find_ram_offset}
 * place: the candidates are the ends of the existing blocks, each rounded up to {@link #alignment()} (64 target
 * pages, so a block starts on a 64-bit word of every dirty bitmap with pages of that size or smaller); of the
 * candidates whose gap to the next block (or to the end of the space) holds the new block, the one with the smallest
 * gap wins, ties going to the first in QEMU's list order (largest max length first, then oldest). A gap below the
 * lowest block is never a candidate, as in QEMU. A block that fits nowhere is refused with an exception.
 *
 * <h2>Names</h2>
 * Block names ({@link RamBlock#idstr()}) are unique within the memory system, as QEMU's {@code qemu_ram_set_idstr}
 * requires of its idstrs. guestmem does not model owners, so the owner path QEMU puts in front of the name is the
 * caller's to include in the name (e.g. {@code "0000:00:02.0/vga.vram"}) when two devices would otherwise clash.
 *
 * <h2>Lookup</h2>
 * By ram_addr ({@link #blockByRamAddr}, QEMU's {@code qemu_get_ram_block}: a most-recently-used check, then a binary
 * search) and by host address ({@link #blockFromHost}, QEMU's {@code qemu_ram_block_from_host}). Both find every byte
 * of a block's max length, used or not, as QEMU does.
 *
 * <p>Threading: lookups are lock-free and may run on any thread. The block list is an immutable sorted snapshot that
 * a writer replaces with one release store; a lookup works on the one snapshot it loaded with an acquire load, so
 * it sees every block completely placed or not at all. Adding and removing blocks is serialized by a private lock.
 * {@link #resize} is a topology change: it runs as the topology writer.
 */
public final class RamList {
    /** QEMU's {@code RAM_ADDR_INVALID}: what {@link #ramAddrFromHost} returns for memory no block holds. */
    public static final long INVALID_RAM_ADDR = -1L;

    /** The exclusive end of the ram_addr space, 2^64 - 1 (QEMU's {@code RAM_ADDR_MAX} as the end of the last gap). */
    private static final long SPACE_END = -1L;

    /** QEMU rounds used lengths to the host page size; guestmem's RAM is allocated in 4 KiB pages. */
    static final long HOST_PAGE_SIZE = RamAllocation.HOST_PAGE_SIZE;

    /** A block found by host address, and the byte offset of that address inside it. */
    public record HostOffset(RamBlock block, long offset) {
    }

    /** One published list; never changed after its release store. */
    private static final class Snapshot {
        /** Every block, ascending ram_addr; ranges never overlap. */
        final AbstractRamBlock[] byOffset;
        /** {@code byOffset[i].offset}, for a search that does not chase pointers. */
        final long[] offsets;
        /** Blocks with native host memory, ascending host address (unsigned); their ranges may overlap. */
        final AbstractRamBlock[] byHost;
        final long[] hostStarts;
        /** The highest inclusive last host address of {@code byHost[0..i]}: where a backwards scan may stop. */
        final long[] hostLastMax;
        final long lastRamPage;

        /** The list of {@code blocks}, which come in ascending ram_addr order. */
        Snapshot(Collection<AbstractRamBlock> blocks, long lastRamPage) {
            this.byOffset = blocks.toArray(new AbstractRamBlock[0]);
            this.offsets = new long[byOffset.length];
            int hosted = 0;
            for (int i = 0; i < byOffset.length; i++) {
                offsets[i] = byOffset[i].offset;
                hosted += isHosted(byOffset[i]) ? 1 : 0;
            }
            this.byHost = new AbstractRamBlock[hosted];
            int k = 0;
            for (AbstractRamBlock b : byOffset) {
                if (isHosted(b)) {
                    byHost[k++] = b;
                }
            }
            Arrays.sort(byHost, (x, y) -> Long.compareUnsigned(x.hostSegment().address(), y.hostSegment().address()));
            this.hostStarts = new long[hosted];
            this.hostLastMax = new long[hosted];
            for (int i = 0; i < hosted; i++) {
                hostStarts[i] = byHost[i].hostSegment().address();
                long last = hostStarts[i] + byHost[i].maxLength() - 1;
                hostLastMax[i] = i == 0 ? last : U64.max(hostLastMax[i - 1], last);
            }
            this.lastRamPage = lastRamPage;
        }

        private static boolean isHosted(AbstractRamBlock b) {
            return b.hasHostMemory() && b.hostSegment().isNative();
        }
    }

    /**
     * A block's entry in the best-fit index: the gap between its aligned end and the next block, then QEMU's list
     * order (largest max length first, then oldest), which decides between equal gaps.
     */
    private record GapKey(long gap, long maxLength, long registration) implements Comparable<GapKey> {
        @Override
        public int compareTo(GapKey o) {
            int c = Long.compareUnsigned(gap, o.gap);
            if (c == 0) {
                c = Long.compare(o.maxLength, maxLength);
            }
            return c != 0 ? c : Long.compare(registration, o.registration);
        }
    }

    private static final VarHandle SNAPSHOT;

    static {
        try {
            SNAPSHOT = MethodHandles.lookup().findVarHandle(RamList.class, "snapshot", Snapshot.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final int pageBits;
    private final long alignment;
    private final Object writeLock = new Object();
    /** Written with a release store under {@link #writeLock}; read with an acquire load (via SNAPSHOT). */
    @SuppressWarnings("unused")
    private Snapshot snapshot;
    /**
     * Racy hint (see the package comment): the index in the current snapshot's {@code byOffset} of the block the last
     * ram_addr lookup found (QEMU's {@code mru_block}). Any int is safe: a lookup checks it against the snapshot it
     * loaded before trusting it.
     */
    private int mruIndex;
    /** Blocks by name. Under {@link #writeLock}. */
    private final HashMap<String, AbstractRamBlock> byName = new HashMap<>();
    /** Names handed out by {@link #uniqueIdstr} whose blocks are not registered yet. Under {@code writeLock}. */
    private final java.util.HashSet<String> reservedNames = new java.util.HashSet<>();
    /** Every block by offset (unsigned), to find the block after a gap. Under {@link #writeLock}. */
    private final TreeMap<Long, AbstractRamBlock> placed = new TreeMap<>(Long::compareUnsigned);
    /**
     * The best-fit index: every block that has an aligned place after it inside the space, by the gap there. A
     * query for the smallest gap that holds a size is QEMU's {@code find_ram_offset} without its scan of every pair
     * of blocks. Under {@link #writeLock}.
     */
    private final TreeMap<GapKey, AbstractRamBlock> byGap = new TreeMap<>();
    private final IdentityHashMap<AbstractRamBlock, GapKey> gapKeys = new IdentityHashMap<>();
    /** Counts registrations. Under {@link #writeLock}. */
    private long registrations;
    /** Under {@link #writeLock}. */
    private DirtyHook dirtyHook = DirtyHook.NONE;
    /** Blocks were placed but not yet published ({@link #add} with {@code deferPublish}). Under {@link #writeLock}. */
    private boolean publishPending;

    /**
     * An empty ram_addr space whose blocks are aligned to 64 pages of {@code 2^pageBits} bytes.
     *
     * @param pageBits the target page size (QEMU's {@code TARGET_PAGE_BITS}) that dirty bitmaps over this space use
     */
    RamList(int pageBits) {
        AddressSpaceDispatch.checkPageBits(pageBits);
        this.pageBits = pageBits;
        this.alignment = 64L << pageBits;
        SNAPSHOT.setRelease(this, new Snapshot(List.of(), 0));
    }

    /** The target page size in bits: the unit of {@link #lastRamPage()}. */
    public int pageBits() {
        return pageBits;
    }

    /** Bytes every block offset is a multiple of: 64 target pages. */
    public long alignment() {
        return alignment;
    }

    /** Every block, ascending ram_addr, as one snapshot. */
    public List<RamBlock> blocks() {
        return List.of(current().byOffset);
    }

    /**
     * QEMU's {@code last_ram_page}: how many target pages cover every block's max length, i.e. the page count a dirty
     * bitmap over this space needs now. 0 when there are no blocks.
     */
    public long lastRamPage() {
        return current().lastRamPage;
    }

    /**
     * QEMU's {@code qemu_get_ram_block}: the block whose range {@code [offset, offset + maxLength)} holds
     * {@code ramAddr}, or null (QEMU aborts instead). Lock-free, allocation-free.
     */
    public RamBlock blockByRamAddr(long ramAddr) {
        final Snapshot snapshot = current();
        final AbstractRamBlock[] blocks = snapshot.byOffset;
        final int mru = mruIndex;
        if (mru < blocks.length) {
            AbstractRamBlock b = blocks[mru];
            if (U64.lt(ramAddr - b.offset, b.maxLength())) {
                return b;
            }
        }
        int i = floor(snapshot.offsets, snapshot.offsets.length, ramAddr);
        if (i >= 0 && U64.lt(ramAddr - snapshot.offsets[i], blocks[i].maxLength())) {
            mruIndex = i; // racy hint: a lost or stale write only costs a search
            return blocks[i];
        }
        return null;
    }

    /** QEMU's {@code qemu_ram_block_by_name}: the block called {@code idstr}, or null. */
    public RamBlock blockByName(String idstr) {
        Objects.requireNonNull(idstr, "idstr");
        for (AbstractRamBlock b : current().byOffset) {
            if (b.idstr().equals(idstr)) {
                return b;
            }
        }
        return null;
    }

    /**
     * QEMU's {@code qemu_ram_block_from_host}: the block whose host memory holds the byte at native address
     * {@code hostAddress}, with that byte's offset in the block, or null. Only blocks over native memory are found
     * (layout-only blocks and blocks over heap segments have no host address). If the host memory of several blocks
     * holds the address (two regions made over the same segment), the one whose memory starts highest is found.
     */
    public HostOffset blockFromHost(long hostAddress) {
        final Snapshot snapshot = current();
        final long[] starts = snapshot.hostStarts;
        final long[] lastMax = snapshot.hostLastMax;
        for (int i = floor(starts, starts.length, hostAddress); i >= 0 && U64.le(hostAddress, lastMax[i]); i--) {
            AbstractRamBlock b = snapshot.byHost[i];
            if (U64.lt(hostAddress - starts[i], b.maxLength())) {
                return new HostOffset(b, hostAddress - starts[i]);
            }
        }
        return null;
    }

    /**
     * {@link #blockFromHost(long)} for the first byte of {@code host}; null for a heap segment, which no block's
     * host memory can be.
     */
    public HostOffset blockFromHost(MemorySegment host) {
        return host.isNative() ? blockFromHost(host.address()) : null;
    }

    /**
     * QEMU's {@code qemu_ram_addr_from_host}: the ram_addr of the byte at native address {@code hostAddress}, or
     * {@link #INVALID_RAM_ADDR} when no block's host memory holds it.
     */
    public long ramAddrFromHost(long hostAddress) {
        HostOffset found = blockFromHost(hostAddress);
        return found == null ? INVALID_RAM_ADDR : found.block().offset() + found.offset();
    }

    // ---------------------------------------------------------------- writers

    /** Installs where dirty bitmaps follow this space (see {@link DirtyHook}); {@code null} for none. */
    void setDirtyHook(DirtyHook hook) {
        synchronized (writeLock) {
            dirtyHook = hook == null ? DirtyHook.NONE : hook;
        }
    }

    /**
     * A block name for a region called {@code name}: the name itself when no block has it, else {@code name#2},
     * {@code name#3}, ... (QEMU makes idstrs unique with the owner's path; guestmem has no owners). The name is
     * reserved until a block of that name is added.
     */
    String uniqueIdstr(String name) {
        synchronized (writeLock) {
            String candidate = name;
            for (int n = 2; byName.containsKey(candidate) || reservedNames.contains(candidate); n++) {
                candidate = name + "#" + n;
            }
            reservedNames.add(candidate);
            return candidate;
        }
    }

    /** Gives back a name {@link #uniqueIdstr} reserved for a block that was never made. */
    void releaseIdstr(String idstr) {
        synchronized (writeLock) {
            reservedNames.remove(idstr);
        }
    }

    /**
     * QEMU's {@code ram_block_add} (with {@code qemu_ram_set_idstr}'s uniqueness check): places {@code block} where
     * {@code find_ram_offset} would and publishes it, at once or, with {@code deferPublish}, at the next
     * {@link #publishPending()}. The memory system defers blocks made inside a transaction to its outermost commit,
     * so a transaction that makes many blocks publishes the list once (no view can map them before that commit,
     * so no reader of the access path needs them earlier); their offsets are assigned at once either way.
     *
     * @throws IllegalArgumentException if a block of the same name is registered, or the block was placed before
     * @throws IllegalStateException    if no gap of the ram_addr space is large enough
     */
    void add(AbstractRamBlock block, boolean deferPublish) {
        synchronized (writeLock) {
            if (block.offset != AbstractRamBlock.UNPLACED) {
                throw new IllegalArgumentException("block=" + block.idstr() + " offset=" + U64.hex(block.offset)
                        + ": the block is already placed in a ram_addr space");
            }
            if (byName.containsKey(block.idstr())) {
                throw new IllegalArgumentException("idstr=" + block.idstr()
                        + ": a RAM block of this name is already registered in this memory system");
            }
            long offset = 0;
            if (!placed.isEmpty()) {
                var fit = byGap.ceilingEntry(new GapKey(block.maxLength(), Long.MAX_VALUE, Long.MIN_VALUE));
                if (fit == null) {
                    throw new IllegalStateException("size=" + U64.hex(block.maxLength()) + " blocks=" + placed.size()
                            + ": no gap in the ram_addr space is large enough for the block");
                }
                offset = alignedEnd(fit.getValue());
            }
            block.offset = offset;
            block.registration = ++registrations;
            placed.put(offset, block);
            byName.put(block.idstr(), block);
            reservedNames.remove(block.idstr());
            indexGapAfter(block);
            var before = placed.lowerEntry(offset);
            if (before != null) {
                indexGapAfter(before.getValue());
            }
            // Bitmaps grow before any reader can reach the block through the list.
            dirtyHook.blockAdded(block, lastRamPageNow());
            if (deferPublish) {
                publishPending = true;
            } else {
                publish();
            }
        }
    }

    /** Publishes blocks that {@link #add} placed with {@code deferPublish}, if there are any. */
    void publishPending() {
        synchronized (writeLock) {
            if (publishPending) {
                publish();
            }
        }
    }

    /** Builds the list from the writer's index and publishes it. Under {@link #writeLock}. */
    private void publish() {
        publishPending = false;
        // Release: every placed block's offset and the whole snapshot are visible to whoever loads it with acquire.
        SNAPSHOT.setRelease(this, new Snapshot(placed.values(), lastRamPageNow()));
    }

    /** {@link #lastRamPage()} of the placed blocks: ranges do not overlap, so the highest block ends highest. */
    private long lastRamPageNow() {
        var last = placed.lastEntry();
        if (last == null) {
            return 0;
        }
        long end = last.getValue().offset + last.getValue().maxLength(); // at most SPACE_END: never wraps
        return (end >>> pageBits) + ((end & ((1L << pageBits) - 1)) != 0 ? 1 : 0);
    }

    /**
     * Takes {@code block} out of the list (QEMU's {@code qemu_ram_free} up to the RCU grace period): its range and its
     * name become free for later blocks. Its offset stays, so a reader still holding it can use it. Freeing its
     * memory is the caller's business, after no reader can reach it.
     *
     * @return whether the block was in the list
     */
    boolean remove(RamBlock block) {
        synchronized (writeLock) {
            if (!(block instanceof AbstractRamBlock b) || placed.get(b.offset) != b) {
                return false;
            }
            placed.remove(b.offset);
            byName.remove(b.idstr());
            GapKey key = gapKeys.remove(b);
            if (key != null) {
                byGap.remove(key);
            }
            var before = placed.lowerEntry(b.offset);
            if (before != null) {
                indexGapAfter(before.getValue());
            }
            publish(); // readers that load the new snapshot no longer find the block
            return true;
        }
    }

    /**
     * Puts {@code b} in the best-fit index under the gap from its aligned end to the next block (or the end of the
     * space), or leaves it out when no aligned place follows it inside the space. Writer only.
     */
    private void indexGapAfter(AbstractRamBlock b) {
        GapKey old = gapKeys.remove(b);
        if (old != null) {
            byGap.remove(old);
        }
        long end = b.offset + b.maxLength();
        if (U64.lt(-alignment, end)) {
            return;
        }
        var next = placed.higherEntry(b.offset);
        long gap = (next == null ? SPACE_END : next.getKey()) - alignedEnd(b);
        if (gap == 0) {
            return; // holds no block: left out, so that blocks packed side by side keep the index small
        }
        GapKey key = new GapKey(gap, b.maxLength(), b.registration);
        byGap.put(key, b);
        gapKeys.put(b, key);
    }

    /** QEMU's candidate offset after {@code b}: its end rounded up to {@link #alignment()}. */
    private long alignedEnd(AbstractRamBlock b) {
        return (b.offset + b.maxLength() + alignment - 1) & -alignment;
    }

    /**
     * QEMU's {@code qemu_ram_resize} behind {@link MemoryRegion#ramResize}: the used length of {@code mr}'s block
     * becomes {@code newSize} rounded up to the host page size, the region's size becomes {@code newSize} (listeners
     * hear it through the normal commit), and then the block's resize callback runs. If the rounded size is the used
     * length already, only the region's size changes (and the callback runs if it did). The whole change, callback
     * included, happens inside the topology lock; the commit that publishes the new size comes before the callback
     * unless the caller has a transaction open. Topology writer.
     */
    void resize(MemoryRegion mr, long newSize) {
        MemorySystem system = mr.system;
        if (!(mr.ramBlock instanceof AbstractRamBlock block)) {
            throw new IllegalArgumentException("region=" + mr.name + " kind=" + mr.kind.mapName()
                    + ": only RAM-backed regions can be resized");
        }
        if (newSize <= 0 || newSize > Long.MAX_VALUE - (HOST_PAGE_SIZE - 1)) {
            throw new IllegalArgumentException("region=" + mr.name + " newSize=" + U64.sizeHex(newSize)
                    + ": RAM must be between 1 byte and 2^63-2^12 bytes");
        }
        long aligned = (newSize + HOST_PAGE_SIZE - 1) & -HOST_PAGE_SIZE;
        RamBlock.Resized callback;
        long oldUsed = aligned; // the used length before, when it changes
        // Held across the commit, so the callback runs on the writer's side of the lock as QEMU's runs under the BQL.
        system.lockTopology();
        try {
            system.begin();
            try {
                long used = block.usedLength();
                boolean sameBlock = aligned == used || newSize == used;
                if (sameBlock && newSize == mr.size) {
                    return;
                }
                if (!sameBlock && !block.hasFlag(RamFlag.RESIZEABLE)) {
                    throw new IllegalArgumentException("region=" + mr.name + " block=" + block.idstr() + " newSize="
                            + U64.hex(aligned) + " usedLength=" + U64.hex(used) + ": the block is not resizeable");
                }
                if (U64.lt(block.maxLength(), aligned)) {
                    throw new IllegalArgumentException("region=" + mr.name + " block=" + block.idstr() + " newSize="
                            + U64.hex(aligned) + " maxLength=" + U64.hex(block.maxLength())
                            + ": larger than the block's max length");
                }
                if (!sameBlock) {
                    oldUsed = used;
                    block.setUsedLength(aligned);
                    synchronized (writeLock) {
                        dirtyHook.usedLengthChanged(block, used, aligned);
                    }
                }
                mr.setSize(newSize);
                callback = block.resized;
            } finally {
                system.commit();
            }
            if (oldUsed != aligned) {
                block.usedLengthChanged(oldUsed, aligned);
            }
            if (callback != null) {
                callback.resized(block, newSize);
            }
        } finally {
            system.unlockTopology();
        }
    }

    /** The index of the last of {@code a[0..n)} (ascending, unsigned) at or below {@code key}; -1 if none is. */
    private static int floor(long[] a, int n, long key) {
        int lo = 0;
        int hi = n - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (U64.le(a[mid], key)) {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return lo - 1;
    }

    private Snapshot current() {
        return (Snapshot) SNAPSHOT.getAcquire(this);
    }
}
