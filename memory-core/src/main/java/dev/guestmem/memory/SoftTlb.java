package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.AccessPath;
import dev.guestmem.memory.internal.access.ValueLayouts;
import dev.guestmem.memory.internal.dirty.DirtyEpoch;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

import static dev.guestmem.memory.internal.access.ValueLayouts.U16_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U16_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U32_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U32_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U64_BE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U64_LE;
import static dev.guestmem.memory.internal.access.ValueLayouts.U8;

/**
 * A software TLB over one {@link AddressSpace}, as the CPU TLB of QEMU's TCG ({@code accel/tcg/cputlb.c}): a JIT
 * emulator's loads, stores and instruction fetches, with the page translations of RAM cached so that a hit is a tag
 * compare and one {@link MemorySegment} access, and everything else handed to the address space's access path.
 * Addresses are guest-physical addresses of the address space (this TLB has no guest MMU in front of it; an
 * emulator with one keeps its own virtual-to-physical cache, or one {@code SoftTlb} per MMU context).
 *
 * <h2>Entries</h2>
 * The TLB is direct-mapped: guest page {@code p} (pages of the address space's {@link AddressSpace#pageBits() page
 * size}) lives in entry {@code p mod entries}. Each entry has three parts, one per kind of access, as QEMU's
 * {@code CPUTLBEntry} has {@code addr_read}, {@code addr_write} and {@code addr_code}: a <em>tag</em> (the page's
 * first guest-physical address, or {@code -1} when invalid), an <em>addend</em> (the host segment offset of an address
 * is {@code addr + addend}) and the <em>segment</em> (the {@link RamBlock#hostSegment() RamBlock's} whole segment).
 * The three parts are filled separately: a data access (load or store) that misses fills the read part and, if the
 * page is writable, the write part; an instruction fetch fills only the code part, so code and data pages that share
 * an index do not evict each other (a split I-TLB and D-TLB).
 *
 * <p>A page is cached only when one flat range covers all of it and is accessed directly: for reads and fetches RAM,
 * ROM, RAM devices and ROM devices in romd mode (QEMU's {@code memory_region_is_ram || memory_region_is_romd}); for
 * writes RAM and RAM devices that are not read-only <em>through this mapping</em> (the flat range's flag, which a
 * read-only alias or container sets too). Nothing else is ever cached: MMIO, ROM devices out of romd mode, holes,
 * IOMMU regions (their mappings change without a new view), pages that several sections share (QEMU's subpages),
 * and RAM whose memory can fault ({@code internal.access.RamFaults}: a file another process may truncate), whose every access takes
 * the address space's guarded path, so that a fault ends in {@link MemTxResult#ERROR} in {@link #takeResult()}
 * rather than in an exception in the vCPU thread.
 *
 * <h2>Fast and slow path</h2>
 * An access of {@code size} bytes hits when {@code addr & (~(pageSize - 1) | (size - 1))}, the page address with the
 * access's misalignment bits kept, equals the tag: only an aligned access can, and it never crosses a page. On a hit it is
 * one segment access. Everything else goes to an out-of-line slow path: an unaligned access inside a cached page is
 * served from the entry; otherwise the page is looked up through the current view's {@code AddressSpaceDispatch},
 * its entry filled if it can be, and the access done as {@link AddressSpace#ldqLe} and friends do it, on the same
 * view (MMIO dispatch with QEMU's sizes, alignment and byte order; holes as QEMU's unassigned memory; a page-crossing
 * or section-crossing access is one access to the region at its first byte, as in {@code address_space_ld*}).
 *
 * <p>One difference from the address space's stores, taken from QEMU's TLB ({@code TLB_DISCARD_WRITE}): a store to
 * RAM that is read-only through this mapping (a read-only alias of writable RAM) is discarded. The address space's
 * stores write through such an alias, as QEMU's {@code address_space_st*} do; a CPU store must not. A discarded store
 * reports {@link MemTxResult#DECODE_ERROR}, the result a store to ROM or to read-only RAM gets from the address space
 * (QEMU's TCG has no result for a CPU store and drops it silently). ROM stores take the address space's path: dropped,
 * {@link MemTxResult#DECODE_ERROR}.
 *
 * <h2>Results</h2>
 * Accesses do not return a {@link MemTxResult}. The TLB keeps a sticky one instead: every access that does not end in
 * {@link MemTxResult#OK} ORs its result into it, and {@link #takeResult()} reads and clears it (a hit never touches it,
 * so hits cost nothing). For per-access results, call {@link #takeResult()} after each access; a JIT usually checks it
 * once per instruction or block, where QEMU's TCG would raise {@code cpu_transaction_failed}. A load that fails reads
 * as 0 in the failing bytes, as through the address space.
 *
 * <h2>Invalidation</h2>
 * The TLB remembers the {@link FlatView} its entries were filled from, and every access, hit or miss, first checks that
 * it is still the address space's current view: one acquire load of the view (the same load
 * {@link AddressSpace#flatView()} does) and a reference compare. When the view changed, the next slow path flushes
 * every entry before it fills anything. So every hit uses a translation of a view that was current at the moment of
 * the access, and a commit that leaves a view unchanged (the writer keeps the same object) flushes nothing.
 *
 * <p>Other ways to invalidate: {@link #flush()} and {@link #flushPage(long)} (QEMU's {@code tlb_flush} and
 * {@code tlb_flush_page}), and, from any thread, {@link ExecuteInPlace#invalidate} for the pages of an I/O region's
 * execute-in-place window, which instruction fetches cache like RAM pages.
 *
 * <h2>Memory lifetime</h2>
 * Every access checks the view first, and a destroyed region's RAM is freed only after the view that mapped it was
 * replaced (see {@link MemoryRegion#destroy()}), so a hit never uses memory freed before the access began. A free can
 * still land between the check and the segment access of a thread that is not inside an {@link Rcu} read-side
 * section; the access then fails inside the segment (the JVM closes the arena safely under concurrent readers), and
 * the TLB drops its entries and redoes the access on the slow path, on the current view: as for the address space's
 * accesses, the JIT never sees an exception nor freed memory. A vCPU thread that locks its {@link Rcu.Reader} around
 * the guest code it runs, as QEMU's {@code cpu_exec} does, never meets that case. An idle vCPU can call
 * {@link #flush()} to drop its references to segments. RAM whose owner closes its arena itself (see
 * {@link MemorySystem#ramFromSegment}) must stay open while it is mapped.
 *
 * <h2>Dirty memory and translated code</h2>
 * A store must not get past a dirty-memory client that needs to see it, so what a write entry holds depends on who
 * logs the page's flat range:
 * <ul>
 *   <li><b>VGA or MIGRATION</b> (with or without CODE): QEMU's {@code TLB_NOTDIRTY}. The write entry is filled with
 *   {@code NOTDIRTY}, so the page's first store takes the slow path: it stores, marks the page for those clients
 *   (and reports it for CODE), and drops the flag, so later stores to the page are hits. A page already marked for
 *   every such client (and not protected code) is filled without the flag, in the {@code LOGGED} form below, as
 *   QEMU's {@code tlb_set_page} leaves {@code TLB_NOTDIRTY} off a page that is not clean; where the fallback fence
 *   is installed, never. When any take of dirty bits
 *   (a {@link DirtyBitmap}'s {@code snapshotAndClear} or {@code testAndClearDirty}, of any client, which the region,
 *   global and migration paths all use) took something, every TLB re-arms its write entries of logged pages before a
 *   store can be lost: the take advances a JVM-wide dirty epoch after its swaps and before its
 *   {@link AsymmetricFence#heavy() heavy fence}, and every hit that stores to such a page reads the epoch again
 *   after its store; when it moved, the TLB marks the page just stored to and sets {@code NOTDIRTY} on its logged
 *   entries again, on its own thread. So a store is either visible to whoever reads the page after the take
 *   returned, or marks the page again (the reasoning is {@code internal.dirty.DirtyEpoch}'s). Such an entry's tag
 *   carries a second bit, {@code LOGGED} (bit {@code pageBits - 2}, which no access matches either): a store hit
 *   to a page nobody but CODE logs is one compare and the store, and only a store that missed that compare tries the
 *   {@code LOGGED} form next and pays the epoch's load and compare. Where only the fallback fence is installed (no process-wide barrier,
 *   {@link AsymmetricFence#fallback()}) such pages get no write entry and every store to them takes the access path,
 *   which marks them; the check then folds away.</li>
 *   <li><b>CODE alone, or nobody</b>: a write entry. When the page is protected (its CODE bit is clear: a JIT
 *   translated code from it, see {@link CodeProtection}) the write tag carries {@code NOTDIRTY}: bit
 *   {@code pageBits - 1}, with which a valid tag never matches an access, so stores leave the fast path while loads
 *   and fetches keep hitting. The slow path (QEMU's {@code notdirty_write}) stores, then reports the written bytes
 *   to the {@link CodeProtection} listeners if the page is still protected, then drops {@code NOTDIRTY} if the page
 *   is no longer protected (QEMU's {@code tlb_set_dirty}), so that later stores are fast again. Why the report
 *   follows the store: {@link CodeProtection}.</li>
 * </ul>
 * {@link CodeProtection#protect}, on any thread, marks this TLB's write entries of the pages it protects
 * ({@code tlb_reset_dirty}). A store that begins after {@code protect} returned then takes the slow path and is
 * reported, through every TLB.
 *
 * <h2>Ordering of the write entries</h2>
 * A store that begins after {@link CodeProtection#protect} returned is reported, through every TLB, and hits pay
 * nothing for it: no fence, no lock, no extra load. Why that holds is an implementation note in the source.
 *
 * <p>Threading: confined to one thread, not thread-safe by design: one TLB per vCPU thread, like QEMU's per-CPU
 * TLB. Entries are plain arrays written by that thread, apart from {@code protect}'s marks (see above). Any number of
 * TLBs may share one address space, and the writer may commit at any moment; the acquire load of the view on each
 * access is what synchronises with it.
 */
