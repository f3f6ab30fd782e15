package dev.guestmem.memory;

import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Translated-code protection for JIT emulators over the CODE dirty-memory client of one {@link MemorySystem}: QEMU's
 * {@code tlb_protect_code} and {@code tlb_unprotect_code} ({@code accel/tcg/cputlb.c}), and the reports its TCG gets
 * from {@code notdirty_write} (stores through the soft TLB) and {@code invalidate_and_set_dirty} (every other write to
 * RAM) so that it can invalidate translated code on self-modifying and DMA writes.
 *
 * <h2>The CODE bit</h2>
 * Each target page of the ram_addr space has a bit in {@link MemorySystem#dirtyBitmap(DirtyMemoryClient) the CODE
 * bitmap}. Set (dirty) means no translated code is known there: stores are not reported, and {@link SoftTlb} stores
 * take their fast path. Clear (clean, <em>protected</em>) means a JIT translated code from the page: {@link #protect}
 * clears it, and every store that then lands in the page is reported to the {@link Listener}s until
 * {@link #unprotect} sets the bit again. New RAM starts with the bit set (no code), as in QEMU. Every path that writes
 * RAM reports: {@link SoftTlb} stores, the address space's stores, {@code write}, {@code set} and {@code writeRom},
 * DMA mappings when unmapped, and {@link MemoryRegionCache#invalidate}.
 *
 * <p>Only regions that log CODE take part ({@link MemoryRegion#setLog setLog(true, DirtyMemoryClient.CODE)}), as
 * QEMU's TCG has CODE in the log mask of every RAM block: a JIT turns it on for the RAM and ROM it translates code
 * from, and memory that nobody executes keeps the unlogged paths (no bitmap is looked at when nobody logs).
 * {@link SoftTlb#protectCode} refuses a region that does not log CODE.
 *
 * <h2>Reports come after the store</h2>
 * A listener hears {@code codeWritten(ramAddr, length)} on the storing thread once the bytes are in memory, one call
 * per protected target page with the written bytes of that page (a DMA write over several protected pages makes one
 * call for each; unprotected pages are not mentioned). QEMU's CPU stores report <em>before</em> storing, so that a
 * vCPU that overwrites the block it is executing can leave it and restart the store from a new block. Here the report
 * follows the store, on every path alike, for a reason that only exists with threads that translate while others
 * store: the listener may then assume that the new bytes are visible to whoever reads the page after it ran. That
 * makes the protocol below exact; with a report before the store, a translator could read the old bytes after the
 * report and before the store lands, and keep stale code that nothing reports again. A vCPU that overwrote its own
 * block learns it in the listener, after the store instruction took effect, and leaves the block before the next
 * instruction (the listener runs before the store method returns), which is what the guest architecture requires.
 *
 * <h2>Who sets the bit again</h2>
 * The JIT, with {@link #unprotect}, when the page holds no translated code and none is being translated, as QEMU's TB
 * invalidation calls {@code tlb_unprotect_code} when a page's last TB goes. A report does not unprotect by itself:
 * only the JIT knows whether code is being translated from the page at that moment, and a bit set after such a
 * translation began would leave it unprotected. A page that stays protected reports every store.
 *
 * <h2>Ordering, and the protocol a JIT follows</h2>
 * The guarantee: a store that begins after {@link #protect} returns (there is a happens-before edge from the return
 * to the store: a volatile write and read, a lock, a queue, a thread start) is reported if the page is still
 * protected when the store has landed; this holds for stores through any thread's {@link SoftTlb}, also one that
 * cached the page for fast stores before. A store that races with {@code protect} may be reported or not, as on QEMU.
 * A JIT that translates while other threads store therefore does, per page:
 * <ol>
 *   <li>{@link #protect} the page, then read a per-page write generation of its own;</li>
 *   <li>read the guest code and translate it;</li>
 *   <li>under its own lock, publish the translation only if the generation did not change;</li>
 *   <li>in {@link Listener#codeWritten}, under the same lock: increment the generation, drop the translations that
 *   overlap the written bytes, and {@link #unprotect} the page if it holds none and no translation is under way.</li>
 * </ol>
 * A store that the translation did not see began before step 1 ended or lands after step 2 read its bytes; in the
 * second case it is reported after it landed, so either the generation check or the listener drops the translation.
 *
 * <p>The CODE bits belong to this class. {@link MemoryRegion#resetDirty} and {@link MemoryRegion#snapshotAndClearDirty}
 * of the CODE client clear them through it too, as QEMU's clears reset the TLBs, so they protect exactly as
 * {@link #protect} does. Clearing them on the bitmap itself ({@code MemorySystem.dirtyBitmap(CODE)}) reaches the
 * address-space paths, which read the bits on every write, but not the soft TLBs' cached write entries.
 * {@link MemoryRegion#setDirty} sets the bits of every logging client, CODE's too, and so unprotects, as QEMU's
 * {@code memory_region_set_dirty} does. {@link #protect} tells the memory listeners that keep dirty logs of their own
 * ({@link MemoryListener#logClear}), as QEMU's {@code tlb_protect_code} does through
 * {@code cpu_physical_memory_test_and_clear_dirty}.
 *
 * <p>Threading: every method may be called from any thread. Listeners are called on the thread whose write landed,
 * possibly several at once, with no lock of this class or of a TLB held, so they may call {@link #protect},
 * {@link #unprotect} and the accesses of their own TLB.
 */
public final class CodeProtection {
    // Implementation note, how the ordering guarantee of the class comment is made: protect clears the bits (an atomic
    // AND) and then, if any was set, visits every live SoftTlb and HostTlb of the system and marks its write entries
    // of those pages NOTDIRTY under that TLB's entry lock, all under this object's lock, so that a protect that finds
    // the bits already clear cannot return before the one that cleared them has visited every TLB. A TLB fills a write
    // entry, and drops NOTDIRTY from one, under the same entry lock after reading the page's bit, so either the fill
    // comes first and the visit marks the entry, or the fill reads the cleared bit. Where membarrier is installed, a
    // TLB fills an entry of a page that logs CODE alone without that lock (TlbWrites.fillCode): the clear's heavy
    // fence, which testAndClearDirty and snapshotAndClear call after taking a bit and before returning, so before the
    // visits, gives the same either-or. The TLB's fast path reads its tags
    // without the lock; the happens-before edge from protect's return to the store carries the mark to it (see
    // SoftTlb).

    /** What a JIT is told about writes to protected pages; see the class comment. */
    @FunctionalInterface
    public interface Listener {
        /**
         * {@code length} bytes (1 up to the target page size) at ram_addr {@code ramAddr}, all in one protected
         * target page, were just written. QEMU's {@code tb_invalidate_phys_range} for that page.
         */
        void codeWritten(long ramAddr, long length);
    }

    private static final Listener[] NO_LISTENERS = {};

    private final MemorySystem system;
    /** Serializes {@link #protect} with itself and with TLB registration; see the implementation note above. */
    private final Object lock = new Object();
    /**
     * Every soft TLB ({@link SoftTlb} or {@link HostTlb}) made over an address space of the system that may still be
     * alive; guarded by {@link #lock}.
     */
    private final ArrayList<WeakReference<Object>> tlbs = new ArrayList<>();
    /** Replaced whole (copy on write) under {@link #lock}; read once per report. */
    private volatile Listener[] listeners = NO_LISTENERS;

    CodeProtection(MemorySystem system) {
        // The system is not yet fully built here (its field initializers run first): nothing of it is read now.
        this.system = system;
    }

    /** The code protection of {@code system}: one per system, shared by all its address spaces and soft TLBs. */
    public static CodeProtection of(MemorySystem system) {
        return system.codeProtection();
    }

    /**
     * QEMU's {@code tlb_protect_code}: translated code was (or is about to be) made from the target pages of
     * {@code [ramAddr, ramAddr + length)}, so from now on every store to them is reported. Clears their CODE bits;
     * if any was set, marks the soft TLBs' write entries of those pages so that stores leave the fast path. Costs a
     * walk of every live TLB's write entries when a bit changed (QEMU's {@code tlb_reset_dirty_range_all}).
     *
     * @param ramAddr a ram_addr; the range must lie in the ram_addr space ({@link DirtyBitmap}'s rules)
     * @param length  bytes; 0 protects nothing
     */
    public void protect(long ramAddr, long length) {
        clearAndRearm(ramAddr, length);
        // As QEMU's cpu_physical_memory_test_and_clear_dirty: listeners with dirty logs of their own hear logClear
        // for the pages. Outside this object's lock, because that may take the topology lock.
        if (length != 0) {
            final RamBlock b = system.ramList().blockByRamAddr(ramAddr);
            if (b != null) {
                final long off = ramAddr - b.offset();
                system.dirtyLog().clearPages(null, b, off, Math.min(length, b.usedLength() - off));
            }
        }
    }

    /**
     * QEMU's {@code tlb_unprotect_code}: the target pages of {@code [ramAddr, ramAddr + length)} hold no translated
     * code any more; stores to them are no longer reported, and soft TLBs let them take the fast path again after
     * their next store. Sets the CODE bits.
     */
    public void unprotect(long ramAddr, long length) {
        bitmap().setDirtyRange(ramAddr, length);
    }

    /** Whether the target page holding ram_addr {@code ramAddr} is protected (its CODE bit is clear). */
    public boolean isProtected(long ramAddr) {
        return !bitmap().getDirty(ramAddr, 1);
    }

    /** Adds a listener; one added twice is called twice. */
    public void addListener(Listener listener) {
        Objects.requireNonNull(listener, "listener");
        synchronized (lock) {
            final Listener[] old = listeners;
            final Listener[] now = Arrays.copyOf(old, old.length + 1);
            now[old.length] = listener;
            // Volatile write: a report that reads the new array sees the listener fully constructed.
            listeners = now;
        }
    }

    /** Removes one registration of {@code listener}; returns whether there was one. */
    public boolean removeListener(Listener listener) {
        synchronized (lock) {
            final Listener[] old = listeners;
            for (int i = 0; i < old.length; i++) {
                if (old[i] == listener) {
                    final Listener[] now = Arrays.copyOf(old, old.length - 1);
                    System.arraycopy(old, i + 1, now, i, old.length - i - 1);
                    listeners = now;
                    return true;
                }
            }
            return false;
        }
    }

    @Override
    public String toString() {
        return "CodeProtection[pageSize=" + bitmap().pageSize() + "]";
    }

    // ---------------------------------------------------------------- for the access paths and the soft TLB

    /** Makes {@code protect} reach {@code tlb}. Called once, at the end of the TLB's constructor. */
    void register(SoftTlb tlb) {
        add(tlb);
    }

    /** Makes {@code protect} reach {@code tlb}, and {@link HostTlb#flushAllSynced} too; see {@link #register(SoftTlb)}. */
    void register(HostTlb tlb) {
        add(tlb);
    }

    /** The live {@link HostTlb}s of the system, a snapshot. */
    List<HostTlb> hostTlbs() {
        final ArrayList<HostTlb> out = new ArrayList<>();
        synchronized (lock) {
            for (WeakReference<Object> ref : tlbs) {
                if (ref.get() instanceof HostTlb h) {
                    out.add(h);
                }
            }
        }
        return out;
    }

    private void add(Object tlb) {
        synchronized (lock) {
            // The entry lock is taken under this one only (never the other way round), so this cannot deadlock.
            tlbs.removeIf(r -> r.get() == null);
            tlbs.add(new WeakReference<>(tlb));
        }
    }

    /**
     * {@code length} bytes at {@code ramAddr} were written and are in memory: reports each protected target page they
     * touch to every listener. QEMU's {@code tb_invalidate_phys_range} as {@code invalidate_and_set_dirty} and
     * {@code notdirty_write} call it. The caller holds no lock.
     */
    void written(long ramAddr, long length) {
        // Volatile read: listeners added before this report are called.
        final Listener[] ls = listeners;
        if (ls.length == 0 || length == 0) {
            return;
        }
        final DirtyBitmap code = bitmap();
        final long pageMask = -code.pageSize();
        final long end = ramAddr + length;
        long first = ramAddr;
        while (first != end) {
            final long next = (first & pageMask) + code.pageSize();
            final long n = U64.lt(end - first, next - first) ? end - first : next - first;
            // Acquire: a bit a protect cleared before this write began (happens-before) reads clear here.
            if (!code.getDirty(first, 1)) {
                for (Listener l : ls) {
                    l.codeWritten(first, n);
                }
            }
            first += n;
        }
    }

    /**
     * Clears the CODE bits of {@code [ramAddr, ramAddr + length)} and, if any was set, marks the soft TLBs' write
     * entries of those pages: {@link #protect} without telling listeners, for {@link MemoryRegion#resetDirty}, which
     * tells them itself. Every clear of CODE bits goes through this object's lock; see the class comment.
     *
     * @return whether any bit was set
     */
    boolean clearAndRearm(long ramAddr, long length) {
        final DirtyBitmap code = bitmap();
        synchronized (lock) {
            // Volatile AND-NOT: a TLB that reads a bit after this (under its entry lock, ordered after the visit
            // below or after this clear) sees it clear; the visits below order everything the TLB did before.
            if (!code.testAndClearDirty(ramAddr, length)) {
                return false;
            }
            // Whole target pages: a TLB page smaller than a target page may hold another part of one.
            rearm(ramAddr & -code.pageSize(), (ramAddr + length - 1) | (code.pageSize() - 1));
            return true;
        }
    }

    /**
     * QEMU's {@code cpu_physical_memory_snapshot_and_clear_dirty} for the CODE client, which resets the TLBs too:
     * takes and clears the bits (whole 64-page words, as {@link DirtyBitmap#snapshotAndClear}) and marks the soft
     * TLBs' write entries of every page whose bit was taken, under this object's lock.
     */
    DirtySnapshot snapshotAndClear(long ramAddr, long length, DirtySnapshot into) {
        synchronized (lock) {
            final DirtySnapshot snap = bitmap().snapshotAndClear(ramAddr, length, into);
            if (snap.dirtyPageCount() != 0) {
                rearm(snap.start(), snap.end() - 1);
            }
            return snap;
        }
    }

    /** Marks {@code NOTDIRTY} on every live TLB's write entries of ram_addrs {@code [first, last]}. Under the lock. */
    private void rearm(long first, long last) {
        assert Thread.holdsLock(lock);
        int live = 0;
        for (int i = 0; i < tlbs.size(); i++) {
            final WeakReference<Object> ref = tlbs.get(i);
            final Object tlb = ref.get();
            if (tlb instanceof SoftTlb s) {
                s.resetDirty(first, last);
            } else if (tlb instanceof HostTlb h) {
                h.resetDirty(first, last);
            }
            if (tlb != null) {
                tlbs.set(live++, ref);
            }
        }
        tlbs.subList(live, tlbs.size()).clear();
    }

    /** Whether any target page of {@code [ramAddr, ramAddr + length)} is protected. */
    boolean anyProtected(long ramAddr, long length) {
        final DirtyBitmap code = bitmap();
        final long pageSize = code.pageSize();
        final long end = ramAddr + length;
        for (long p = ramAddr & -pageSize; U64.lt(p, end); p += pageSize) {
            if (!code.getDirty(p, 1)) {
                return true;
            }
        }
        return false;
    }

    private DirtyBitmap bitmap() {
        return system.dirtyBitmap(DirtyMemoryClient.CODE);
    }
}
