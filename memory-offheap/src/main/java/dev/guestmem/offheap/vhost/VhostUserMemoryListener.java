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
 * left out, as QEMU leaves it out. Regions are not merged, so a table holds one entry per RAM section; a map with more
 * RAM sections than the backend takes (its GET_MAX_MEM_SLOTS, or the 8 regions one SET_MEM_TABLE carries) is refused
 * the same way.
 *
 * <p>Threading: callbacks run on the writer's thread with the topology lock held, and so send their requests there,
 * as QEMU's vhost does under the BQL: a backend that does not answer holds the commit for at most the connection's
 * timeout, and is then disconnected. {@link #userAddress} and {@link #regions} may be called from any thread.
 */
public final class VhostUserMemoryListener implements MemoryListener {
    private final VhostUserFrontend frontend;
    private final AddressSpace as;
    private final boolean memSlots;
    /** The sections of the current view by guest-physical address; writer only. */
    private final TreeMap<Long, VhostUserMemoryRegion> sections = new TreeMap<>(Long::compareUnsigned);
    /** Unshareable RAM seen since the last commit; writer only. */
    private final List<String> refused = new ArrayList<>();
    /** How many regions the backend takes at once. */
    private final long maxRegions;
    /** What the backend was last told; replaced whole by the writer, read by any thread. */
    private volatile List<VhostUserMemoryRegion> sent = List.of();
    /** The shared dirty log, once {@link #startLogging}; written by the caller, read by the writer. */
    private volatile VhostUserDirtyLog log;
    /**
     * True while {@link #attach} replays the map (problems are thrown to its caller, not sent) and after
     * {@link #detach}: commits then send nothing. Volatile: written outside the topology lock, read by writers.
     */
    private volatile boolean silent;

    private VhostUserMemoryListener(VhostUserFrontend frontend, AddressSpace as) {
        this.frontend = frontend;
        this.as = as;
        this.memSlots = (frontend.protocolFeatures() & VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS) != 0;
        // QEMU's vhost_backend_memslots_limit: what the backend says with CONFIGURE_MEM_SLOTS, else what one
        // SET_MEM_TABLE message can carry.
        this.maxRegions = memSlots ? frontend.getMaxMemSlots() : VhostUserFrontend.MEM_TABLE_MAX_REGIONS;
    }

    /** Why the map's RAM cannot be sent (unshareable RAM, or more regions than the backend takes), or null. */
    private String refusal() {
        if (!refused.isEmpty()) {
            return refused.getFirst();
        }
        if (sections.size() > maxRegions) {
            return "socket=" + frontend.socket() + " regions=" + sections.size() + " max=" + maxRegions
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
        String why = l.refusal();
        if (why != null) {
            as.unregisterListener(l);
            throw new IllegalArgumentException(why);
        }
        try {
            l.send(l.table());
        } catch (RuntimeException e) {
            as.unregisterListener(l);
            throw e;
        }
        l.silent = false;
        return l;
    }

    /**
     * Hands {@code log} to the backend (SET_LOG_BASE) and merges it on every log sync of the address space from then
     * on ({@link #logSync}). The backend logs once VHOST_F_LOG_ALL is among the features set, and its used-ring
     * writes once the vring's address carries {@link VhostUserFrontend#VRING_F_LOG}. The log stays the caller's.
     */
    public void startLogging(VhostUserDirtyLog log) {
        frontend.setLogBase(log.fd(), log.size(), 0);
        this.log = log;
    }

    /**
     * QEMU's {@code vhost_log_sync}: the pages of {@code section} that the backend logged become dirty in guestmem's
     * bitmaps (MIGRATION among them) before a snapshot or a global sync reads them.
     */
    @Override
    public void logSync(MemoryRegionSection section) {
        final VhostUserDirtyLog current = log;
        if (current != null && section.region().isRam()) {
            current.syncInto(section);
        }
    }

    /** Stops following the map (the backend keeps the table it has: the listener's goodbye is not sent). */
    public void detach() {
        silent = true;
        as.unregisterListener(this);
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
        sections.put(section.offsetWithinAddressSpace(), new VhostUserMemoryRegion(section.offsetWithinAddressSpace(),
                section.sizeMinusOne() + 1, block.hostSegment().address() + offset, block.fdOffset() + offset,
                block.fd(), mr.name()));
    }

    @Override
    public void regionDel(MemoryRegionSection section) {
        VhostUserMemoryRegion r = sections.get(section.offsetWithinAddressSpace());
        if (r != null && r.size() == section.sizeMinusOne() + 1 && r.name().equals(section.region().name())) {
            sections.remove(section.offsetWithinAddressSpace());
        }
    }

    @Override
    public void commit() {
        if (silent) {
            return;
        }
        String why = refusal();
        if (why != null) {
            refused.clear();
            frontend.abandon(why);
            return;
        }
        List<VhostUserMemoryRegion> table = table();
        if (table.equals(sent) || !frontend.isOpen()) {
            return;
        }
        try {
            send(table);
        } catch (VhostUserException e) {
            // Already logged and the connection closed; a listener must not throw into the writer's commit.
            return;
        }
    }

    private List<VhostUserMemoryRegion> table() {
        return List.copyOf(sections.values());
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
