package dev.guestmem.offheap.vhost;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryListener;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionSection;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamFlag;
import dev.guestmem.memory.U64;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * The memory table of a vhost-user backend, kept in step with an address space's map, as QEMU's vhost layer does
 * with its {@code MemoryListener} ({@code hw/virtio/vhost.c}): the RAM sections of the address space are the table's
 * regions (guest-physical address, size, this process's address, offset in the block's file, the block's fd). At each
 * commit that changed them the backend is told: with {@link VhostUserFrontend#PROTOCOL_F_CONFIGURE_MEM_SLOTS},
 * REM_MEM_REG for each region gone and ADD_MEM_REG for each new one; otherwise one SET_MEM_TABLE.
 *
 * <p>Only RAM that another process can map is sent: a block with an fd, mapped shared ({@code memory-backend-memfd},
 * a shared file). RAM without one (Arena RAM, anonymous or private mappings) is refused rather than left out: at
 * {@link #attach} with an {@link IllegalArgumentException} naming the region, and when a later change maps such RAM by
 * closing the connection with that reason (a backend that cannot see all of the guest's RAM cannot serve it). ROM is
 * left out, as QEMU leaves it out.
 *
 * <p>Neighbouring sections that continue one mapping (contiguous in guest-physical address, in this process's address
 * and in the offset of the same fd, e.g. low RAM and the read-only PAM-style aliases of it next to it) are one region
 * of the table, as QEMU's {@code vhost_region_add_section} merges them; sections of unmergeable regions
 * ({@link MemoryRegion#setUnmergeable}) never are. A map with more regions than the backend takes (its
 * GET_MAX_MEM_SLOTS, or the 8 regions one SET_MEM_TABLE carries) is refused the same way as unshareable RAM.
 *
 * <p>The shared dirty log ({@link #startLogging}) is this listener's and follows the map, as QEMU's {@code vhost_log}
 * is resized at a commit: before a table that reaches higher guest addresses is sent, a bigger log replaces it
 * (SET_LOG_BASE), and after a table that reaches less far, a smaller one; the bits of the log replaced are merged
 * into guestmem's bitmaps for the sections still mapped, so no page the backend logged is lost by a resize.
 *
 * <p>Threading: callbacks run on the writer's thread with the topology lock held, and so send their requests there,
 * as QEMU's vhost does under the BQL: a backend that does not answer holds the commit for at most the connection's
 * timeout, and is then disconnected. The log is guarded by this object's lock, taken inside the topology lock (a
 * commit) or alone ({@link #startLogging}, {@link #dirtyLog}, {@link #detach}). {@link #userAddress} and
 * {@link #regions} may be called from any thread.
 */
public final class VhostUserMemoryListener implements MemoryListener {
    private final VhostUserFrontend frontend;
    private final AddressSpace as;
    private final boolean memSlots;
    /** The shareable RAM sections of the current view by guest-physical address, unmerged; writer only. */
    private final TreeMap<Long, Section> sections = new TreeMap<>(Long::compareUnsigned);
    /** Unshareable RAM seen since the last commit; writer only. */
    private final List<String> refused = new ArrayList<>();
    /** How many regions the backend takes at once. */
    private final long maxRegions;
    /** What the backend was last told; replaced whole by the writer, read by any thread. */
    private volatile List<VhostUserMemoryRegion> sent = List.of();
    /** The shared dirty log, once {@link #startLogging}; guarded by this. */
    private VhostUserDirtyLog log;
    /**
     * True while {@link #attach} replays the map (problems are thrown to its caller, not sent) and after
     * {@link #detach}: commits then send nothing. Volatile: written outside the topology lock, read by writers.
     */
    private volatile boolean silent;

    /** One RAM section as the table would describe it, and the section itself (for merging log bits into). */
    private record Section(VhostUserMemoryRegion region, MemoryRegionSection section) {
    }

    private VhostUserMemoryListener(VhostUserFrontend frontend, AddressSpace as) {
        this.frontend = frontend;
        this.as = as;
        this.memSlots = (frontend.protocolFeatures() & VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS) != 0;
        // QEMU's vhost_backend_memslots_limit: what the backend says with CONFIGURE_MEM_SLOTS, else what one
        // SET_MEM_TABLE message can carry.
        this.maxRegions = memSlots ? frontend.getMaxMemSlots() : VhostUserFrontend.MEM_TABLE_MAX_REGIONS;
    }

    /** Why the map's RAM cannot be sent (unshareable RAM, or more regions than the backend takes), or null. */
    private String refusal(List<VhostUserMemoryRegion> table) {
        if (!refused.isEmpty()) {
            return refused.getFirst();
        }
        if (table.size() > maxRegions) {
            return "socket=" + frontend.socket() + " regions=" + table.size() + " max=" + maxRegions
                    + ": the map has more RAM regions than the vhost-user backend takes"
                    + (memSlots ? " (GET_MAX_MEM_SLOTS)" : " in one SET_MEM_TABLE");
        }
        return null;
    }

    /**
     * Registers a listener on {@code as} that sends its RAM to {@code frontend}'s backend now and follows the map from
     * then on. Call it after feature negotiation, as QEMU's vhost_dev_start sends the table after SET_FEATURES.
     *
     * @throws IllegalArgumentException if some RAM of the map cannot be shared, or the map has more RAM regions than
     *                                  the backend takes (nothing is sent then)
     * @throws VhostUserException       if the backend did not take the table (the connection is then closed)
     */
    public static VhostUserMemoryListener attach(VhostUserFrontend frontend, AddressSpace as) {
        VhostUserMemoryListener l = new VhostUserMemoryListener(frontend, as);
        // While attaching, commits (of the replay, and of an unregistering on failure) send nothing.
        l.silent = true;
        as.registerListener(l);
        List<VhostUserMemoryRegion> table = l.table();
        String why = l.refusal(table);
        if (why != null) {
            as.unregisterListener(l);
            throw new IllegalArgumentException(why);
        }
        try {
            l.send(table);
        } catch (RuntimeException e) {
            as.unregisterListener(l);
            throw e;
        }
        l.silent = false;
        return l;
    }

    /**
     * Makes the shared dirty log, sized to the guest-physical addresses the table reaches, hands it to the backend
     * (SET_LOG_BASE) and from then on merges it on every log sync of the address space ({@link #logSync}) and resizes
     * it as the map changes. The backend logs once VHOST_F_LOG_ALL is among the features set, and its used-ring writes
     * once the vring's address carries {@link VhostUserFrontend#VRING_F_LOG}. Idempotent; the log is closed by
     * {@link #detach}.
     *
     * @throws VhostUserException if the backend did not take the log (the connection is then closed)
     */
    public synchronized void startLogging() {
        if (log == null) {
            VhostUserDirtyLog fresh = VhostUserDirtyLog.create(reach(sent));
            try {
                frontend.setLogBase(fresh.fd(), fresh.size(), 0);
            } catch (RuntimeException e) {
                fresh.close();
                throw e;
            }
            log = fresh;
        }
    }

    /** The shared dirty log now in use (it is replaced when the map grows or shrinks), or null before logging. */
    public synchronized VhostUserDirtyLog dirtyLog() {
        return log;
    }

    /**
     * QEMU's {@code vhost_log_sync}: the pages of {@code section} that the backend logged become dirty in guestmem's
     * bitmaps (MIGRATION among them) before a snapshot or a global sync reads them.
     */
    @Override
    public synchronized void logSync(MemoryRegionSection section) {
        if (log != null && section.region().isRam()) {
            log.syncInto(section);
        }
    }

    /** Guest-physical bytes from 0 that a log must cover for {@code table}: up to its highest byte, at least 1. */
    private static long reach(List<VhostUserMemoryRegion> table) {
        long end = 1;
        for (VhostUserMemoryRegion r : table) {
            end = U64.max(end, r.guestAddress() + r.size());
        }
        return end;
    }

    /**
     * Replaces the log with one sized for {@code table} when {@code grow} and the table reaches past it, or when not
     * {@code grow} and it reaches less far (QEMU's {@code vhost_dev_log_resize}). The backend is told first; the old
     * log's bits are then merged, so what it logged up to its switch is kept. Lock held.
     *
     * @return false if the connection was closed on the way
     */
    private boolean resizeLog(List<VhostUserMemoryRegion> table, boolean grow) {
        VhostUserDirtyLog old = log;
        if (old == null) {
            return true;
        }
        long need = reach(table);
        long size = VhostUserDirtyLog.sizeFor(need);
        if (grow ? size <= old.size() : size >= old.size()) {
            return true;
        }
        VhostUserDirtyLog fresh;
        try {
            fresh = VhostUserDirtyLog.create(need);
        } catch (RuntimeException e) {
            frontend.abandon("log=" + U64.hex(size) + ": no dirty log for guest addresses below " + U64.hex(need)
                    + ": " + e.getMessage());
            return false;
        }
        try {
            frontend.setLogBase(fresh.fd(), fresh.size(), 0);
        } catch (VhostUserException e) {
            fresh.close();   // already logged and the connection closed
            return false;
        }
        log = fresh;
        for (Section s : sections.values()) {
            old.syncInto(s.section());
        }
        old.close();
        return true;
    }

    /**
     * Stops following the map (the backend keeps the table it has: the listener's goodbye is not sent) and closes the
     * dirty log. Call it after the backend stopped logging or was disconnected.
     */
    public void detach() {
        silent = true;
        // Not under this lock: unregistering takes the topology lock, inside which a commit takes this one.
        as.unregisterListener(this);
        synchronized (this) {
            if (log != null) {
                log.close();
                log = null;
            }
        }
    }

    /** The regions the backend was last told about, in guest-physical address order. */
    public List<VhostUserMemoryRegion> regions() {
        return sent;
    }

    /**
     * This process's address of guest-physical bytes {@code [guestAddress, guestAddress + size)}, which must lie in one
     * region of the table: what SET_VRING_ADDR sends for a ring in guest RAM.
     *
     * @throws IllegalArgumentException if the bytes are not in one shared region
     */
    public long userAddress(long guestAddress, long size) {
        for (VhostUserMemoryRegion r : sent) {
            if (r.contains(guestAddress, size)) {
                return r.userAddress() + (guestAddress - r.guestAddress());
            }
        }
        throw new IllegalArgumentException("guestAddress=" + U64.hex(guestAddress) + " size=" + U64.hex(size)
                + ": not inside one region of the vhost-user memory table");
    }

    @Override
    public void regionAdd(MemoryRegionSection section) {
        MemoryRegion mr = section.region();
        if (!mr.isRam() || mr.isRom()) {
            return;
        }
        RamBlock block = mr.ramBlock();
        if (block == null || block.fd() < 0 || !block.flags().contains(RamFlag.SHARED)) {
            refused.add("region=" + mr.name() + " guest=" + U64.hex(section.offsetWithinAddressSpace())
                    + ": RAM without a shared fd (Arena RAM or a private mapping) cannot be shared with a vhost-user"
                    + " backend; use HostMemoryBackend.memfd() or a shared file");
            return;
        }
        long offset = section.offsetWithinRegion();
        sections.put(section.offsetWithinAddressSpace(), new Section(new VhostUserMemoryRegion(
                section.offsetWithinAddressSpace(), section.sizeMinusOne() + 1, block.hostSegment().address() + offset,
                block.fdOffset() + offset, block.fd(), mr.name()), section));
    }

    @Override
    public void regionDel(MemoryRegionSection section) {
        Section s = sections.get(section.offsetWithinAddressSpace());
        VhostUserMemoryRegion r = s == null ? null : s.region();
        if (r != null && r.size() == section.sizeMinusOne() + 1 && r.name().equals(section.region().name())) {
            sections.remove(section.offsetWithinAddressSpace());
        }
    }

    @Override
    public synchronized void commit() {
        if (silent) {
            return;
        }
        List<VhostUserMemoryRegion> table = table();
        String why = refusal(table);
        if (why != null) {
            refused.clear();
            frontend.abandon(why);
            return;
        }
        if (table.equals(sent) || !frontend.isOpen()) {
            return;
        }
        try {
            // The log covers the new table before the backend can write there, and shrinks only once it is gone.
            if (resizeLog(table, true)) {
                send(table);
                resizeLog(table, false);
            }
        } catch (VhostUserException e) {
            // Already logged and the connection closed; a listener must not throw into the writer's commit.
            return;
        }
    }

    /** The table for the current sections: neighbours that continue one mapping merged, in guest address order. */
    private List<VhostUserMemoryRegion> table() {
        List<VhostUserMemoryRegion> table = new ArrayList<>();
        Section prev = null;
        for (Section s : sections.values()) {
            if (prev != null && continues(prev, s)) {
                VhostUserMemoryRegion a = table.removeLast();
                VhostUserMemoryRegion b = s.region();
                table.add(new VhostUserMemoryRegion(a.guestAddress(), a.size() + b.size(), a.userAddress(),
                        a.mmapOffset(), a.fd(), a.name().equals(b.name()) ? a.name() : a.name() + "+" + b.name()));
            } else {
                table.add(s.region());
            }
            prev = s;
        }
        return List.copyOf(table);
    }

    /** Whether {@code b} continues {@code a} in guest address, this process's address and the same fd's offset. */
    private static boolean continues(Section a, Section b) {
        VhostUserMemoryRegion x = a.region();
        VhostUserMemoryRegion y = b.region();
        return !a.section().unmergeable() && !b.section().unmergeable()
                && x.guestAddress() + x.size() == y.guestAddress() && y.guestAddress() != 0
                && x.fd() == y.fd() && x.mmapOffset() + x.size() == y.mmapOffset()
                && x.userAddress() + x.size() == y.userAddress();
    }

    private void send(List<VhostUserMemoryRegion> table) {
        if (!memSlots) {
            frontend.setMemTable(table);
            sent = table;
            return;
        }
        List<VhostUserMemoryRegion> now = new ArrayList<>(sent);
        for (VhostUserMemoryRegion r : sent) {
            if (!table.contains(r)) {
                frontend.remMemReg(r);
                now.remove(r);
                sent = List.copyOf(now);
            }
        }
        for (VhostUserMemoryRegion r : table) {
            if (!now.contains(r)) {
                frontend.addMemReg(r);
                now.add(r);
                sent = sorted(now);
            }
        }
        sent = table;
    }

    private static List<VhostUserMemoryRegion> sorted(List<VhostUserMemoryRegion> regions) {
        TreeMap<Long, VhostUserMemoryRegion> m = new TreeMap<>(Long::compareUnsigned);
        for (VhostUserMemoryRegion r : regions) {
            m.put(r.guestAddress(), r);
        }
        return List.copyOf(m.values());
    }

    @Override
    public String name() {
        return "vhost-user " + frontend.socket();
    }
}