public final class SoftTlb {
    // Implementation note (invalidation). Why the TLB checks the view and not AddressSpace.generation(): both change
    // exactly when a new view is published and cost one ordered load per access, but the writer stores the view before
    // it increments the generation. A TLB keyed on the generation could, in that window, fill entries from the new view
    // while keeping entries of the old one under the same generation, and hand out a mix of two maps until the
    // increment lands; keyed on the view, entries always come from exactly the view that is checked. Checking only on a
    // miss would be wrong: a hit could keep using a page that was remapped long ago.
    //
    // Implementation note (ordering of the write entries). The write part (tags, addends, segments and the pages'
    // ram_addrs) of an entry whose page is logged, before or after the write, is written under the TLB's entry lock: by
    // this TLB's thread when it fills, flushes or drops NOTDIRTY, and by protect's visit from any thread, which only
    // ORs NOTDIRTY into the tags of such entries, by compare-and-set. (Entries of pages that do not log CODE are never
    // visited, and are filled without the lock. QEMU's TLB fills take its tlb_c.lock too.) The thread fills a tag, or
    // drops the flag, after reading the page's CODE bit under the lock; protect clears the bit before its visit takes
    // the lock; so either the fill comes first and the visit marks it, or the fill reads the clear bit. The one fill
    // without the lock, where membarrier is installed, of a page that logs CODE alone over an entry that logged CODE
    // alone (a JIT emulator's every miss), gets the same either-or from protect's heavy fence instead: it writes the
    // entry fast, then reads the bit (TlbWrites.fillCode says why that is enough). Hits read tags with plain
    // loads and no lock. A visit's mark is seen by every store that begins after protect returned: the happens-before
    // edge from that return to the store (see CodeProtection) orders the mark, made before the visit released the lock,
    // before the store's tag load; later writes to the tag are this thread's own, made after reading the bit. Every
    // access loads its tag anew: it follows the previous access's acquire load of the view, so the JIT cannot keep it
    // in a register across accesses. A tag is a long, whose racy read the JLS allows to tear into halves; a visit
    // changes only bit pageBits - 1 of the low half, so a torn read is the old or the new value. Hits pay nothing for
    // this: no fence, no lock, no extra load. The lock is taken on flushes, on reports, and on misses of pages that log
    // CODE and more, or CODE under the fallback fence, or over an entry whose page logged CODE, where its atomic
    // instruction also waits for the thread's stores still in flight: 25 to 40 ns a miss, which the unlocked fills save
    // a JIT emulator, and a migration's or a display's TLB misses. A page VGA or MIGRATION logs without CODE, over an
    // entry whose page did not log CODE, is filled without the lock where membarrier is installed (TlbWrites.fill):
    // no visit needs to mark such an entry, so what a visit's compare-and-set does to it costs one slow store at most.

