package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.AccessPath;
import dev.guestmem.memory.internal.access.ValueLayouts;

import dev.guestmem.memory.internal.dirty.DirtyEpoch;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.dispatch.RangeAccess;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.locks.LockSupport;

import static dev.guestmem.memory.internal.access.ValueLayouts.U16_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U16_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U32_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U32_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U64_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U64_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U8;

/**
 * The fast software TLB of a vCPU thread, as QEMU's {@code CPUTLBEntry} ({@code accel/tcg/cputlb.c}): each entry is a
 * tag and a host-address addend, and a hit is a tag compare and one access through a single segment that spans the
 * whole host address space, with no per-access view check and no per-access segment. Addresses are guest-physical
 * addresses of one {@link AddressSpace}; the methods and their results are {@link SoftTlb}'s, under the same QEMU
 * names. What makes a hit safe is not FFM's per-access checks but the discipline of QEMU's {@code cpu_exec}, which the
 * caller follows:
 *
 * <h2>The discipline</h2>
 * <ul>
 *   <li>The TLB belongs to one thread, registered with the {@link MemorySystem#rcu() system's RCU domain}. The thread
 *   uses the TLB only between {@link #begin()} and {@link #end()}: {@code begin} enters a read-side section of its
 *   {@link Rcu.Reader}, {@code end} empties the TLB and leaves the section. So no entry outlives the section, and the
 *   memory of every entry stays allocated while the section lasts (a freed region's RAM waits for a grace period).</li>
 *   <li>The emulator calls {@link #checkpoint()} at points of its choosing, between translated blocks or every few
 *   thousand instructions, as QEMU's vCPUs see TLB flushes at their next exit. A check point is a quiescent state:
 *   the section ends and begins again, so a vCPU that runs for hours holds up a free for one check interval at most.
 *   After the section began again the TLB loads the address space's view; if it is not the view its entries were
 *   filled from, or a flush was {@link #requestFlush() requested}, the TLB empties itself first.</li>
 *   <li>Between two check points every access uses the map that was current at the first of them: a map change, and a
 *   flush request from another thread, take effect at the next check point, not in the middle of a block.
 *   {@link #flushAllSynced(MemorySystem)} (QEMU's {@code tlb_flush_all_cpus_synced}) is for a writer that must wait
 *   until every vCPU has left the old map.</li>
 * </ul>
 * A use outside {@code begin}/{@code end} misses (the TLB is empty) and its slow path throws
 * {@link IllegalStateException}. Under {@code -ea} every hit is also checked: the thread is inside the TLB's section,
 * and the host address lies inside the live segment of the {@link RamBlock} the entry was filled from.
 *
 * <h2>Entries and hits</h2>
 * Direct-mapped, as {@link SoftTlb}: guest page {@code p} (pages of the address space's {@link AddressSpace#pageBits()
 * page size}) lives in entry {@code p mod entries}, with a read, a write and a code part (split I-TLB and D-TLB). The
 * host address of a hit is {@code addr + addend}. An access of {@code size} bytes hits only when it is naturally
 * aligned (so it stays in one page) and the page's entry part holds the page; a page is cached only when one flat range
 * covers all of it with memory read directly that cannot fault ({@link SoftTlb}'s rules), whose segment is native
 * (RAM of a heap segment always takes the slow path). So a hit cannot leave its {@link RamBlock}. Everything else (an
 * unaligned access, a page-crossing one, MMIO, holes, IOMMUs, faulting RAM) goes to an out-of-line slow path that
 * uses the address space's access path on the view of the last check point, as {@link SoftTlb}'s slow path does on
 * the current one; the results are {@link SoftTlb}'s sticky {@link #takeResult()}. A CPU store to RAM read-only through
 * this mapping is discarded with {@link MemTxResult#DECODE_ERROR} (QEMU's {@code TLB_DISCARD_WRITE}).
 *
 * <h2>Size</h2>
 * The TLB starts with {@code minEntries} entries and resizes itself between {@code minEntries} and {@code maxEntries}
 * at check points, from its use as QEMU's {@code tlb_mmu_resize_locked} does: a <em>window</em> ends when the TLB has
 * been refilled once over (misses since the window began reach its size), or at a flush. If the window's highest use
 * (entries holding a page) was above 70 % the size doubles; if at a flush it was below 30 %, the size shrinks to the
 * power of two that gives a use near 70 %. A TLB whose working set fits has few misses and is left alone. A resize
 * empties the TLB. {@code minEntries == maxEntries} gives a fixed size.
 *
 * <h2>Dirty memory and translated code</h2>
 * As {@link SoftTlb}: stores to pages that VGA or MIGRATION log go fast once the page is marked (QEMU's
 * {@code TLB_NOTDIRTY}: the write entry starts {@code NOTDIRTY} unless the page is already marked for every such
 * client, and then the first store marks the page and drops the flag),
 * and every take of dirty bits re-arms them through the dirty epoch, which this TLB's own thread reads after each fast
 * store to such a page (and only there: a store hit to other RAM is one compare and the store) and honours at once: no other thread writes this TLB's entries for a take, and the re-arm needs no check
 * point (see {@link SoftTlb}'s "Dirty memory and translated code"). Pages that only CODE logs are written fast until
 * {@link CodeProtection#protect} marks their write tags {@code NOTDIRTY}, after which stores take the slow path, store and are reported. A store that begins after
 * {@code protect} returned (with a happens-before edge) is reported, through every TLB of the system: {@code protect}
 * marks this TLB's write entries under its entry lock; the hit path reads the tags plainly and the happens-before
 * edge carries the mark to it.
 *
 * <p>Threading: one owner thread for everything but {@link #requestFlush()}, {@link #flushAllSynced} and the
 * {@link CodeProtection} visits, which any thread may make. Any number of TLBs may share an address space.
 */
public final class HostTlb {
    // Implementation note (one unbounded segment). A hit is HOST.get(layout, addr + addend) on a static final segment
    // over the whole address space (base 0, size Long.MAX_VALUE, the global scope), so the JIT folds the segment: what
    // remains of FFM's checks is a bounds compare of the offset, which a non-negative host address always passes, and
    // no liveness check. The alternative, one bounded window (a reserved mapping holding every block, each block a
    // slice of it, so that even a stale entry could only reach guest RAM), was measured in the same JMH run
    // (HostTlbBenchmark, README): the hand-written TLB over a static final window of 64 MiB took 8.6 / 6.1 ns per
    // load / store at 1 MiB against 7.9 / 4.8 ns over the unbounded segment, and 111 / 41 ns against 75 / 33 ns at
    // 64 MiB: never faster, sometimes slower (the window's bounds compare is against a real size). It would also need
    // every block placed inside one reservation, which anonymous Arena RAM (memory-core's default) and RAM from a
    // user's segment cannot be. So: the unbounded segment. It needs native access for this module (a restricted
    // method, called once when the first HostTlb is made); the -ea check of every hit stands in for FFM's bounds and
    // liveness checks in the tests.
    //
    // Implementation note (why checkpoint may keep entries). The section ends and begins again, then the view is loaded
    // (after the reader's lock, a volatile store: see Rcu.Reader.lock). If it is still the view the entries came from,
    // every block they point to is mapped by the current view, and a block is freed only after a grace period that
    // begins after a view without it was published; such a grace period waits for the section just begun, or the
    // load above would have seen that newer view. So keeping the entries is the same as emptying them and refilling
    // from the same view, which is what the rule "emptied whenever the section ends" asks for.
    //
    // Implementation note (write entries). The write part, its NOTDIRTY and LOGGED tag forms, the bookkeeping of
    // dirty memory and CODE and the entry lock are TlbWrites', shared with SoftTlb (see its class comment and SoftTlb's
    // "ordering of the write entries"). This TLB keeps its own fields write and writeBlocks pointing at TlbWrites'
    // arrays, so that a store hit reads them as it reads the read part; only allocate replaces them, on the owner's
    // thread. An unlogged store hit is one compare and the store; a store hit to a logged page, marked, misses that
    // compare and hits the LOGGED form inline next, then reads the dirty epoch (TlbWrites.afterLoggedStore).
    //
    // Implementation note (one miss method per access). Each data load and store calls a miss method of its own
    // (ldqLeMiss, stqLeMiss, ...) whose size and byte order are constants, and which refills from RAM and makes the
    // access itself in the common case (refillAligned), leaving everything else to the general loadSlow/storeSlow. A
    // caller's compiled code keeps such a method out of line, since a call site that is not frequent is inlined only
    // up to MaxInlineSize (35 bytes; each is above it, which HostTlbTest checks), and the method's own compiled code
    // inlines refillAligned and refillRam with the constants folded. Through one general slow path for every size the
    // miss paid for the size's switch, the code-or-data choice and the alignment test at run time: about 1 ns more a
    // miss, a load's and a store's alike (README, "A miss method per access").

