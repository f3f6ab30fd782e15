package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DmaMapping;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.Objects;

/**
 * DMA mapping for one {@link AddressSpace}, as QEMU's {@code address_space_map}, {@code address_space_unmap},
 * {@code address_space_access_valid} and the bounce-buffer budget with its map clients, in the per-address-space
 * form QEMU has had since 9.1 ({@code max_bounce_buffer_size}, {@code bounce_buffer_size},
 * {@code address_space_register_map_client}). The public contract is on {@link AddressSpace#map}; this class is
 * the state behind it and the mechanics.
 *
 * <p>Threading: {@link #map}, {@link #unmap}, {@link #accessValid} and the budget getters are lock-free from any
 * thread; the budget is one counter changed only by CAS and atomic add. The list of map clients is guarded by
 * {@link #clientsLock}, and callbacks run outside it.
 */
public final class DmaMap {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();

    /** QEMU's {@code DEFAULT_MAX_BOUNCE_BUFFER_SIZE}: 4 KiB, the size of QEMU's single bounce buffer before 9.1. */
    public static final long DEFAULT_MAX_BOUNCE_BUFFER_SIZE = 4096;
    private static final long BOUNCE_ALIGNMENT = 16;
    private static final Runnable[] NO_CLIENTS = new Runnable[0];
    private static final VarHandle BOUNCE_BUFFER_SIZE;