    /** Entries of a TLB made with {@link #SoftTlb(AddressSpace)}: 1,024 pages, 4 MiB with 4 KiB pages. */
    public static final int DEFAULT_ENTRIES = 1024;
    /** The most entries a TLB may have. */
    public static final int MAX_ENTRIES = 1 << 24;

    /** The tag of an entry part that holds no page: no access's masked address can equal it. */
    private static final long INVALID = -1L;

    private final AddressSpace as;
    private final MemTxAttrs attrs;
    private final boolean codeBigEndian;
    private final int pageBits;
    /** Bytes per page. */
    private final long pageSize;
    /** {@code ~(pageSize - 1)}: QEMU's {@code TARGET_PAGE_MASK}. */
    private final long pageMask;
    private final int indexMask;
    /**
     * {@code TLB_NOTDIRTY}'s bit, {@code pageBits - 1}, which no access matches: what an execute-in-place invalidation
     * sets in code tags (the write tags' forms are {@link TlbWrites}').
     */
    private final long notDirty;
    /** {@link TlbWrites#logged}, read by store hits that missed their first compare. */
    private final long logged;
    private final CodeProtection codeProtection;

    /**
     * Tag and addend of each entry's read, write and code part, interleaved ({@code [2i]} tag, {@code [2i + 1]}
     * addend) so that a hit reads one cache line of the array.
     */
    private final long[] read;
    private final long[] code;
    private final MemorySegment[] readSegments;
    private final MemorySegment[] codeSegments;
    /**
     * The write parts and their dirty-memory bookkeeping, and its lock the entry lock; {@link #write} and
     * {@link #writeSegments} are its arrays, which a store hit reads as it reads the read part's.
     */
    private final TlbWrites writes;
    private final long[] write;
    private final MemorySegment[] writeSegments;
    /** Guards every write to the write part; see "Ordering of the write entries" in the class comment. */
    private final Object entryLock;
    /** Per entry, the execute-in-place window its code part caches, or null; made on the first such fill. */
    private ExecuteInPlace.Entry[] inPlace;

    /** The view every valid entry was filled from; null after a flush. */
    private FlatView view;
    /** {@link #view}'s dispatch for this address space's page size. */
    private AddressSpaceDispatch dispatch;
    /** OR of the results of accesses since {@link #takeResult()}. */
    private int result;
    /** Receives the address-space path's load results, so that no access allocates. */
    private final int[] loadResult = new int[1];
    private long misses;
    private long flushes;

    /** A TLB of {@link #DEFAULT_ENTRIES} entries whose slow-path accesses carry {@link MemTxAttrs#UNSPECIFIED}. */
    public SoftTlb(AddressSpace as) {
        this(as, DEFAULT_ENTRIES, MemTxAttrs.UNSPECIFIED);
    }

    /**
     * @param as      the address space whose guest-physical addresses the TLB takes
     * @param entries pages cached at most, a power of two from 1 to {@link #MAX_ENTRIES}
     * @param attrs   the attributes of every access this TLB hands to the address space; a vCPU that accesses memory
     *                with several (secure and non-secure, say) keeps one TLB for each, as QEMU keeps one per MMU index
     */
    public SoftTlb(AddressSpace as, int entries, MemTxAttrs attrs) {
        if (entries < 1 || entries > MAX_ENTRIES || Integer.bitCount(entries) != 1) {
            throw new IllegalArgumentException("entries=" + entries + ": must be a power of two from 1 to "
                    + MAX_ENTRIES);
        }
        this.as = Objects.requireNonNull(as, "as");
        this.attrs = Objects.requireNonNull(attrs, "attrs");
        this.codeBigEndian = as.system().targetBigEndian();
        this.pageBits = as.pageBits();
        this.pageSize = 1L << pageBits;
        this.pageMask = -pageSize;
        this.indexMask = entries - 1;
        this.notDirty = 1L << (pageBits - 1);
        this.read = new long[2 * entries];
        this.code = new long[2 * entries];
        this.readSegments = new MemorySegment[entries];
        this.codeSegments = new MemorySegment[entries];
        this.writes = new TlbWrites(as, entries, true);
        this.logged = writes.logged;
        this.write = writes.tags;
        this.writeSegments = writes.segments;
        this.entryLock = writes.lock;
        invalidateAll();
        this.codeProtection = CodeProtection.of(as.system());
        // Last: from here on protect's visits may reach this TLB from other threads (the registration lock orders
        // every write above before them).
        codeProtection.register(this);
    }