    /** Entries a TLB made with {@link #HostTlb(AddressSpace, Rcu.Reader)} starts with. */
    public static final int DEFAULT_MIN_ENTRIES = 1024;
    /** Entries a TLB made with {@link #HostTlb(AddressSpace, Rcu.Reader)} grows to at most (256 MiB of 4 KiB pages). */
    public static final int DEFAULT_MAX_ENTRIES = 1 << 16;
    /** The most entries a TLB may have (QEMU's {@code CPU_TLB_DYN_MAX_BITS} is 22 too). */
    public static final int MAX_ENTRIES = 1 << 22;

    /** The tag of an entry part that holds no page: no access's masked address can equal it. */
    private static final long INVALID = -1L;
    private static final boolean CHECKED;
    private static final VarHandle REQUESTED;
    private static final VarHandle HONOURED;
    private static final VarHandle ACTIVE;

    static {
        CHECKED = HostTlb.class.desiredAssertionStatus(); // -ea: keep what every hit is checked against
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            REQUESTED = l.findVarHandle(HostTlb.class, "requested", long.class);
            HONOURED = l.findVarHandle(HostTlb.class, "honoured", long.class);
            ACTIVE = l.findVarHandle(HostTlb.class, "active", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final AddressSpace as;
    private final Rcu.Reader reader;
    private final Thread owner;
    private final MemTxAttrs attrs;
    private final boolean codeBigEndian;
    private final int pageBits;
    private final long pageSize;
    /** {@code ~(pageSize - 1)}: QEMU's {@code TARGET_PAGE_MASK}. */
    private final long pageMask;
    /** {@link TlbWrites#logged}, read by store hits that missed their first compare. */
    private final long logged;
    private final int minEntries;
    private final int maxEntries;
    private final CodeProtection codeProtection;

    /** Tag and host addend of each entry's parts, interleaved ({@code [2i]} tag, {@code [2i + 1]} addend). */
    private long[] read;
    private long[] code;
    /** The write parts and their dirty-memory bookkeeping; {@link #write} and {@link #writeBlocks} are its arrays. */
    private final TlbWrites writes;
    /** {@link TlbWrites#tags}: read by store hits. */
    private long[] write;
    /** Under -ea only: the block segment each entry part was filled from, which every hit is checked against. */
    private MemorySegment[] readBlocks;
    /** {@link TlbWrites#segments}: under -ea, what store hits are checked against; null otherwise. */
    private MemorySegment[] writeBlocks;
    private MemorySegment[] codeBlocks;

    /** The view the entries were filled from, loaded at the last check point; null outside a section. */
    private FlatView view;
    private AddressSpaceDispatch dispatch;
    /** Flushes requested by any thread; incremented atomically. */
    @SuppressWarnings("unused") // through REQUESTED
    private volatile long requested;
    /** The last request the owner honoured; owner writes with release, waiters read. */
    @SuppressWarnings("unused") // through HONOURED
    private volatile long honoured;
    /** Whether the owner is between begin and end; owner writes, waiters read. */
    @SuppressWarnings("unused") // through ACTIVE
    private volatile boolean active;

    private int result;
    private final int[] loadResult = new int[1];
    private long misses;
    private long flushes;
    private long resizes;
    /** Entries holding a page since the last flush (QEMU's {@code n_used_entries}). */
    private int used;
    /** The highest {@link #used} of the current resize window. */
    private int windowMaxUsed;
    /** {@link #misses} when the current resize window began. */
    private long windowStart;

    /**
     * A TLB that starts with {@link #DEFAULT_MIN_ENTRIES} entries and grows up to {@link #DEFAULT_MAX_ENTRIES}, whose
     * slow-path accesses carry {@link MemTxAttrs#UNSPECIFIED}.
     */
    public HostTlb(AddressSpace as, Rcu.Reader reader) {
        this(as, reader, MemTxAttrs.UNSPECIFIED, DEFAULT_MIN_ENTRIES, DEFAULT_MAX_ENTRIES);
    }

    /**
     * Makes a TLB for the calling thread, which must be the thread that registered {@code reader}.
     *
     * @param as         the address space whose guest-physical addresses the TLB takes
     * @param reader     the calling thread's reader of {@code as}'s system's RCU domain ({@link MemorySystem#rcu()})
     * @param attrs      the attributes of every access the TLB hands to the address space
     * @param minEntries entries to start with and to shrink to at least, a power of two from 1 to {@link #MAX_ENTRIES}
     * @param maxEntries entries to grow to at most, a power of two from {@code minEntries} to {@link #MAX_ENTRIES}
     * @throws IllegalArgumentException for sizes out of range, or a reader of another RCU domain
     * @throws IllegalCallerException   if native access is denied to this module (the unbounded segment is made with
     *                                  a restricted method)
     */
    public HostTlb(AddressSpace as, Rcu.Reader reader, MemTxAttrs attrs, int minEntries, int maxEntries) {
        checkEntries("minEntries", minEntries);
        checkEntries("maxEntries", maxEntries);
        if (maxEntries < minEntries) {
            throw new IllegalArgumentException("minEntries=" + minEntries + " maxEntries=" + maxEntries
                    + ": maxEntries must not be below minEntries");
        }
        this.as = Objects.requireNonNull(as, "as");
        this.reader = Objects.requireNonNull(reader, "reader");
        this.attrs = Objects.requireNonNull(attrs, "attrs");
        if (reader.rcu() != as.system().rcu()) {
            throw new IllegalArgumentException("reader=" + reader.rcu() + " system=" + as.system().rcu()
                    + ": the reader must belong to the address space's system's RCU domain");
        }
        if (Host.SEGMENT == null) {
            throw new IllegalCallerException("module=" + HostTlb.class.getModule()
                    + ": a HostTlb needs native access (--enable-native-access=dev.guestmem.core, or ALL-UNNAMED on"
                    + " the class path)");
        }
        this.owner = Thread.currentThread();
        this.codeBigEndian = as.system().targetBigEndian();
        this.pageBits = as.pageBits();
        this.pageSize = 1L << pageBits;
        this.pageMask = -pageSize;
        this.minEntries = minEntries;
        this.maxEntries = maxEntries;
        this.writes = new TlbWrites(as, minEntries, CHECKED);
        this.logged = writes.logged;
        allocate(minEntries);
        this.codeProtection = CodeProtection.of(as.system());
        // Last: from here on protect's visits and synced flushes may reach this TLB from other threads (the
        // registration lock orders every write above before them).
        codeProtection.register(this);
    }

    /** The segment over the whole host address space, made when the first TLB is (a restricted method). */
    private static final class Host {
        /** Null when native access is denied to this module. */
        static final MemorySegment SEGMENT = unbounded();

        private Host() {
        }

        @SuppressWarnings("restricted") // the one restricted call of this module; see "one unbounded segment"
        private static MemorySegment unbounded() {
            try {
                return MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
            } catch (IllegalCallerException e) {
                return null;
            }
        }
    }

    public AddressSpace addressSpace() {
        return as;
    }

    public MemTxAttrs attrs() {
        return attrs;
    }

    /** Entries (pages) the TLB holds now; it resizes itself between its bounds at check points. */
    public int entries() {
        return read.length >>> 1;
    }

    // ---------------------------------------------------------------- the section

    /**
     * Enters a read-side section of the reader and loads the address space's current view: from here until
     * {@link #end()}, the TLB may be used. Does not nest.
     *
     * @throws IllegalStateException if the TLB is already between begin and end, or on another thread than its owner
     */
    public void begin() {
        checkOwner("begin");
        if (view != null) {
            throw new IllegalStateException("tlb=" + this + ": begin inside a section (begin does not nest)");
        }
        // Volatile: a synced flush that reads false after posting its request does not wait for this thread, which
        // then reads the request below (the TLB is empty here anyway).
        reader.lock();
        ACTIVE.setVolatile(this, true);
        revalidate();
    }

    /**
     * Empties the TLB and leaves the section: the thread holds no entry any more, and grace periods need not wait for
     * it. Call it before the thread blocks or idles.
     *
     * @throws IllegalStateException if the TLB is not between begin and end
     */
    public void end() {
        checkOwner("end");
        checkActive("end");
        invalidateAll();
        view = null;
        dispatch = null;
        // Release: a synced flush that reads false knows the entries are gone.
        ACTIVE.setRelease(this, false);
        reader.unlock();
    }

    /**
     * A check point (QEMU's vCPU leaving {@code cpu_exec}'s inner loop): leaves the section and enters it again, a
     * quiescent state for grace periods, then honours what changed since the last one: a new view of the address
     * space or a {@link #requestFlush() flush request} empties the TLB, and the TLB may resize itself. Allocation-free.
     *
     * @throws IllegalStateException if the TLB is not between begin and end
     */
    public void checkpoint() {
        checkActive("checkpoint");
        reader.unlock();
        reader.lock();
        revalidate();
        if (misses - windowStart >= entries()) {
            resizeWindowEnds(false);
        }
    }

    /**
     * Asks the owner to empty the TLB at its next {@link #checkpoint()} (QEMU's {@code tlb_flush} queued for another
     * vCPU). Any thread; does not wait.
     */
    public void requestFlush() {
        REQUESTED.getAndAdd(this, 1L);
    }

    /**
     * QEMU's {@code tlb_flush_all_cpus_synced}: empties every {@link HostTlb} of {@code system} and returns when each
     * has done so, that is when its owner passed a check point, ended its section, or ended. The caller's own TLBs
     * are emptied at once. Afterwards no vCPU uses a translation made before the call, so a map committed before it
     * is the one every vCPU sees. Blocks; must not be called while holding a lock that a vCPU may wait for inside its
     * section (as {@link Rcu#synchronize()}).
     */
    public static void flushAllSynced(MemorySystem system) {
        final List<HostTlb> tlbs = CodeProtection.of(system).hostTlbs();
        final long[] targets = new long[tlbs.size()];
        for (int i = 0; i < targets.length; i++) {
            // Volatile read-modify-write: the owner's next check point reads this request or a later one.
            targets[i] = (long) REQUESTED.getAndAdd(tlbs.get(i), 1L) + 1;
        }
        final Thread me = Thread.currentThread();
        for (int i = 0; i < targets.length; i++) {
            final HostTlb t = tlbs.get(i);
            if (t.owner == me) {
                if (t.view != null) {
                    t.revalidate();
                }
                continue;
            }
            long parkNanos = 1_000;
            for (int spins = 0; ; spins++) {
                // Acquire: the owner's flush happened before it published the request as honoured or left.
                if ((long) HONOURED.getAcquire(t) >= targets[i] || !(boolean) ACTIVE.getAcquire(t)
                        || !t.owner.isAlive()) {
                    break;
                }
                if (spins < 128) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(parkNanos);
                    parkNanos = Math.min(parkNanos * 2, 1_000_000);
                }
            }
        }
    }

    // ---------------------------------------------------------------- loads (fast path)

    /** QEMU's {@code cpu_ldub_data}: the byte at guest-physical {@code addr}, 0..255. */
    public int ldub(long addr) {
        final long[] t = read;
        final int k = slot(addr, t);
        if (t[k] == (addr & pageMask)) {
            final long host = addr + t[k + 1];
            assert checkHit(readBlocks, k, host, 1);
            return Host.SEGMENT.get(U8, host) & 0xff;
        }
        return (int) ldubMiss(addr);
    }

    /** ldub's miss: see "one miss method per access". */
    private long ldubMiss(long addr) {
        final RangeAccess r = refillAligned(addr, 1, false);
        return r != null ? (Host.SEGMENT.get(U8, addr + r.hostAddend) & 0xffL) : loadSlow(addr, 1, false, false);
    }

    /** QEMU's {@code cpu_lduw_le_data}: 0..65535. */
    public int lduwLe(long addr) {
        final long[] t = read;
        final int k = slot(addr, t);
        if (t[k] == (addr & (pageMask | 1))) {
            final long host = addr + t[k + 1];
            assert checkHit(readBlocks, k, host, 2);
            return Host.SEGMENT.get(U16_LE, host) & 0xffff;
        }
        return (int) lduwLeMiss(addr);
    }

    /** lduwLe's miss: see "one miss method per access". */
    private long lduwLeMiss(long addr) {
        final RangeAccess r = refillAligned(addr, 2, false);
        return r != null ? Host.SEGMENT.get(U16_LE, addr + r.hostAddend) & 0xffffL
                : loadSlow(addr, 2, false, false);
    }

    /** QEMU's {@code cpu_lduw_be_data}: 0..65535. */
    public int lduwBe(long addr) {
        final long[] t = read;
        final int k = slot(addr, t);
        if (t[k] == (addr & (pageMask | 1))) {
            final long host = addr + t[k + 1];
            assert checkHit(readBlocks, k, host, 2);
            return Host.SEGMENT.get(U16_BE, host) & 0xffff;
        }
        return (int) lduwBeMiss(addr);
    }

    /** lduwBe's miss: see "one miss method per access". */
    private long lduwBeMiss(long addr) {
        final RangeAccess r = refillAligned(addr, 2, false);
        return r != null ? Host.SEGMENT.get(U16_BE, addr + r.hostAddend) & 0xffffL
                : loadSlow(addr, 2, true, false);
    }

    /** QEMU's {@code cpu_ldl_le_data}: the 32 bits as an {@code int}. */
    public int ldlLe(long addr) {
        final long[] t = read;
        final int k = slot(addr, t);
        if (t[k] == (addr & (pageMask | 3))) {
            final long host = addr + t[k + 1];
            assert checkHit(readBlocks, k, host, 4);
            return Host.SEGMENT.get(U32_LE, host);
        }
        return (int) ldlLeMiss(addr);
    }

    /** ldlLe's miss: see "one miss method per access". */
    private long ldlLeMiss(long addr) {
        final RangeAccess r = refillAligned(addr, 4, false);
        return r != null ? Host.SEGMENT.get(U32_LE, addr + r.hostAddend) : loadSlow(addr, 4, false, false);
    }

    /** QEMU's {@code cpu_ldl_be_data}. */
    public int ldlBe(long addr) {
        final long[] t = read;
        final int k = slot(addr, t);
        if (t[k] == (addr & (pageMask | 3))) {
            final long host = addr + t[k + 1];
            assert checkHit(readBlocks, k, host, 4);
            return Host.SEGMENT.get(U32_BE, host);
        }
        return (int) ldlBeMiss(addr);
    }

    /** ldlBe's miss: see "one miss method per access". */
    private long ldlBeMiss(long addr) {
        final RangeAccess r = refillAligned(addr, 4, false);
        return r != null ? Host.SEGMENT.get(U32_BE, addr + r.hostAddend) : loadSlow(addr, 4, true, false);
    }

    /** QEMU's {@code cpu_ldq_le_data}. */
    public long ldqLe(long addr) {
        final long[] t = read;
        final int k = slot(addr, t);
        if (t[k] == (addr & (pageMask | 7))) {
            final long host = addr + t[k + 1];
            assert checkHit(readBlocks, k, host, 8);
            return Host.SEGMENT.get(U64_LE, host);
        }
        return ldqLeMiss(addr);
    }

    /** ldqLe's miss: see "one miss method per access". */
    private long ldqLeMiss(long addr) {
        final RangeAccess r = refillAligned(addr, 8, false);
        return r != null ? Host.SEGMENT.get(U64_LE, addr + r.hostAddend) : loadSlow(addr, 8, false, false);
    }

    /** QEMU's {@code cpu_ldq_be_data}. */
    public long ldqBe(long addr) {
        final long[] t = read;
        final int k = slot(addr, t);
        if (t[k] == (addr & (pageMask | 7))) {
            final long host = addr + t[k + 1];
            assert checkHit(readBlocks, k, host, 8);
            return Host.SEGMENT.get(U64_BE, host);
        }
        return ldqBeMiss(addr);
    }

    /** ldqBe's miss: see "one miss method per access". */
    private long ldqBeMiss(long addr) {
        final RangeAccess r = refillAligned(addr, 8, false);
        return r != null ? Host.SEGMENT.get(U64_BE, addr + r.hostAddend) : loadSlow(addr, 8, true, false);
    }

    // ---------------------------------------------------------------- instruction fetch (fast path)

    /** QEMU's {@code cpu_ldub_code}: an instruction byte at guest-physical {@code addr}, 0..255. */
    public int ldubCode(long addr) {
        final long[] t = code;
        final int k = slot(addr, t);
        if (t[k] == (addr & pageMask)) {
            final long host = addr + t[k + 1];
            assert checkHit(codeBlocks, k, host, 1);
            return Host.SEGMENT.get(U8, host) & 0xff;
        }
        return (int) codeMiss(addr, 1);
    }

    /** QEMU's {@code cpu_lduw_code}: 16 bits of instructions in the target's byte order, 0..65535. */
    public int lduwCode(long addr) {
        final long[] t = code;
        final int k = slot(addr, t);
        if (t[k] == (addr & (pageMask | 1))) {
            final long host = addr + t[k + 1];
            assert checkHit(codeBlocks, k, host, 2);
            return (codeBigEndian ? Host.SEGMENT.get(U16_BE, host) : Host.SEGMENT.get(U16_LE, host)) & 0xffff;
        }
        return (int) codeMiss(addr, 2);
    }

    /** QEMU's {@code cpu_ldl_code}: 32 bits of instructions in the target's byte order. */
    public int ldlCode(long addr) {
        final long[] t = code;
        final int k = slot(addr, t);
        if (t[k] == (addr & (pageMask | 3))) {
            final long host = addr + t[k + 1];
            assert checkHit(codeBlocks, k, host, 4);
            return codeBigEndian ? Host.SEGMENT.get(U32_BE, host) : Host.SEGMENT.get(U32_LE, host);
        }
        return (int) codeMiss(addr, 4);
    }

    /** QEMU's {@code cpu_ldq_code}: 64 bits of instructions in the target's byte order. */
    public long ldqCode(long addr) {
        final long[] t = code;
        final int k = slot(addr, t);
        if (t[k] == (addr & (pageMask | 7))) {
            final long host = addr + t[k + 1];
            assert checkHit(codeBlocks, k, host, 8);
            return codeBigEndian ? Host.SEGMENT.get(U64_BE, host) : Host.SEGMENT.get(U64_LE, host);
        }
        return codeMiss(addr, 8);
    }

    // ---------------------------------------------------------------- stores (fast path)

    /** QEMU's {@code cpu_stb_data}: stores the low 8 bits of {@code val}. */
    public void stb(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr, t);
        final long tag = addr & pageMask;
        if (t[k] == tag) {
            final long host = addr + t[k + 1];
            assert checkHit(writeBlocks, k, host, 1);
            Host.SEGMENT.set(U8, host, (byte) val);
            return;
        }
        if (DirtyEpoch.REARMING && t[k] == (tag | logged)) {
            final long host = addr + t[k + 1]; // a logged page, marked: see "logged write entries"
            assert checkHit(writeBlocks, k, host, 1);
            Host.SEGMENT.set(U8, host, (byte) val);
            writes.afterLoggedStore(k);
            return;
        }
        stbMiss(addr, val);
    }