    static {
        try {
            BOUNCE_BUFFER_SIZE = MethodHandles.lookup().findVarHandle(DmaMap.class, "bounceBufferSize", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final AddressSpace as;
    /** QEMU's {@code max_bounce_buffer_size}, bytes. Volatile: any thread may change it. */
    private volatile long maxBounceBufferSize = DEFAULT_MAX_BOUNCE_BUFFER_SIZE;
    /**
     * QEMU's {@code bounce_buffer_size}: bytes of bounce buffers handed out and not yet unmapped. Changed only by the
     * CAS in {@link #reserve} and the atomic subtraction in {@link #release}; read with volatile loads.
     */
    @SuppressWarnings("unused")
    private volatile long bounceBufferSize;
    private final Object clientsLock = new Object();
    /** Registered map clients, in registration order. Guarded by {@link #clientsLock}. */
    private final ArrayList<Runnable> clients = new ArrayList<>();

    public DmaMap(AddressSpace as) {
        this.as = as;
    }

    // ---------------------------------------------------------------- map / unmap

    /** {@link AddressSpace#map} on dispatch {@code d} (of a view), which the caller loaded once. */
    public DmaMapping map(AddressSpaceDispatch d, long addr, long len, boolean isWrite, MemTxAttrs attrs) {
        if (len == 0) {
            return null;
        }
        // Follow IOMMUs to where the first byte really is (QEMU's flatview_translate in address_space_map).
        AddressSpaceDispatch at = d;
        long atAddr = addr;
        long atLen = len;
        int s = at.sectionIndex(atAddr);
        FlatRange fr = at.flatRange(s);
        for (int hops = 0; fr != null && fr.region().kind() == MemoryRegion.Kind.IOMMU; hops++) {
            AccessPath.Hop hop = hops == AccessPath.MAX_IOMMU_HOPS ? null
                    : AccessPath.iommuHop(fr, atAddr, atLen, isWrite, attrs);
            if (hop == null) {
                fr = null; // refused (or a loop): not direct, so it bounces and reads as unassigned
                break;
            }
            at = hop.target();
            atAddr = hop.addr();
            atLen = hop.len();
            s = at.sectionIndex(atAddr);
            fr = at.flatRange(s);
        }
        // RAM that can fault bounces: the copies go through the access path, which turns a fault into an error,
        // where a device holding the RAM's segment would meet it as an exception (or, in native code, a crash).
        if (fr != null && isDirect(fr, isWrite) && !CORE.ramMayFault(fr.region())) {
            if (fr.region().ramBlock() instanceof AbstractRamBlock b && !CORE.retain(b)) {
                // Its freeing began: the view is no longer current. QEMU's map holds a reference on the region
                // until unmap; take it on what the current view maps instead.
                return map(CORE.dispatch(as), addr, len, isWrite, attrs);
            }
            long xlat = at.offsetInRegion(s, atAddr);
            long l = directRun(at, s, atAddr, atLen);
            MemorySegment slice = fr.region().ramBlock().hostSegment().asSlice(xlat, l);
            return CORE.directMapping(as, addr, isWrite, attrs, slice, fr.region(), xlat);
        }
        // Not directly accessible (MMIO, ROM devices out of romd mode, ROM or read-only RAM for a write, holes,
        // IOMMUs that refuse the access): bounce. As in QEMU, the length is what was asked for, not cut at
        // the section's end; the budget is what limits it.
        long alloc = reserve(len);
        if (alloc == 0) {
            return null;
        }
        try {
            // Zeroed, like QEMU 9.1's buffer: for a write mapping, bytes the device does not write are written
            // back as zeros if the caller says it wrote them.
            MemorySegment buffer = Arena.ofAuto().allocate(alloc, BOUNCE_ALIGNMENT);
            if (!isWrite) {
                // Filled once, now, from this view; the result is dropped as QEMU drops it (failed bytes read 0).
                AccessPath.read(as, d, addr, attrs, buffer, null, 0, alloc);
            }
            return CORE.bounceMapping(as, addr, isWrite, attrs, buffer);
        } catch (Throwable t) {
            // Out of memory, or a device callback threw while filling: give the budget back, and tell anyone who
            // registered while it was taken.
            release(alloc);
            try {
                notifyClients();
            } catch (RuntimeException e) {
                t.addSuppressed(e);
            }
            throw t;
        }
    }

    /** {@link AddressSpace#unmap}. */
    public void unmap(DmaMapping m, boolean isWrite, long accessLen) {
        Objects.requireNonNull(m, "mapping");
        if (m.addressSpace() != as) {
            throw new IllegalArgumentException("mapping=" + m + " as=" + as.name()
                    + ": unmapped through another address space than it was mapped in");
        }
        if (accessLen < 0 || accessLen > m.length()) {
            throw new IllegalArgumentException("accessLen=" + accessLen + " length=" + m.length()
                    + ": accessLen must be between 0 and the mapped length");
        }
        if (!CORE.markUnmapped(m)) {
            throw new IllegalStateException("mapping=" + m + ": already unmapped");
        }
        if (!m.isBounce()) {
            try {
                if (isWrite && accessLen > 0) {
                    DirectWrites.invalidateAndSetDirty(CORE.region(m), CORE.regionOffset(m), accessLen);
                }
            } finally {
                if (CORE.region(m).ramBlock() instanceof AbstractRamBlock b) {
                    CORE.release(b, as.system().rcu()); // the reference map took: the memory may now be freed
                }
            }
            return;
        }
        try {
            if (isWrite) {
                // Through the view current now, as QEMU's address_space_write does at unmap time.
                final AddressSpaceDispatch d = CORE.dispatch(as); // one acquire load: one snapshot for the copy
                AccessPath.write(as, d, m.address(), CORE.attrs(m), CORE.bounce(m), null, 0, accessLen);
            }
        } finally {
            release(m.length());
            notifyClients();
        }
    }

    /**
     * QEMU's {@code flatview_extend_translation} followed by {@code qemu_ram_ptr_length}: starting in the direct
     * section {@code s} at guest-physical {@code addr}, how many of the {@code len} bytes (unsigned, at least 1)
     * continue in the same region at consecutive region offsets, whatever sections they cross, cut at the end of
     * the region's RAM block. At least 1.
     */
    public static long directRun(AddressSpaceDispatch d, int s, long addr, long len) {
        FlatRange fr = d.flatRange(s);
        MemoryRegion mr = fr.region();
        long xlat = d.offsetInRegion(s, addr);
        long done = d.clipToSection(s, addr, len);
        while (Long.compareUnsigned(done, len) < 0) {
            long next = addr + done;
            if (next == 0) {
                break; // the last section ended at 2^64 - 1; nothing continues it
            }
            int s2 = d.sectionIndex(next);
            FlatRange next2 = d.flatRange(s2);
            // The same region at the next region offset: QEMU's test, which also makes it direct in the same way.
            if (next2 == null || next2.region() != mr || d.offsetInRegion(s2, next) != xlat + done) {
                break;
            }
            done += d.clipToSection(s2, next, len - done);
        }
        long inBlock = mr.ramBlock().hostSegment().byteSize() - xlat;
        return Long.compareUnsigned(done, inBlock) <= 0 ? done : inBlock;
    }

    /** QEMU's {@code memory_access_is_direct}, as the access path decides it. */
    public static boolean isDirect(FlatRange fr, boolean isWrite) {
        return isWrite ? DirectAccess.regionWritesDirect(fr) : DirectAccess.readsDirect(fr);
    }

    // ---------------------------------------------------------------- access_valid

    /**
     * QEMU's {@code flatview_access_valid}: walks {@code len} bytes (unsigned) from guest-physical {@code addr} as an
     * access would split them. A direct piece runs to its section's end and is always valid; any other piece is as
     * large as QEMU's {@code memory_access_size} allows and must pass the region's {@code valid} rules
     * ({@link MmioDispatch#accessValid}). A hole has QEMU's unassigned ops, which accept nothing.
     */
    public static boolean accessValid(AddressSpaceDispatch d, long addr, long len, boolean isWrite, MemTxAttrs attrs) {
        long a = addr;
        long left = len;
        while (left != 0) {
            int s = d.sectionIndex(a);
            FlatRange fr = d.flatRange(s);
            long l;
            if (fr != null && fr.region().kind() == MemoryRegion.Kind.IOMMU) {
                // QEMU translates through the IOMMU; a refusal lands on unassigned memory, which accepts nothing.
                AccessPath.Hop hop = AccessPath.iommuHop(fr, a, left, isWrite, attrs);
                if (hop == null) {
                    return false;
                }
                MmioDispatch.IoContext ctx = AccessPath.enterIommu(a);
                try {
                    if (!accessValid(hop.target(), hop.addr(), hop.len(), isWrite, attrs)) {
                        return false;
                    }
                } finally {
                    ctx.iommuHops--;
                }
                l = hop.len();
            } else if (fr != null && isDirect(fr, isWrite)) {
                l = d.clipToSection(s, a, left);
            } else {
                MemoryRegionOps ops = AccessPath.opsOf(fr);
                // QEMU sizes this piece by the alignment of the guest-physical address, not of the region offset
                // (unlike its read and write loops); kept, since it decides which accesses are checked.
                l = MmioDispatch.accessSize(ops, Long.compareUnsigned(left, 8) <= 0 ? left : 8, a);
                long xlat = fr == null ? a : d.offsetInRegion(s, a);
                if (!MmioDispatch.accessValid(ops, xlat, (int) l, isWrite, attrs)) {
                    return false;
                }
            }
            left -= l;
            a += l;
        }
        return true;
    }

    // ---------------------------------------------------------------- budget

    public long maxBounceBufferSize() {
        return maxBounceBufferSize;
    }

    public long bounceBufferSize() {
        return (long) BOUNCE_BUFFER_SIZE.getVolatile(this);
    }

    public void setMaxBounceBufferSize(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("maxBounceBufferSize=" + bytes + ": must be at least 0");
        }
        maxBounceBufferSize = bytes; // volatile store: the next reserve on any thread sees the new limit
        if (bounceBufferSize() < bytes) {
            notifyClients(); // raised above what is in use: waiting clients may now succeed
        }
    }

    /**
     * Takes up to {@code want} bytes (unsigned) of the budget: {@code min(want, max - inUse)}, 0 when nothing is
     * left. Never takes the counter above the limit read in the same attempt.
     */
    private long reserve(long want) {
        long used = (long) BOUNCE_BUFFER_SIZE.getVolatile(this);
        for (;;) {
            long room = maxBounceBufferSize - used; // negative when the limit was lowered below what is in use
            if (room <= 0) {
                return 0;
            }
            long alloc = Long.compareUnsigned(want, room) < 0 ? want : room;
            // CAS: succeeds only if nobody changed the counter since it was read, so used + alloc <= max held at
            // the moment of the store; on failure retry from the value the winner left.
            long witness = (long) BOUNCE_BUFFER_SIZE.compareAndExchange(this, used, used + alloc);
            if (witness == used) {
                return alloc;
            }
            used = witness;
        }
    }

    private void release(long bytes) {
        // Atomic add (a full fence): the budget is back before the map clients are looked at in notifyClients, which
        // pairs with registerMapClient reading the counter after adding its client under the same lock.
        long before = (long) BOUNCE_BUFFER_SIZE.getAndAdd(this, -bytes);
        assert before >= bytes : "bounceBufferSize=" + before + " released=" + bytes;
    }

    // ---------------------------------------------------------------- map clients

    /**
     * QEMU's {@code address_space_register_map_client}: {@code client} is run once, the next time budget is freed,
     * or at once if some is free now.
     */
    public void registerMapClient(Runnable client) {
        Objects.requireNonNull(client, "client");
        Runnable[] ready;
        synchronized (clientsLock) {
            clients.add(client);
            // Read after the add, under the lock: an unmap that released budget before this read is seen here; one
            // that releases after it takes the lock later and finds the client. No wake-up is lost.
            ready = bounceBufferSize() < maxBounceBufferSize ? drainLocked() : NO_CLIENTS;
        }
        run(ready);
    }

    /** QEMU's {@code address_space_unregister_map_client}: forgets one registration of {@code client}. */
    public boolean unregisterMapClient(Runnable client) {
        synchronized (clientsLock) {
            for (int i = 0; i < clients.size(); i++) {
                if (clients.get(i) == client) {
                    clients.remove(i);
                    return true;
                }
            }
            return false;
        }
    }

    /** QEMU's {@code address_space_notify_map_clients}: every registered client is removed, then run. */
    private void notifyClients() {
        Runnable[] ready;
        synchronized (clientsLock) {
            ready = clients.isEmpty() ? NO_CLIENTS : drainLocked();
        }
        run(ready);
    }

    private Runnable[] drainLocked() {
        Runnable[] all = clients.toArray(NO_CLIENTS);
        clients.clear();
        return all;
    }

    /** Runs every client, outside the lock so that a client may map or register again; rethrows the first failure. */
    private static void run(Runnable[] ready) {
        RuntimeException failure = null;
        for (Runnable r : ready) {
            try {
                r.run();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