    public AddressSpace addressSpace() {
        return as;
    }

    /** Entries (pages) the TLB can hold. */
    public int entries() {
        return indexMask + 1;
    }

    public MemTxAttrs attrs() {
        return attrs;
    }

    // ---------------------------------------------------------------- loads (fast path)

    /** QEMU's {@code cpu_ldub_data}: the byte at guest-physical {@code addr}, 0..255. */
    public int ldub(long addr) {
        final long[] t = read;
        final int k = slot(addr);
        if (t[k] == (addr & pageMask) && as.flatView() == view) {
            try {
                return readSegments[k >>> 1].get(U8, addr + t[k + 1]) & 0xff;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return (int) loadSlow(addr, 1, false, false);
    }

    /** QEMU's {@code cpu_lduw_le_data}: 0..65535. */
    public int lduwLe(long addr) {
        final long[] t = read;
        final int k = slot(addr);
        if (t[k] == (addr & (pageMask | 1)) && as.flatView() == view) {
            try {
                return readSegments[k >>> 1].get(U16_LE, addr + t[k + 1]) & 0xffff;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return (int) loadSlow(addr, 2, false, false);
    }

    /** QEMU's {@code cpu_lduw_be_data}: 0..65535. */
    public int lduwBe(long addr) {
        final long[] t = read;
        final int k = slot(addr);
        if (t[k] == (addr & (pageMask | 1)) && as.flatView() == view) {
            try {
                return readSegments[k >>> 1].get(U16_BE, addr + t[k + 1]) & 0xffff;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return (int) loadSlow(addr, 2, true, false);
    }

    /** QEMU's {@code cpu_ldl_le_data}: the 32 bits as an {@code int}. */
    public int ldlLe(long addr) {
        final long[] t = read;
        final int k = slot(addr);
        if (t[k] == (addr & (pageMask | 3)) && as.flatView() == view) {
            try {
                return readSegments[k >>> 1].get(U32_LE, addr + t[k + 1]);
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return (int) loadSlow(addr, 4, false, false);
    }

    /** QEMU's {@code cpu_ldl_be_data}. */
    public int ldlBe(long addr) {
        final long[] t = read;
        final int k = slot(addr);
        if (t[k] == (addr & (pageMask | 3)) && as.flatView() == view) {
            try {
                return readSegments[k >>> 1].get(U32_BE, addr + t[k + 1]);
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return (int) loadSlow(addr, 4, true, false);
    }

    /** QEMU's {@code cpu_ldq_le_data}. */
    public long ldqLe(long addr) {
        final long[] t = read;
        final int k = slot(addr);
        if (t[k] == (addr & (pageMask | 7)) && as.flatView() == view) {
            try {
                return readSegments[k >>> 1].get(U64_LE, addr + t[k + 1]);
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return loadSlow(addr, 8, false, false);
    }

    /** QEMU's {@code cpu_ldq_be_data}. */
    public long ldqBe(long addr) {
        final long[] t = read;
        final int k = slot(addr);
        if (t[k] == (addr & (pageMask | 7)) && as.flatView() == view) {
            try {
                return readSegments[k >>> 1].get(U64_BE, addr + t[k + 1]);
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return loadSlow(addr, 8, true, false);
    }

    // ---------------------------------------------------------------- instruction fetch (fast path)

    /** QEMU's {@code cpu_ldub_code}: an instruction byte at guest-physical {@code addr}, 0..255. */
    public int ldubCode(long addr) {
        final long[] t = code;
        final int k = slot(addr);
        if (t[k] == (addr & pageMask) && as.flatView() == view) {
            try {
                return codeSegments[k >>> 1].get(U8, addr + t[k + 1]) & 0xff;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return (int) loadSlow(addr, 1, codeBigEndian, true);
    }

    /** QEMU's {@code cpu_lduw_code}: 16 bits of instructions in the target's byte order, 0..65535. */
    public int lduwCode(long addr) {
        final long[] t = code;
        final int k = slot(addr);
        if (t[k] == (addr & (pageMask | 1)) && as.flatView() == view) {
            try {
                final long off = addr + t[k + 1];
                final MemorySegment s = codeSegments[k >>> 1];
                return (codeBigEndian ? s.get(U16_BE, off) : s.get(U16_LE, off)) & 0xffff;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return (int) loadSlow(addr, 2, codeBigEndian, true);
    }

    /** QEMU's {@code cpu_ldl_code}: 32 bits of instructions in the target's byte order. */
    public int ldlCode(long addr) {
        final long[] t = code;
        final int k = slot(addr);
        if (t[k] == (addr & (pageMask | 3)) && as.flatView() == view) {
            try {
                final long off = addr + t[k + 1];
                final MemorySegment s = codeSegments[k >>> 1];
                return codeBigEndian ? s.get(U32_BE, off) : s.get(U32_LE, off);
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return (int) loadSlow(addr, 4, codeBigEndian, true);
    }

    /** QEMU's {@code cpu_ldq_code}: 64 bits of instructions in the target's byte order. */
    public long ldqCode(long addr) {
        final long[] t = code;
        final int k = slot(addr);
        if (t[k] == (addr & (pageMask | 7)) && as.flatView() == view) {
            try {
                final long off = addr + t[k + 1];
                final MemorySegment s = codeSegments[k >>> 1];
                return codeBigEndian ? s.get(U64_BE, off) : s.get(U64_LE, off);
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        return loadSlow(addr, 8, codeBigEndian, true);
    }

    // ---------------------------------------------------------------- stores (fast path)

    /** QEMU's {@code cpu_stb_data}: stores the low 8 bits of {@code val}. */
    public void stb(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr);
        final long tag = addr & pageMask;
        if (t[k] == tag && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U8, addr + t[k + 1], (byte) val);
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        } else if (DirtyEpoch.REARMING && t[k] == (tag | logged) && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U8, addr + t[k + 1], (byte) val);
                writes.afterLoggedStore(k); // a logged page, marked: see "Dirty memory and translated code"
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        storeSlow(addr, val, 1, false);
    }

    /** QEMU's {@code cpu_stw_le_data}: stores the low 16 bits of {@code val}. */
    public void stwLe(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr);
        final long tag = addr & (pageMask | 1);
        if (t[k] == tag && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U16_LE, addr + t[k + 1], (short) val);
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        } else if (DirtyEpoch.REARMING && t[k] == (tag | logged) && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U16_LE, addr + t[k + 1], (short) val);
                writes.afterLoggedStore(k); // a logged page, marked: see "Dirty memory and translated code"
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        storeSlow(addr, val, 2, false);
    }

    /** QEMU's {@code cpu_stw_be_data}: stores the low 16 bits of {@code val}. */
    public void stwBe(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr);
        final long tag = addr & (pageMask | 1);
        if (t[k] == tag && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U16_BE, addr + t[k + 1], (short) val);
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        } else if (DirtyEpoch.REARMING && t[k] == (tag | logged) && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U16_BE, addr + t[k + 1], (short) val);
                writes.afterLoggedStore(k); // a logged page, marked: see "Dirty memory and translated code"
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        storeSlow(addr, val, 2, true);
    }

    /** QEMU's {@code cpu_stl_le_data}. */
    public void stlLe(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr);
        final long tag = addr & (pageMask | 3);
        if (t[k] == tag && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U32_LE, addr + t[k + 1], val);
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        } else if (DirtyEpoch.REARMING && t[k] == (tag | logged) && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U32_LE, addr + t[k + 1], val);
                writes.afterLoggedStore(k); // a logged page, marked: see "Dirty memory and translated code"
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        storeSlow(addr, val & 0xffff_ffffL, 4, false);
    }

    /** QEMU's {@code cpu_stl_be_data}. */
    public void stlBe(long addr, int val) {
        final long[] t = write;
        final int k = slot(addr);
        final long tag = addr & (pageMask | 3);
        if (t[k] == tag && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U32_BE, addr + t[k + 1], val);
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        } else if (DirtyEpoch.REARMING && t[k] == (tag | logged) && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U32_BE, addr + t[k + 1], val);
                writes.afterLoggedStore(k); // a logged page, marked: see "Dirty memory and translated code"
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        storeSlow(addr, val & 0xffff_ffffL, 4, true);
    }

    /** QEMU's {@code cpu_stq_le_data}. */
    public void stqLe(long addr, long val) {
        final long[] t = write;
        final int k = slot(addr);
        final long tag = addr & (pageMask | 7);
        if (t[k] == tag && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U64_LE, addr + t[k + 1], val);
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        } else if (DirtyEpoch.REARMING && t[k] == (tag | logged) && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U64_LE, addr + t[k + 1], val);
                writes.afterLoggedStore(k); // a logged page, marked: see "Dirty memory and translated code"
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        storeSlow(addr, val, 8, false);
    }

    /** QEMU's {@code cpu_stq_be_data}. */
    public void stqBe(long addr, long val) {
        final long[] t = write;
        final int k = slot(addr);
        final long tag = addr & (pageMask | 7);
        if (t[k] == tag && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U64_BE, addr + t[k + 1], val);
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        } else if (DirtyEpoch.REARMING && t[k] == (tag | logged) && as.flatView() == view) {
            try {
                writeSegments[k >>> 1].set(U64_BE, addr + t[k + 1], val);
                writes.afterLoggedStore(k); // a logged page, marked: see "Dirty memory and translated code"
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
            }
        }
        storeSlow(addr, val, 8, true);
    }

    // ---------------------------------------------------------------- atomics

    /**
     * QEMU's {@code cpu_atomic_xchg_mmu} and {@code cpu_atomic_fetch_*_mmu}: atomically replaces the {@code size}-byte
     * value (4 or 8) at guest-physical {@code addr} by {@code op}'s function of it and {@code operand}, and returns
     * the old value, zero-extended; as {@link AddressSpace#atomicFetchOp}, through this TLB. A hit (the page's write
     * part is cached and the address naturally aligned) is one atomic instruction on the segment, as QEMU's
     * {@code atomic_mmu_lookup} uses the write entry; a miss fills the entry as a store would and goes on from there.
     * Dirty marking and code reports as for a store through this TLB. What cannot be done atomically (misaligned,
     * MMIO, ROM, a hole, RAM read-only through this mapping) is refused: {@link MemTxResult#ATOMIC_REFUSED} goes into
     * the sticky result, nothing is read or written, and 0 is returned; call {@link #takeResult()} after an atomic to
     * tell a refusal (QEMU's TCG then runs the instruction again with the other vCPUs stopped).
     *
     * @throws IllegalArgumentException if {@code size} is not 4 or 8
     */
    public long atomicFetchOp(AtomicOp op, long addr, long operand, int size, boolean bigEndian) {
        return atomic(op.ordinal(), addr, operand, 0, size, bigEndian);
    }

    /**
     * QEMU's {@code cpu_atomic_cmpxchg*_mmu}: atomically stores {@code desired} at guest-physical {@code addr} if the
     * {@code size}-byte value there (4 or 8) equals the low {@code size} bytes of {@code expected}, and returns the
     * value found, zero-extended. As {@link #atomicFetchOp} otherwise; a compare that failed stores nothing and marks
     * nothing.
     */
    public long atomicCmpxchg(long addr, long expected, long desired, int size, boolean bigEndian) {
        return atomic(AtomicAccess.CMPXCHG, addr, expected, desired, size, bigEndian);
    }

    private long atomic(int op, long addr, long a, long b, int size, boolean bigEndian) {
        final long[] t = write;
        final int k = slot(addr);
        // The write part, as for a store: a logged page not marked yet, or protected code, never hits here.
        final long tag = addr & (pageMask | (size - 1));
        final long found = t[k];
        if ((size == 4 || size == 8) && (found == tag || DirtyEpoch.REARMING && found == (tag | logged))
                && as.flatView() == view) {
            final MemorySegment s = writeSegments[k >>> 1];
            final long off = addr + t[k + 1];
            if (AtomicAccess.hostAligned(s, off, size)) {
                try {
                    final long old = AtomicAccess.access(op, s, off, a, b, size, bigEndian);
                    if (found != tag && AtomicAccess.wrote(op, old, a, size)) {
                        writes.afterLoggedStore(k); // as after a store
                    }
                    return old;
                } catch (IllegalStateException e) {
                    afterRelease(e); // the page's RAM was freed under this access: redo it on the slow path
                }
            }
        }
        return atomicSlow(op, addr, a, b, size, bigEndian);
    }

    /**
     * An atomic that did not hit: fills the entry as a store miss would, then goes on through the entry or the
     * address space on the current view ({@link TlbWrites#atomicSlow}, {@link HostTlb}'s slow path too).
     */
    private long atomicSlow(int op, long addr, long a, long b, int size, boolean bigEndian) {
        AtomicAccess.checkSize(addr, size);
        while (true) {
            try {
                return atomicMiss(op, addr, a, b, size, bigEndian);
            } catch (IllegalStateException e) {
                afterRelease(e); // freed between the view check and the atomic: again, on the view current now
            }
        }
    }

    private long atomicMiss(int op, long addr, long a, long b, int size, boolean bigEndian) {
        misses++;
        final AddressSpaceDispatch d = current();
        final int k = slot(addr);
        final long page = addr & pageMask;
        if (!writes.holds(k, page) && (addr & (size - 1)) == 0) {
            final FlatRange fr = d.flatRange(d.sectionIndex(addr));
            if (TlbPages.readCacheable(fr, page, pageMask)) {
                fillData(fr, k, page, fr.offsetInRegion() - fr.start(), fr.region().ramBlock.hostSegment());
            }
        }
        final long v = writes.atomicSlow(as, d, writeSegments[k >>> 1], k, op, addr, a, b, size, bigEndian,
                loadResult);
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
        int r = result;
        result = MemTxResult.OK;
        return r;
    }

    /** QEMU's {@code tlb_flush}: forgets every page, and the view, so that nothing is kept alive. */
    public void flush() {
        invalidateAll();
        view = null;
        dispatch = null;
        flushes++;
    }

    /**
     * QEMU's {@code tlb_flush_page}: forgets the page holding guest-physical {@code addr}, for reads, writes and
     * fetches.
     */
    public void flushPage(long addr) {
        final long page = addr & pageMask;
        final int k = slot(addr);
        invalidateIf(read, readSegments, k, page);
        invalidateIf(code, codeSegments, k, page);
        writes.invalidatePage(k, page);
    }

    /**
     * A JIT is about to translate code at guest-physical {@code addr}: QEMU's {@code get_page_addr_code} followed by
     * {@code tlb_protect_code}. Protects the target pages of this TLB's page that holds {@code addr}, as far as the
     * RAM behind {@code addr} covers it (see {@link CodeProtection#protect}), and returns the ram_addr of
     * {@code addr}, by which reports will name it. Call it before reading the code.
     *
     * @return the ram_addr of {@code addr}, or {@link RamList#INVALID_RAM_ADDR} when {@code addr} is not memory that
     *         is read directly (MMIO, a ROM device out of romd mode, a hole, an IOMMU), which QEMU executes without
     *         keeping translations and where no store can change code behind the JIT's back
     * @throws IllegalStateException if the region does not log CODE ({@link MemoryRegion#setLog}), where stores
     *         would not be reported
     */
    public long protectCode(long addr) {
        return TlbPages.protectCode(current(), addr, pageMask, codeProtection);
    }

    /** Accesses that left the fast path (misses, unaligned accesses, MMIO, holes, stores to read-only pages). */
    public long missCount() {
        return misses;
    }

    /** Flushes of the whole TLB: by {@link #flush()} and because a new view was published. */
    public long flushCount() {
        return flushes;
    }

    /**
     * Makes stores to the page holding {@code addr} leave the fast path while the page stays cached (QEMU's
     * {@code tlb_reset_dirty} for one page: sets {@code TLB_NOTDIRTY}). The hook for the CODE dirty-memory client;
     * this TLB's thread only. Does nothing when the page's write part is not cached.
     */
    void markWriteSlow(long addr) {
        writes.markSlow(slot(addr), addr & pageMask);
    }

    /**
     * QEMU's {@code tlb_reset_dirty} for the CODE client: marks {@code NOTDIRTY} on every write entry whose page
     * overlaps ram_addrs {@code [ramFirst, ramLast]}. Called by {@link CodeProtection#protect} from any thread, after
     * it cleared the pages' CODE bits. Scans the entries (as QEMU does), unless none holds a page that logs CODE.
     */
    void resetDirty(long ramFirst, long ramLast) {
        writes.resetDirty(ramFirst, ramLast);
    }

    @Override
    public String toString() {
        return "SoftTlb[" + as.name() + ", " + entries() + " entries, pageBits=" + pageBits + "]";
    }

    // ---------------------------------------------------------------- slow path

    /**
     * A hit failed with {@code e} in its segment access. Freed RAM is the one legitimate cause: a region destroyed
     * after this TLB checked the view (see {@link MemoryRegion#destroy()}), whose block is in no current view, so the
     * view has changed since. Then every entry is dropped and the caller redoes the access on the slow path, on the
     * current view, as {@link AddressSpace}'s accesses do. Anything else (the TLB's view still current) is rethrown.
     */
    private void afterRelease(IllegalStateException e) {
        if (as.flatView() == view) {
            throw e;
        }
        flush();
    }

    /** Index of the tag of {@code addr}'s entry in the interleaved arrays. */
    private int slot(long addr) {
        return ((int) (addr >>> pageBits) & indexMask) << 1;
    }

    /**
     * The dispatch of the address space's current view, after flushing every entry if that view is not the one the
     * entries were filled from.
     */
    private AddressSpaceDispatch current() {
        // Acquire, pairing with the writer's release store in AddressSpace.publish: the view and its dispatch are
        // fully built. Entries filled after this come from v, and every hit checks v is still current.
        final FlatView v = as.flatView();
        if (v != view) {
            if (view != null) {
                invalidateAll();
                flushes++;
            }
            view = v;
            dispatch = v.dispatchFor(pageBits);
        }
        return dispatch;
    }

    /** A load that did not hit: {@code code} for an instruction fetch. */
    private long loadSlow(long addr, int size, boolean bigEndian, boolean code) {
        while (true) {
            try {
                return loadMiss(addr, size, bigEndian, code);
            } catch (IllegalStateException e) {
                afterRelease(e); // freed between the view check and the access: again, on the view current now
            }
        }
    }

    private long loadMiss(long addr, int size, boolean bigEndian, boolean code) {
        misses++;
        final AddressSpaceDispatch d = current();
        final long[] t = code ? this.code : read;
        final MemorySegment[] segs = code ? codeSegments : readSegments;
        final int k = slot(addr);
        final long page = addr & pageMask;
        final boolean inPage = TlbPages.inPage(addr, size, pageMask);
        if (t[k] == page && inPage) {
            // Unaligned, inside a page that is cached.
            return ValueLayouts.get(segs[k >>> 1], addr + t[k + 1], size, bigEndian);
        }
        final FlatRange fr = d.flatRange(d.sectionIndex(addr));
        if (TlbPages.readCacheable(fr, page, pageMask)) {
            final MemorySegment ram = fr.region().ramBlock.hostSegment();
            final long addend = fr.offsetInRegion() - fr.start();
            if (code) {
                fill(this.code, codeSegments, k, page, addend, ram);
                if (inPlace != null) {
                    inPlace[k >>> 1] = null;
                }
            } else {
                fillData(fr, k, page, addend, ram);
            }
            if (inPage) {
                return ValueLayouts.get(ram, addr + addend, size, bigEndian);
            }
        }
        if (code && fr != null && ExecuteInPlace.offers(fr) && inPage) {
            final ExecuteInPlace.Window w = ExecuteInPlace.request(this, fr, addr, size);
            if (w != null) {
                final long pageFirst = page + fr.offsetInRegion() - fr.start(); // region offsets of the page
                final long pageLast = pageFirst + ~pageMask;
                if (TlbPages.coversPage(fr, page, pageMask) && U64.le(w.regionFirst(), pageFirst) && U64.le(pageLast, w.regionLast())) {
                    fillInPlace(k, page, w, pageFirst, pageLast);
                }
                final long v = ValueLayouts.get(w.code(), addr + w.addend(), size, bigEndian);
                if (w.current()) {
                    return v; // read before any invalidation that began after the request
                }
                return loadSlow(addr, size, bigEndian, true); // invalidated meanwhile: ask the device again
            }
        }
        final long v = AccessPath.load(as, d, addr, size, bigEndian, attrs, loadResult);
        result |= loadResult[0];
        return v;
    }

    /**
     * Caches the execute-in-place page {@code page} in the code part of entry {@code k}, unless the window was
     * invalidated since it was requested; see {@link ExecuteInPlace}.
     */
    private void fillInPlace(int k, long page, ExecuteInPlace.Window w, long regionFirst, long regionLast) {
        final ExecuteInPlace.Entry e = new ExecuteInPlace.Entry(w.state(), regionFirst, regionLast);
        synchronized (entryLock) {
            // The generation is read under the lock that the invalidation's visit takes after changing it.
            if (!w.current()) {
                return;
            }
            if (inPlace == null) {
                inPlace = new ExecuteInPlace.Entry[indexMask + 1];
            }
            fill(code, codeSegments, k, page, w.addend(), w.code());
            inPlace[k >>> 1] = e;
        }
    }

    /**
     * {@link ExecuteInPlace#invalidate}'s visit, from any thread: every code entry caching a window of {@code state}
     * that overlaps region offsets {@code [first, last]} gets the never-matching bit in its tag.
     */
    void invalidateInPlace(ExecuteInPlace.State state, long first, long last) {
        synchronized (entryLock) {
            final ExecuteInPlace.Entry[] entries = inPlace;
            if (entries == null) {
                return;
            }
            for (int i = 0; i < entries.length; i++) {
                final ExecuteInPlace.Entry e = entries[i];
                if (e != null && e.overlaps(state, first, last)) {
                    // A plain store that the owner's hits read without the lock, as protect's marks: only bit
                    // pageBits - 1 changes, so a torn read is the old tag or one that matches nothing. If the owner
                    // refilled the entry meanwhile, the mark costs it one miss.
                    code[2 * i] |= notDirty;
                    entries[i] = null;
                }
            }
        }
    }

    /** A store that did not hit. */
    private void storeSlow(long addr, long value, int size, boolean bigEndian) {
        while (true) {
            try {
                storeMiss(addr, value, size, bigEndian);
                return;
            } catch (IllegalStateException e) {
                afterRelease(e); // freed between the view check and the store: again, on the view current now
            }
        }
    }

    private void storeMiss(long addr, long value, int size, boolean bigEndian) {
        misses++;
        final AddressSpaceDispatch d = current();
        final int k = slot(addr);
        final long page = addr & pageMask;
        final boolean inPage = TlbPages.inPage(addr, size, pageMask);
        final long tag = write[k];
        if (writes.isNotDirty(tag, page)) {
            notDirtyStore(d, k, addr, value, size, bigEndian, inPage);
            return;
        }
        if ((tag == page || DirtyEpoch.REARMING && tag == (page | logged)) && inPage) {
            // Unaligned, inside a page that is cached.
            ValueLayouts.set(writeSegments[k >>> 1], addr + write[k + 1], value, size, bigEndian);
            if (tag != page) {
                writes.afterLoggedStore(k);
            }
            return;
        }
        final FlatRange fr = d.flatRange(d.sectionIndex(addr));
        if (TlbPages.readCacheable(fr, page, pageMask)) {
            final MemorySegment ram = fr.region().ramBlock.hostSegment();
            final long addend = fr.offsetInRegion() - fr.start();
            fillData(fr, k, page, addend, ram);
            final long filled = write[k];
            if ((filled == page || DirtyEpoch.REARMING && filled == (page | logged)) && inPage) {
                ValueLayouts.set(ram, addr + addend, value, size, bigEndian);
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
     * A store to a cached page whose write part carries {@code NOTDIRTY} (QEMU's {@code notdirty_write}): the store
     * lands, then {@link TlbWrites#afterNotDirtyStore} marks, reports and drops the flag.
     */
    private void notDirtyStore(AddressSpaceDispatch d, int k, long addr, long value, int size, boolean bigEndian,
                               boolean inPage) {
        if (!inPage) {
            // Out of the page: the address space's store writes both pages, marks and reports each itself.
            result |= AccessPath.store(as, d, addr, value, size, bigEndian, attrs);
            return;
        }
        ValueLayouts.set(writeSegments[k >>> 1], addr + write[k + 1], value, size, bigEndian);
        writes.afterNotDirtyStore(k, addr, size);
    }

    /**
     * Fills the read part of entry {@code k} with {@code page}, and the write part when the page is writable through
     * this mapping ({@link TlbWrites#fill}).
     */
    private void fillData(FlatRange fr, int k, long page, long addend, MemorySegment ram) {
        fill(read, readSegments, k, page, addend, ram);
        writes.fill(fr, k, page, addend, ram, null); // no resolved marks here: the bitmaps' walk
    }

    private static void fill(long[] t, MemorySegment[] segs, int k, long page, long addend, MemorySegment ram) {
        t[k] = page;
        t[k + 1] = addend;
        segs[k >>> 1] = ram;
    }

    private static void invalidate(long[] t, MemorySegment[] segs, int k) {
        t[k] = INVALID;
        t[k + 1] = 0;
        segs[k >>> 1] = null;
    }

    private void invalidateIf(long[] t, MemorySegment[] segs, int k, long page) {
        if (holds(t, k, page)) {
            invalidate(t, segs, k);
        }
    }

    /** Whether entry part {@code t} of {@code k} holds {@code page}, {@code NOTDIRTY} or not. */
    private boolean holds(long[] t, int k, long page) {
        return t[k] != INVALID && (t[k] & pageMask) == page;
    }

    private void invalidateAll() {
        invalidateAll(read, readSegments);
        invalidateAll(code, codeSegments);
        synchronized (entryLock) {
            if (inPlace != null) {
                Arrays.fill(inPlace, null);
            }
        }
        writes.invalidateAll();
    }

    private static void invalidateAll(long[] t, MemorySegment[] segs) {
        for (int k = 0; k < t.length; k += 2) {
            t[k] = INVALID;
            t[k + 1] = 0;
        }
        // Dropping the segments lets RAM that left the map be freed.
        Arrays.fill(segs, null);
    }
}