    /** stb's miss: see "one miss method per access". */
    private void stbMiss(long addr, int val) {
        final RangeAccess r = refillAligned(addr, 1, true);
        if (r != null) {
            Host.SEGMENT.set(U8, addr + r.hostAddend, (byte) val);
        } else {
            storeSlow(addr, val, 1, false);
        }
    }

    /** QEMU's {@code cpu_stw_le_data}: stores the low 16 bits of {@code val}. */
    public void stwLe(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr, t);
        final long tag = addr & (pageMask | 1);
        if (t[k] == tag) {
            final long host = addr + t[k + 1];
            assert checkHit(writeBlocks, k, host, 2);
            Host.SEGMENT.set(U16_LE, host, (short) val);
            return;
        }
        if (DirtyEpoch.REARMING && t[k] == (tag | logged)) {
            final long host = addr + t[k + 1]; // a logged page, marked: see "logged write entries"
            assert checkHit(writeBlocks, k, host, 2);
            Host.SEGMENT.set(U16_LE, host, (short) val);
            writes.afterLoggedStore(k);
            return;
        }
        stwLeMiss(addr, val);
    }

    /** stwLe's miss: see "one miss method per access". */
    private void stwLeMiss(long addr, int val) {
        final RangeAccess r = refillAligned(addr, 2, true);
        if (r != null) {
            Host.SEGMENT.set(U16_LE, addr + r.hostAddend, (short) val);
        } else {
            storeSlow(addr, val, 2, false);
        }
    }

    /** QEMU's {@code cpu_stw_be_data}: stores the low 16 bits of {@code val}. */
    public void stwBe(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr, t);
        final long tag = addr & (pageMask | 1);
        if (t[k] == tag) {
            final long host = addr + t[k + 1];
            assert checkHit(writeBlocks, k, host, 2);
            Host.SEGMENT.set(U16_BE, host, (short) val);
            return;
        }
        if (DirtyEpoch.REARMING && t[k] == (tag | logged)) {
            final long host = addr + t[k + 1]; // a logged page, marked: see "logged write entries"
            assert checkHit(writeBlocks, k, host, 2);
            Host.SEGMENT.set(U16_BE, host, (short) val);
            writes.afterLoggedStore(k);
            return;
        }
        stwBeMiss(addr, val);
    }

    /** stwBe's miss: see "one miss method per access". */
    private void stwBeMiss(long addr, int val) {
        final RangeAccess r = refillAligned(addr, 2, true);
        if (r != null) {
            Host.SEGMENT.set(U16_BE, addr + r.hostAddend, (short) val);
        } else {
            storeSlow(addr, val, 2, true);
        }
    }

    /** QEMU's {@code cpu_stl_le_data}. */
    public void stlLe(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr, t);
        final long tag = addr & (pageMask | 3);
        if (t[k] == tag) {
            final long host = addr + t[k + 1];
            assert checkHit(writeBlocks, k, host, 4);
            Host.SEGMENT.set(U32_LE, host, val);
            return;
        }
        if (DirtyEpoch.REARMING && t[k] == (tag | logged)) {
            final long host = addr + t[k + 1]; // a logged page, marked: see "logged write entries"
            assert checkHit(writeBlocks, k, host, 4);
            Host.SEGMENT.set(U32_LE, host, val);
            writes.afterLoggedStore(k);
            return;
        }
        stlLeMiss(addr, val);
    }

    /** stlLe's miss: see "one miss method per access". */
    private void stlLeMiss(long addr, int val) {
        final RangeAccess r = refillAligned(addr, 4, true);
        if (r != null) {
            Host.SEGMENT.set(U32_LE, addr + r.hostAddend, val);
        } else {
            storeSlow(addr, val & 0xffff_ffffL, 4, false);
        }
    }

    /** QEMU's {@code cpu_stl_be_data}. */
    public void stlBe(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr, t);
        final long tag = addr & (pageMask | 3);
        if (t[k] == tag) {
            final long host = addr + t[k + 1];
            assert checkHit(writeBlocks, k, host, 4);
            Host.SEGMENT.set(U32_BE, host, val);
            return;
        }
        if (DirtyEpoch.REARMING && t[k] == (tag | logged)) {
            final long host = addr + t[k + 1]; // a logged page, marked: see "logged write entries"
            assert checkHit(writeBlocks, k, host, 4);
            Host.SEGMENT.set(U32_BE, host, val);
            writes.afterLoggedStore(k);
            return;
        }
        stlBeMiss(addr, val);
    }

    /** stlBe's miss: see "one miss method per access". */
    private void stlBeMiss(long addr, int val) {
        final RangeAccess r = refillAligned(addr, 4, true);
        if (r != null) {
            Host.SEGMENT.set(U32_BE, addr + r.hostAddend, val);
        } else {
            storeSlow(addr, val & 0xffff_ffffL, 4, true);
        }
    }

    /** QEMU's {@code cpu_stq_le_data}. */
    public void stqLe(long addr, long val) {
        final long[] t = write;
        final int k = slot(addr, t);
        final long tag = addr & (pageMask | 7);
        if (t[k] == tag) {
            final long host = addr + t[k + 1];
            assert checkHit(writeBlocks, k, host, 8);
            Host.SEGMENT.set(U64_LE, host, val);
            return;
        }
        if (DirtyEpoch.REARMING && t[k] == (tag | logged)) {
            final long host = addr + t[k + 1]; // a logged page, marked: see "logged write entries"
            assert checkHit(writeBlocks, k, host, 8);
            Host.SEGMENT.set(U64_LE, host, val);
            writes.afterLoggedStore(k);
            return;
        }
        stqLeMiss(addr, val);
    }

    /** stqLe's miss: see "one miss method per access". */
    private void stqLeMiss(long addr, long val) {
        final RangeAccess r = refillAligned(addr, 8, true);
        if (r != null) {
            Host.SEGMENT.set(U64_LE, addr + r.hostAddend, val);
        } else {
            storeSlow(addr, val, 8, false);
        }
    }

    /** QEMU's {@code cpu_stq_be_data}. */
    public void stqBe(long addr, long val) {
        final long[] t = write;
        final int k = slot(addr, t);
        final long tag = addr & (pageMask | 7);
        if (t[k] == tag) {
            final long host = addr + t[k + 1];
            assert checkHit(writeBlocks, k, host, 8);
            Host.SEGMENT.set(U64_BE, host, val);
            return;
        }
        if (DirtyEpoch.REARMING && t[k] == (tag | logged)) {
            final long host = addr + t[k + 1]; // a logged page, marked: see "logged write entries"
            assert checkHit(writeBlocks, k, host, 8);
            Host.SEGMENT.set(U64_BE, host, val);
            writes.afterLoggedStore(k);
            return;
        }
        stqBeMiss(addr, val);
    }

    /** stqBe's miss: see "one miss method per access". */
    private void stqBeMiss(long addr, long val) {
        final RangeAccess r = refillAligned(addr, 8, true);
        if (r != null) {
            Host.SEGMENT.set(U64_BE, addr + r.hostAddend, val);
        } else {
            storeSlow(addr, val, 8, true);
        }
    }

    // ---------------------------------------------------------------- atomics

    /**
     * QEMU's {@code cpu_atomic_xchg_mmu} and {@code cpu_atomic_fetch_*_mmu} through this TLB, as
     * {@link SoftTlb#atomicFetchOp}: atomically replaces the {@code size}-byte value (4 or 8) at guest-physical
     * {@code addr} by {@code op}'s function of it and {@code operand}, and returns the old value, zero-extended. A hit
     * (naturally aligned, and the page's write part cached as a store would hit it: RAM nobody but CODE logs, or a
     * logged page already marked) is one atomic instruction through the TLB's one segment, followed for a logged page
     * by the dirty epoch's check a store makes. Everything else takes the slow path, {@link SoftTlb}'s own: the entry
     * is filled as for a store, a {@code NOTDIRTY} page is marked and reported after the atomic as after a store, and
     * what cannot be done atomically (misaligned, MMIO, ROM, a hole, RAM read-only through this mapping, RAM that may
     * fault) is refused: {@link MemTxResult#ATOMIC_REFUSED} in the sticky result, nothing read or written, 0 returned.
     *
     * @throws IllegalArgumentException if {@code size} is not 4 or 8
     * @throws IllegalStateException    if the TLB is not between begin and end (from the slow path)
     */
    public long atomicFetchOp(AtomicOp op, long addr, long operand, int size, boolean bigEndian) {
        return atomic(op.ordinal(), addr, operand, 0, size, bigEndian);
    }

    /**
     * QEMU's {@code cpu_atomic_cmpxchg*_mmu} through this TLB, as {@link SoftTlb#atomicCmpxchg}: stores
     * {@code desired} if the {@code size}-byte value at {@code addr} equals the low {@code size} bytes of
     * {@code expected}, and returns the value found, zero-extended; a compare that failed stores, marks and reports
     * nothing. Hits and refusals as {@link #atomicFetchOp}.
     */
    public long atomicCmpxchg(long addr, long expected, long desired, int size, boolean bigEndian) {
        return atomic(AtomicAccess.CMPXCHG, addr, expected, desired, size, bigEndian);
    }

    private long atomic(int op, long addr, long a, long b, int size, boolean bigEndian) {
        final long[] t = write;
        final int k = slot(addr, t);
        // The write part, as for a store: a logged page not marked yet, or protected code, never hits here.
        final long tag = addr & (pageMask | (size - 1));
        final long found = t[k];
        if ((size == 4 || size == 8) && (found == tag || DirtyEpoch.REARMING && found == (tag | logged))) {
            final long host = addr + t[k + 1];
            if ((host & (size - 1)) == 0) { // an alias at an odd offset into its RAM: the slow path refuses it
                assert checkHit(writeBlocks, k, host, size);
                final long old = AtomicAccess.access(op, Host.SEGMENT, host, a, b, size, bigEndian);
                if (found != tag && AtomicAccess.wrote(op, old, a, size)) {
                    writes.afterLoggedStore(k); // a logged page, marked: as after a store
                }
                return old;
            }
        }
        return atomicSlow(op, addr, a, b, size, bigEndian);
    }

    /** An atomic that did not hit: fills the entry as a store miss would, then {@link TlbWrites#atomicSlow}. */
    private long atomicSlow(int op, long addr, long a, long b, int size, boolean bigEndian) {
        AtomicAccess.checkSize(addr, size);
        final AddressSpaceDispatch d = activeDispatch();
        misses++;
        final int k = slot(addr, write);
        final long page = addr & pageMask;
        if (!writes.holds(k, page) && (addr & (size - 1)) == 0) {
            final RangeAccess r = d.rangeAccess(addr); // as in loadSlow
            if (TlbPages.readCacheable(r, page, pageMask) && r.ram.isNative()) {
                fillData(r, k, page);
            }
        }
        final long v = writes.atomicSlow(as, d, Host.SEGMENT, k, op, addr, a, b, size, bigEndian, loadResult);
        result |= loadResult[0];
        return v;
    }

    // ---------------------------------------------------------------- results, flushes, statistics

    /** The OR of the {@link MemTxResult}s of accesses since the last {@link #takeResult()}, without clearing it. */
    public int result() {
        return result;
    }

    /** The OR of the {@link MemTxResult}s of accesses since the last call, {@link MemTxResult#OK} if none failed. */
    public int takeResult() {
        final int r = result;
        result = MemTxResult.OK;
        return r;
    }

    /** QEMU's {@code tlb_flush} on the owner: forgets every page now. */
    public void flush() {
        checkOwner("flush");
        resizeWindowEnds(true);
    }

    /** QEMU's {@code tlb_flush_page}: forgets the page holding guest-physical {@code addr}, for every kind of access. */
    public void flushPage(long addr) {
        final long page = addr & pageMask;
        final int k = slot(addr, read);
        final boolean wasUsed = !isEmpty(k);
        if (holds(read, k, page)) {
            invalidate(read, readBlocks, k);
        }
        if (holds(code, k, page)) {
            invalidate(code, codeBlocks, k);
        }
        writes.invalidatePage(k, page);
        if (wasUsed && isEmpty(k)) {
            used--; // QEMU's tlb_n_used_entries_dec: the entry counts again when it is refilled
        }
    }

    /**
     * {@link SoftTlb#protectCode} on the map of the last check point: protects the target pages of this TLB's page
     * holding {@code addr} and returns the ram_addr of {@code addr}, or {@link RamList#INVALID_RAM_ADDR}.
     *
     * @throws IllegalStateException if the TLB is not between begin and end, or the region does not log CODE
     */
    public long protectCode(long addr) {
        checkActive("protectCode");
        return TlbPages.protectCode(dispatch, addr, pageMask, codeProtection);
    }

    /** Accesses that left the fast path (misses, unaligned accesses, MMIO, holes, stores to read-only pages). */
    public long missCount() {
        return misses;
    }

    /** Times the TLB was emptied: by {@link #flush()}, a request, a new view at a check point, or a resize. */
    public long flushCount() {
        return flushes;
    }

    /** Times the TLB changed its size. */
    public long resizeCount() {
        return resizes;
    }

    @Override
    public String toString() {
        return "HostTlb[" + as.name() + ", " + entries() + " entries, pageBits=" + pageBits + "]";
    }

    /**
     * QEMU's {@code tlb_reset_dirty} for the CODE client: marks {@code NOTDIRTY} on every write entry whose page
     * overlaps ram_addrs {@code [ramFirst, ramLast]}. Called by {@link CodeProtection} from any thread, after it
     * cleared the pages' CODE bits; see {@link SoftTlb}'s same method.
     */
    void resetDirty(long ramFirst, long ramLast) {
        writes.resetDirty(ramFirst, ramLast);
    }

    // ---------------------------------------------------------------- check points

    /** After entering the section: empties the TLB if the view changed or a flush was requested. */
    private void revalidate() {
        // Volatile: a request posted before a synced flush waited for this thread is seen here.
        final long req = (long) REQUESTED.getVolatile(this);
        // Acquire, after the reader's lock: see "why checkpoint may keep entries".
        final FlatView v = as.flatView();
        if (v != view || req != honoured) {
            if (view != null) {
                resizeWindowEnds(true);
            }
            view = v;
            dispatch = v.dispatchFor(pageBits);
            // Release: a waiting synced flush sees the entries gone.
            HONOURED.setRelease(this, req);
        }
    }

    /**
     * A resize window ends: at a flush ({@code flushing}, which then empties the TLB) or after the TLB was refilled
     * once over. Resizes as the class comment says.
     */
    private void resizeWindowEnds(boolean flushing) {
        final int size = entries();
        final int maxUsed = Math.max(windowMaxUsed, used);
        int next = size;
        if (maxUsed * 10L > size * 7L) {
            next = Math.min(size * 2, maxEntries);
        } else if (flushing && maxUsed * 10L < size * 3L) {
            int fit = Integer.highestOneBit(Math.max(maxUsed, 1));
            fit = fit < maxUsed ? fit * 2 : fit; // the power of two at or above maxUsed
            if (maxUsed * 10L > fit * 7L) {
                fit *= 2;
            }
            next = Math.max(fit, minEntries);
        }
        windowStart = misses;
        windowMaxUsed = flushing ? 0 : used;
        if (next != size) {
            allocate(next);
            resizes++;
            flushes++;
        } else if (flushing) {
            invalidateAll();
            flushes++;
        }
    }

    /** New arrays of {@code entries} empty entries (the write part's under its lock, by {@link TlbWrites}). */
    private void allocate(int entries) {
        read = filled(entries);
        code = filled(entries);
        if (CHECKED) {
            readBlocks = new MemorySegment[entries];
            codeBlocks = new MemorySegment[entries];
        }
        if (writes.tags.length != 2 * entries) {
            writes.allocate(entries, CHECKED);
        }
        write = writes.tags;
        writeBlocks = writes.segments;
        used = 0;
    }

    private static long[] filled(int entries) {
        final long[] t = new long[2 * entries];
        for (int k = 0; k < t.length; k += 2) {
            t[k] = INVALID;
        }
        return t;
    }

    // ---------------------------------------------------------------- slow path

    /** Index of the tag of {@code addr}'s entry in the interleaved array {@code t}. */
    private int slot(long addr, long[] t) {
        return ((int) (addr >>> pageBits) << 1) & (t.length - 2);
    }

    /** An instruction fetch's miss. */
    private long codeMiss(long addr, int size) {
        activeDispatch(); // outside begin/end: throws, counting nothing
        misses++;
        return loadSlow(addr, size, codeBigEndian, true);
    }

    /**
     * The general way of a load that missed, counted by {@link #refillAligned} or {@link #codeMiss}: whatever
     * {@code refillAligned} did not take (an unaligned or page-crossing load, MMIO, ROM, a hole, logged RAM, an
     * instruction fetch).
     */
    private long loadSlow(long addr, int size, boolean bigEndian, boolean isCode) {
        final AddressSpaceDispatch d = activeDispatch();
        final long[] t = isCode ? code : read;
        final int k = slot(addr, t);
        final long page = addr & pageMask;
        final boolean inPage = TlbPages.inPage(addr, size, pageMask);
        if (t[k] == page && inPage) {
            // Unaligned, inside a page that is cached.
            return ValueLayouts.get(Host.SEGMENT, addr + t[k + 1], size, bigEndian);
        }
        // The access path's record of the range, through the dispatch's hint as large as the range: a refill in a
        // range the last refill or access used costs no walk of the radix tree.
        final RangeAccess r = d.rangeAccess(addr);
        // A misaligned load inside the page may refill its entry for the accesses after it; an aligned one's miss
        // method tried refillRam already.
        final boolean misaligned = (addr & (size - 1)) != 0;
        if (!isCode && inPage && misaligned && refillRam(r, page, k, false) != INVALID) {
            return ValueLayouts.get(Host.SEGMENT, addr + r.hostAddend, size, bigEndian);
        }
        if (TlbPages.readCacheable(r, page, pageMask) && r.ram.isNative()) {
            final MemorySegment ram = r.ram;
            final long addend = r.hostAddend;
            if (isCode) {
                countUse(k);
                fill(code, codeBlocks, k, page, addend, ram);
            } else {
                fillData(r, k, page);
            }
            if (inPage) {
                return ValueLayouts.get(Host.SEGMENT, addr + addend, size, bigEndian);
            }
        }
        final long v = AccessPath.load(as, d, addr, size, bigEndian, attrs, loadResult);
        result |= loadResult[0];
        return v;
    }

    /** The general way of a store that missed, counted by {@link #refillAligned}: whatever it did not take. */
    private void storeSlow(long addr, long value, int size, boolean bigEndian) {
        final AddressSpaceDispatch d = activeDispatch();
        RangeAccess r = null;
        // As in loadSlow: an aligned store's miss method tried refillRam already, and storeGeneral finds the entry it
        // filled NOTDIRTY for protected code.
        if ((addr & (size - 1)) != 0 && TlbPages.inPage(addr, size, pageMask)) {
            r = d.rangeAccess(addr); // as in loadSlow
            final int k = slot(addr, write);
            final long page = addr & pageMask;
            final long tag = refillRam(r, page, k, true);
            if (tag == page) {
                // The address from the range, not from the entry just filled: see refillRam.
                ValueLayouts.set(Host.SEGMENT, addr + r.hostAddend, value, size, bigEndian);
                return;
            }
            if (tag != INVALID) {
                notDirtyStore(d, k, addr, value, size, bigEndian, true); // protected code: reported
                return;
            }
        }
        storeGeneral(d, addr, value, size, bigEndian, r);
    }

    /**
     * {@link #storeSlow} for everything but a store that refills its entry from plain RAM, on the dispatch {@code d}
     * that {@code storeSlow} checked; {@code looked} is the range {@code storeSlow} already looked up for {@code addr},
     * or null when it looked up none (a page-crossing store).
     */
    private void storeGeneral(AddressSpaceDispatch d, long addr, long value, int size, boolean bigEndian,
                           RangeAccess looked) {
        final int k = slot(addr, write);
        final long page = addr & pageMask;
        final boolean inPage = TlbPages.inPage(addr, size, pageMask);
        final long tag = write[k];
        if (writes.isNotDirty(tag, page)) {
            notDirtyStore(d, k, addr, value, size, bigEndian, inPage);
            return;
        }
        if ((tag == page || DirtyEpoch.REARMING && tag == (page | logged)) && inPage) {
            // Unaligned, inside a page that is cached.
            ValueLayouts.set(Host.SEGMENT, addr + write[k + 1], value, size, bigEndian);
            if (tag != page) {
                writes.afterLoggedStore(k);
            }
            return;
        }
        final RangeAccess r = looked != null ? looked : d.rangeAccess(addr);
        final FlatRange fr = r.range;
        if (TlbPages.readCacheable(r, page, pageMask) && r.ram.isNative()) {
            final long addend = r.hostAddend;
            final long filled = fillData(r, k, page); // what it wrote, not read back: see refillRam
            if ((filled == page || DirtyEpoch.REARMING && filled == (page | logged)) && inPage) {
                ValueLayouts.set(Host.SEGMENT, addr + addend, value, size, bigEndian);
                if (filled != page) {
                    writes.afterLoggedStore(k); // a logged page found marked: see TlbWrites.fill
                }
                return;
            }
            if (writes.isNotDirty(filled, page)) {
                notDirtyStore(d, k, addr, value, size, bigEndian, inPage);
                return;
            }
        }
        if (TlbPages.discardsStore(fr)) {
            result |= MemTxResult.DECODE_ERROR;
            return;
        }
        result |= AccessPath.store(as, d, addr, value, size, bigEndian, attrs);
    }

    /**
     * A store to a cached page whose write tag carries {@code NOTDIRTY} (QEMU's {@code notdirty_write}): stores, then
     * {@link TlbWrites#afterNotDirtyStore} marks, reports and drops the flag.
     */
    private void notDirtyStore(AddressSpaceDispatch d, int k, long addr, long value, int size, boolean bigEndian,
                               boolean inPage) {
        if (!inPage) {
            // Out of the page: the address space's store writes both pages, marks and reports each itself.
            result |= AccessPath.store(as, d, addr, value, size, bigEndian, attrs);
            return;
        }
        ValueLayouts.set(Host.SEGMENT, addr + write[k + 1], value, size, bigEndian);
        writes.afterNotDirtyStore(k, addr, size);
    }

    /**
     * The miss of a data access of {@code size} bytes at guest-physical {@code addr}, counted here, in the common case:
     * a naturally aligned access to RAM that {@link #refillRam} takes. Refills the entry and returns the range, whose
     * {@link RangeAccess#hostAddend} the access then goes through; returns null when the access is not aligned, the
     * TLB is outside begin/end, or {@code refillRam} did not fill the entry with the page itself (a store to protected
     * code fills it {@code NOTDIRTY}, which the general way then finds), and the caller goes the general way, which
     * looks the range up again but does not try {@code refillRam} a second time.
     */
    private RangeAccess refillAligned(long addr, int size, boolean forStore) {
        final AddressSpaceDispatch d = dispatch;
        if (d == null) {
            return null; // the general way throws
        }
        misses++;
        if ((addr & (size - 1)) != 0) {
            return null;
        }
        final RangeAccess r = d.rangeAccess(addr);
        final long page = addr & pageMask;
        return refillRam(r, page, slot(addr, read), forStore) == page ? r : null;
    }

    /**
     * The common refill (QEMU's {@code tlb_set_page} for RAM): when {@code r} is RAM that both parts may cache
     * ({@link TlbPages#readCacheable} and {@link TlbPages#writeCacheable}) covering all of the page at guest-physical
     * {@code page}, in native memory, and either logged by no client over an entry whose write part holds no logged
     * page, or logged by CODE alone (a JIT emulator's RAM), fills the entry and returns the write tag written (the
     * page itself, or the page with {@code NOTDIRTY} when it is protected code); else returns {@link #INVALID} having
     * changed nothing, and the caller goes the general way ({@link #fillData} and what follows). RAM nobody logs gets
     * both parts. RAM that CODE alone logs gets the read part alone for a load ({@code forStore} false), whose write
     * part waits for the first store miss: its fill must read the page's CODE bit after writing the entry, which
     * measured 10 ns a load miss ({@code hostTlbMissLoadCode} 13.8 ns against 2.9 without it, README); and both parts
     * for a store where the asymmetric fence is installed, over an entry whose write part holds no page logged by
     * more than CODE ({@link TlbWrites#fillCode}'s protocol with the protect's heavy fence, no entry lock). What it
     * writes is what {@code fillData} would write there.
     *
     * <p>RAM nobody logs, the common case, is decided by one bit the dispatch worked out when it took the range in
     * ({@link RangeAccess#TLB_PLAIN}) and filled with the record's precomputed addend; the rest is
     * {@link #refillCode}, out of line, so that this method stays small enough for the JIT to inline into both slow
     * paths (it would not at 333 bytecodes, which cost a call per miss). Measured (README, "The miss's checks
     * precomputed"): a load miss from 2.1x to 1.8-1.9x the address space's load, a store miss from 2.15x to 1.9x
     * its store. The plain case writes the use count and both parts out on the two arrays loaded once, rather than
     * through {@link #countUse} and {@link #fill}, and {@link TlbWrites#unlogged} answers from its count while no
     * entry holds a logged page: about 0.5 ns less a miss (README, "The refill written out").
     *
     * <p>The access that follows takes its host address from the range ({@link RangeAccess#hostAddend}), never from
     * the entry read back: a store whose address or condition came from reloading the tag or addend just stored
     * (through {@link TlbWrites}' reference to the write array, which the JIT cannot tell is the same array) measured
     * 10 to 16 ns per store miss against 3.4 to 4.1 ns this way (README, "The store miss found").
     */
    private long refillRam(RangeAccess r, long page, int k, boolean forStore) {
        if ((r.flags & RangeAccess.TLB_PLAIN) != 0 && TlbPages.coversPage(r, page, pageMask) && writes.unlogged(k)) {
            // countUse, then fill on both parts, written out on the two arrays loaded once
            final long[] rd = read;
            final long[] wr = write;
            if (rd[k] == INVALID && wr[k] == INVALID && code[k] == INVALID) {
                used++;
            }
            final long addend = r.hostAddend;
            rd[k] = page;
            rd[k + 1] = addend;
            wr[k] = page;
            wr[k + 1] = addend;
            if (CHECKED) {
                readBlocks[k >>> 1] = r.ram;
                writeBlocks[k >>> 1] = r.ram;
            }
            return page;
        }
        return refillCode(r, page, k, forStore);
    }

    /**
     * {@link #refillRam} for RAM that CODE alone logs (what is left once RAM nobody logs was taken): out of line, so
     * that the common refill stays small enough for the JIT to inline into both slow paths. Its range is decided by
     * one bit too ({@link RangeAccess#TLB_CODE}), where it once tested the record's fields one by one: 0.6 ns less a
     * load miss and 1 ns less a store miss on such RAM (README, "The CODE refill's bit"). Written inline in
     * {@code refillRam} instead, the load's case made the plain miss 0.3 ns slower, so it stays here.
     */
    private long refillCode(RangeAccess r, long page, int k, boolean forStore) {
        if ((r.flags & RangeAccess.TLB_CODE) == 0 || !TlbPages.coversPage(r, page, pageMask)
                || forStore && !(DirtyEpoch.REARMING && writes.codeOnly(k))) {
            return INVALID;
        }
        final long addend = r.hostAddend;
        countUse(k);
        fill(read, readBlocks, k, page, addend, r.ram);
        // A load leaves the write part as it was (the tag returned only says "filled"); a store fills it.
        return forStore ? writes.fillCode(k, page, addend, r.ram, r.ramBase + page + r.delta, r.codeBits) : page;
    }

    /**
     * Fills the read part of entry {@code k}, and the write part when {@link TlbPages#writeCacheable}; returns the
     * write tag written, or {@link TlbWrites#INVALID} when none was.
     */
    private long fillData(RangeAccess r, int k, long page) {
        countUse(k);
        fill(read, readBlocks, k, page, r.hostAddend, r.ram);
        return writes.fill(r.range, k, page, r.hostAddend, r.ram, r.marks);
    }

    /** Counts entry {@code k} as used when none of its parts held a page. */
    private void countUse(int k) {
        if (isEmpty(k)) {
            used++;
        }
    }

    /** Whether no part of entry {@code k} holds a page. */
    private boolean isEmpty(int k) {
        return read[k] == INVALID && code[k] == INVALID && write[k] == INVALID;
    }

    private static void fill(long[] t, MemorySegment[] blocks, int k, long page, long addend, MemorySegment ram) {
        t[k] = page;
        t[k + 1] = addend;
        if (CHECKED) {
            blocks[k >>> 1] = ram;
        }
    }

    private static void invalidate(long[] t, MemorySegment[] blocks, int k) {
        t[k] = INVALID;
        t[k + 1] = 0;
        if (CHECKED) {
            blocks[k >>> 1] = null;
        }
    }

    /** Whether entry part {@code t} of {@code k} holds {@code page}, {@code NOTDIRTY} or not. */
    private boolean holds(long[] t, int k, long page) {
        return t[k] != INVALID && (t[k] & pageMask) == page;
    }

    private void invalidateAll() {
        invalidateAll(read, readBlocks);
        invalidateAll(code, codeBlocks);
        writes.invalidateAll();
        used = 0;
    }

    private static void invalidateAll(long[] t, MemorySegment[] blocks) {
        for (int k = 0; k < t.length; k += 2) {
            t[k] = INVALID;
            t[k + 1] = 0;
        }
        if (CHECKED) {
            Arrays.fill(blocks, null);
        }
    }

    // ---------------------------------------------------------------- checks

    /**
     * The -ea check of a hit of entry {@code k}: inside the section, on the owner, and {@code [host, host + size)}
     * inside the live segment the entry was filled from.
     */
    private boolean checkHit(MemorySegment[] blocks, int k, long host, int size) {
        if (view == null || !reader.locked() || Thread.currentThread() != owner) {
            throw new AssertionError("tlb=" + this + " thread=" + Thread.currentThread().getName()
                    + ": a hit outside the owner's section");
        }
        final MemorySegment seg = blocks[k >>> 1];
        if (seg == null || !seg.scope().isAlive()) {
            throw new AssertionError("tlb=" + this + " host=" + U64.hex(host) + ": a hit on freed or unknown memory");
        }
        if (U64.lt(host, seg.address()) || U64.lt(seg.address() + seg.byteSize() - size, host)) {
            throw new AssertionError("tlb=" + this + " host=" + U64.hex(host) + " block=" + U64.hex(seg.address())
                    + "+" + U64.hex(seg.byteSize()) + ": a hit outside its block");
        }
        return true;
    }

    private void checkActive(String what) {
        if (view == null) {
            throw inactive(what);
        }
    }

    /**
     * The dispatch of the view the entries come from, for a slow path: {@link #checkActive} on the field the slow path
     * loads anyway (the two are null together, outside begin/end), so a miss pays one load and one test for it.
     */
    private AddressSpaceDispatch activeDispatch() {
        final AddressSpaceDispatch d = dispatch;
        if (d == null) {
            throw inactive("access");
        }
        return d;
    }

    private IllegalStateException inactive(String what) {
        return new IllegalStateException("tlb=" + this + " call=" + what
                + ": outside begin/end (a HostTlb is used only inside its RCU section)");
    }

    private void checkOwner(String what) {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("tlb=" + this + " call=" + what + " thread="
                    + Thread.currentThread().getName() + " owner=" + owner.getName() + ": not the owner thread");
        }
    }

    private static void checkEntries(String name, int entries) {
        if (entries < 1 || entries > MAX_ENTRIES || Integer.bitCount(entries) != 1) {
            throw new IllegalArgumentException(name + "=" + entries + ": must be a power of two from 1 to "
                    + MAX_ENTRIES);
        }
    }
}
