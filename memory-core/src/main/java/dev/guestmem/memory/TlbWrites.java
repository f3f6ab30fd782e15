package dev.guestmem.memory;

import dev.guestmem.memory.internal.dirty.DirtyEpoch;
import dev.guestmem.memory.internal.dirty.DirtyMarks;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * The write part of a soft TLB's entries, one source for {@link SoftTlb} and {@link HostTlb}: QEMU's
 * {@code addr_write} with its {@code TLB_NOTDIRTY} flag, and what a store needs to keep dirty memory and translated
 * code right: each page's ram_addr and dirty-log mask, the entries that went fast for a page VGA or MIGRATION logs
 * and the dirty epoch they did so in. It fills the write part, runs the slow half of a store to a {@code NOTDIRTY}
 * page after the store landed (QEMU's {@code notdirty_write} and {@code tlb_set_dirty}), the check after a store to
 * a logged page, and the re-arms ({@code tlb_reset_dirty}). The store itself, and every hit, stay in the TLB: its hit
 * path reads {@link #tags} (and {@link #segments}) through fields of its own that point at the same arrays, so an
 * unlogged store hit goes through nothing of this class.
 *
 * <p>A write tag has three forms for a cached page (pages of {@code pageBits} bits): the page (a hit: one compare and
 * the store), the page with {@link #logged} (bit {@code pageBits - 2}: a page VGA or MIGRATION logs, marked in dirty
 * epoch {@link #epoch}; a store hits on a second compare and then checks the epoch, {@link #afterLoggedStore}), and
 * any form with {@link #notDirty} (bit {@code pageBits - 1}: every store slow). No access's
 * {@code addr & (pageMask | (size - 1))} has either bit, since {@code pageBits - 2} lies above the misalignment bits
 * of an 8-byte access (pages have at least 256 bytes). {@code -1} is an invalid tag.
 *
 * <p>Threading: the TLB's owner thread, but {@link #resetDirty}, which any thread may call. Tags, ram_addrs and masks
 * of entries whose page is logged, before or after the write, are written under {@link #lock} (by the owner when it
 * fills, flushes, drops {@code NOTDIRTY} or re-arms, by {@code resetDirty} when it sets {@code NOTDIRTY}, with a
 * compare-and-set), but for one case: where the asymmetric fence is installed, the owner fills an entry whose old and
 * new pages log nothing but CODE without the lock ({@link #fillCode}, which says why no protect is missed). The
 * owner's hits read tags with plain loads and no lock. Why that is enough: {@link SoftTlb}'s note on "ordering of the
 * write entries".
 */
final class TlbWrites {
    /** The tag of an entry part that holds no page, and the ram_addr of a page nobody logs. */
    static final long INVALID = -1L;
    private static final VarHandle TAGS = MethodHandles.arrayElementVarHandle(long[].class);

    /** The "stores go slow" bit ({@code TLB_NOTDIRTY}). */
    final long notDirty;
    /** The "a logged page, marked: check the epoch after storing" bit. */
    final long logged;
    /**
     * Guards every write to the write part of an entry whose page is logged, and every array replacement; the TLB's
     * entry lock.
     */
    final Object lock = new Object();
    private final int pageBits;
    private final long pageMask;
    private final long pageSize;
    private final DirtyBitmap[] bitmaps;
    private final CodeProtection codeProtection;

    /** Tag and addend of each entry's write part, interleaved ({@code [2i]} tag, {@code [2i + 1]} addend). */
    long[] tags;
    /** Per entry, the segment its write part was filled from; null when the TLB keeps none. */
    MemorySegment[] segments;
    /** Per entry, the ram_addr of the write part's page when its range logs any client, else {@link #INVALID}. */
    private long[] ramAddr;
    /** Per entry, the dirty-log mask of the write part's range, CODE's bit included; guarded as {@link #ramAddr}. */
    private int[] log;
    /** Entries whose {@link #ramAddr} is valid, so that a visit of a TLB without any costs nothing. */
    private int loggedPages;
    /** The dirty epoch in which the entries with {@link #logged} went fast; owner only. */
    private long epoch;
    /** Entries that went fast for a logged page since they were last re-armed; owner only. */
    private final LoggedWrites fast;

    /**
     * Empty write parts for a TLB of {@code entries} entries of the address space {@code as}, with a segment per
     * entry when {@code withSegments}.
     */
    TlbWrites(AddressSpace as, int entries, boolean withSegments) {
        this.pageBits = as.pageBits();
        this.pageSize = 1L << pageBits;
        this.pageMask = -pageSize;
        this.notDirty = 1L << (pageBits - 1);
        this.logged = 1L << (pageBits - 2);
        this.bitmaps = as.system().dirtyBitmaps;
        this.codeProtection = CodeProtection.of(as.system());
        this.fast = new LoggedWrites(entries);
        allocate(entries, withSegments);
    }

    /** New, empty arrays of {@code entries} entries (a resize); the TLB's own fields must then be read again. */
    void allocate(int entries, boolean withSegments) {
        synchronized (lock) {
            final long[] t = new long[2 * entries];
            for (int k = 0; k < t.length; k += 2) {
                t[k] = INVALID;
            }
            tags = t;
            segments = withSegments ? new MemorySegment[entries] : null;
            ramAddr = new long[entries];
            Arrays.fill(ramAddr, INVALID);
            log = new int[entries];
            loggedPages = 0;
        }
        fast.resize(entries);
    }

    /** Index of the tag of {@code addr}'s entry. */
    private int slot(long addr) {
        return ((int) (addr >>> pageBits) << 1) & (tags.length - 2);
    }

    /** Whether {@code tag} is {@code page}'s with {@code NOTDIRTY}, {@code LOGGED} or not: a store to it goes slow. */
    boolean isNotDirty(long tag, long page) {
        return (tag | logged) == (page | notDirty | logged);
    }

    /**
     * Whether entry {@code k}'s write part holds no logged page (no ram_addr recorded): a fill of an unlogged page
     * may then write it without the lock. Answered from {@link #loggedPages} alone while no entry holds a logged
     * page, as in a TLB over RAM nobody logs. Owner only (the owner is the only writer of both).
     */
    boolean unlogged(int k) {
        return loggedPages == 0 || ramAddr[k >>> 1] == INVALID;
    }

    /**
     * Whether entry {@code k}'s write part holds no page that a client but CODE logs: {@link #fillCode} may then
     * replace it. Owner only.
     */
    boolean codeOnly(int k) {
        return (log[k >>> 1] & ~TlbPages.CODE) == 0;
    }

    /** Whether entry {@code k}'s write part holds {@code page}, in any form. */
    boolean holds(int k, long page) {
        final long t = tags[k];
        return t != INVALID && (t & pageMask) == page;
    }

    // ---------------------------------------------------------------- fills and invalidation

    /**
     * Fills the write part of entry {@code k} with {@code page} of {@code fr}, whose read part the TLB just filled,
     * when stores may be cached ({@link TlbPages#writeCacheable}): the page itself when nobody but CODE logs it and it
     * is not protected code; with {@code LOGGED} when VGA or MIGRATION logs it, it is not protected code, and every
     * such client's bit is already set (where {@link DirtyEpoch#REARMING}); else with {@code NOTDIRTY}, so that its
     * first store marks or reports it. A logged page's
     * entry needs native RAM: the dirty epoch's check after a hit must follow the store to raw memory (see
     * {@link DirtyEpoch#current()}).
     *
     * @param marks the range's resolved marks ({@link dev.guestmem.memory.internal.dispatch.RangeAccess#marks}) where
     *              the caller has them, else null: see {@link TlbPages#markedEpoch}
     * @return the tag written, or {@link #INVALID} when the write part was left as it was: a caller decides from this
     *         value, not from the entry read back (see {@code HostTlb.refillRam})
     */
    long fill(FlatRange fr, int k, long page, long addend, MemorySegment ram, DirtyMarks marks) {
        final int mask = fr.dirtyLogMask();
        if (!TlbPages.writeCacheable(fr) || (mask & ~TlbPages.CODE) != 0 && !ram.isNative()) {
            return INVALID;
        }
        final int i = k >>> 1;
        final long pageRamAddr = mask == 0 ? INVALID : fr.region().ramBlock.offset() + page + fr.offsetInRegion()
                - fr.start();
        if (pageRamAddr == INVALID && ramAddr[i] == INVALID) {
            // Neither the old page nor the new one is logged: resetDirty never writes this entry, so it needs no lock
            // (whose atomic instruction would wait for every store still in flight). A resize, which replaces the
            // arrays under the lock, happens only on the owner's thread.
            set(k, page, addend, ram);
            return page;
        }
        if (DirtyEpoch.REARMING && (mask & ~TlbPages.CODE) == 0 && codeOnly(k)) {
            return fillCode(k, page, addend, ram, pageRamAddr, null);
        }
        if (DirtyEpoch.REARMING && (mask & ~TlbPages.CODE) != 0 && ((mask | log[i]) & TlbPages.CODE) == 0) {
            // A page VGA or MIGRATION logs without CODE, over an entry whose page did not log CODE: no protect's visit
            // needs to mark this entry (one that ORs NOTDIRTY in anyway costs a slow store), so no lock, whose atomic
            // instruction would wait for every store still in flight; unless the page goes fast in a newer epoch,
            // whose re-arm of the other entries is made under the lock.
            final long marked = TlbPages.markedEpoch(bitmaps, mask, pageRamAddr, marks);
            if (marked == TlbPages.NOT_MARKED || marked == epoch) {
                return setWrite(k, loggedTag(i, page, marked), addend, ram, pageRamAddr, mask);
            }
            synchronized (lock) {
                return setWrite(k, loggedTag(i, page, marked), addend, ram, pageRamAddr, mask);
            }
        }
        synchronized (lock) {
            // The CODE bit is read under the lock, after any protect whose visit of this TLB came first.
            final long tag;
            if ((mask & TlbPages.CODE) != 0 && codeProtection.anyProtected(pageRamAddr, pageSize)) {
                tag = page | notDirty;
            } else if ((mask & ~TlbPages.CODE) == 0) {
                tag = page;
            } else {
                tag = loggedTag(i, page, DirtyEpoch.REARMING ? TlbPages.markedEpoch(bitmaps, mask, pageRamAddr, marks)
                        : TlbPages.NOT_MARKED);
            }
            return setWrite(k, tag, addend, ram, pageRamAddr, mask);
        }
    }

    /**
     * The write tag of a page VGA or MIGRATION logs, found marked in dirty epoch {@code marked} or
     * {@link TlbPages#NOT_MARKED}: fast ({@code LOGGED}, its stores check the epoch after storing, see
     * {@link #goneFast}) when every such client's bit is already set, as QEMU's {@code tlb_set_page} leaves
     * {@code TLB_NOTDIRTY} off a page that is not clean; else {@code NOTDIRTY}, and its first store marks it
     * ({@link #afterNotDirtyStore}). Under the lock unless {@code marked} is not a newer epoch than the entries'.
     */
    private long loggedTag(int i, long page, long marked) {
        if (marked == TlbPages.NOT_MARKED) {
            return page | notDirty;
        }
        goneFast(i, marked);
        return page | logged;
    }

    /** Writes entry {@code k}'s write part and its page's ram_addr and log mask; returns {@code tag}. */
    private long setWrite(int k, long tag, long addend, MemorySegment ram, long pageRamAddr, int mask) {
        set(k, tag, addend, ram);
        setRamAddr(k >>> 1, pageRamAddr, mask);
        return tag;
    }

    /**
     * {@link #fill} without the lock, for a page nobody but CODE logs (ram_addr {@code pageRamAddr}, or
     * {@link #INVALID} for one nobody logs) over an entry whose page nobody but CODE logged ({@link #codeOnly}), where
     * the asymmetric fence is installed ({@link DirtyEpoch#REARMING}): the fill a JIT emulator's misses make, its RAM
     * being CODE-logged. Returns the tag written, as {@code fill}. {@code codeBits}, the range's resolved CODE bits
     * ({@link dev.guestmem.memory.internal.dispatch.RangeAccess#codeBits}) or null, saves the walk of the bitmap's
     * table.
     *
     * <p>The entry is written whole with the page fast, then the page's CODE bit is read, and only then is
     * {@code NOTDIRTY} added if the page is protected. Why no protect is missed: a protect clears the bits, calls the
     * heavy fence (the take of {@link DirtyBitmap#testAndClearDirty}), and then visits this TLB ({@link #resetDirty}).
     * The fence's barrier lands on this thread somewhere in this method's program order: if before the bit's read, the
     * read sees the cleared bit and this method adds {@code NOTDIRTY} itself; if after it, every write here came before
     * the barrier and the visit, which follows the fence, sees the page's ram_addr and its fast tag and marks it. The
     * visit's mark is a compare-and-set of the tag it read, so a visit racing these writes can only add
     * {@code NOTDIRTY} to some value of the tag, never put back an older one, and this method's own write after the
     * read adds {@code NOTDIRTY} and nothing else. A visit that read the entry's old ram_addr may mark the new page:
     * its stores then go the slow way until {@link #afterNotDirtyStore} drops the mark or the entry is refilled.
     * Owner only; the fast tag must be written before the bit is read, and nothing but {@code NOTDIRTY} after it.
     */
    long fillCode(int k, long page, long addend, MemorySegment ram, long pageRamAddr, DirtyMarks codeBits) {
        setRamAddr(k >>> 1, pageRamAddr, pageRamAddr == INVALID ? 0 : TlbPages.CODE);
        tags[k + 1] = addend;
        if (segments != null) {
            segments[k >>> 1] = ram;
        }
        // Plain, and so by the letter of the JLS a write that may be split in halves: a visit's compare-and-set that
        // falls between them comes after the heavy fence's barrier on this thread, so the read below sees the
        // cleared bit and the write after it puts NOTDIRTY back (an opaque write here measured 1.8 ns more a miss).
        tags[k] = page;
        if (pageRamAddr == INVALID) {
            return page;
        }
        // A compiler barrier only (no instruction on x86): keeps the compiled code's writes above before the bit's
        // read below. The store-load order across threads is the protect's heavy fence's to give, not this.
        VarHandle.releaseFence();
        if (codeBits != null && codeBits.pageBits() == pageBits ? codeBits.clean(pageRamAddr)
                : codeProtection.anyProtected(pageRamAddr, pageSize)) {
            tags[k] = page | notDirty;
            return page | notDirty;
        }
        return page;
    }

    private void set(int k, long tag, long addend, MemorySegment ram) {
        tags[k] = tag;
        tags[k + 1] = addend;
        if (segments != null) {
            segments[k >>> 1] = ram;
        }
    }

    /** Sets the ram_addr and dirty-log mask of entry {@code i}'s page, keeping {@link #loggedPages}; under the lock. */
    private void setRamAddr(int i, long pageRamAddr, int mask) {
        if ((ramAddr[i] != INVALID) != (pageRamAddr != INVALID)) {
            loggedPages += pageRamAddr != INVALID ? 1 : -1;
        }
        ramAddr[i] = pageRamAddr;
        log[i] = mask;
    }

    /** Empties entry {@code k}'s write part if it holds {@code page} (QEMU's {@code tlb_flush_page}). */
    void invalidatePage(int k, long page) {
        synchronized (lock) {
            if (holds(k, page)) {
                set(k, INVALID, 0, null);
                setRamAddr(k >>> 1, INVALID, 0);
            }
        }
    }

    /** Empties every write part. */
    void invalidateAll() {
        synchronized (lock) {
            final long[] t = tags;
            for (int k = 0; k < t.length; k += 2) {
                t[k] = INVALID;
                t[k + 1] = 0;
            }
            if (segments != null) {
                // Dropping the segments lets RAM that left the map be freed.
                Arrays.fill(segments, null);
            }
            Arrays.fill(ramAddr, INVALID);
            Arrays.fill(log, 0);
            loggedPages = 0;
        }
        fast.clear();
    }

    /** Sets {@code NOTDIRTY} on entry {@code k} if it holds {@code page}: its stores leave the fast path. */
    void markSlow(int k, long page) {
        synchronized (lock) {
            if (holds(k, page)) {
                tags[k] |= notDirty;
            }
        }
    }

    // ---------------------------------------------------------------- stores

    /**
     * The slow half of a store of {@code size} bytes at guest-physical {@code addr} through entry {@code k}, whose tag
     * carried {@code NOTDIRTY}, after the store landed inside the page (QEMU's {@code notdirty_write}): marks the page
     * for the clients that log it but CODE, reports the bytes if the page is still protected code, then drops the
     * flag if it no longer is ({@code tlb_set_dirty}), in the dirty epoch read before the marks. A page
     * {@link #markSlow} marked without anyone logging it stays slow.
     */
    void afterNotDirtyStore(int k, long addr, int size) {
        final long ramPage = ramAddr[k >>> 1];
        if (ramPage == INVALID) {
            return;
        }
        final int mask = log[k >>> 1];
        final long page = addr & pageMask;
        final long marked = TlbPages.markAfterStore(bitmaps, mask, ramPage);
        if ((mask & TlbPages.CODE) != 0) {
            // No lock held: the listeners may use the TLB (which is why everything below is checked again).
            codeProtection.written(ramPage + (addr - page), size);
            if (codeProtection.anyProtected(ramPage, pageSize)) {
                return;
            }
        }
        synchronized (lock) {
            // Read again under the lock, as a fill does: a protect that clears a bit after this read visits this TLB
            // after the lock is released, and marks the entry again. A listener may have resized the TLB.
            final int j = slot(addr);
            final int i = j >>> 1;
            if (isNotDirty(tags[j], page) && ramAddr[i] == ramPage && log[i] == mask
                    && ((mask & TlbPages.CODE) == 0 || !codeProtection.anyProtected(ramPage, pageSize))) {
                if ((mask & ~TlbPages.CODE) != 0) {
                    goneFast(i, marked);
                    tags[j] = page | logged; // its stores check the epoch after storing
                } else {
                    tags[j] = page;
                }
            }
        }
    }

    /**
     * Records that entry {@code i} goes fast for a logged page found marked in dirty epoch {@code marked}, before its
     * tag is written. Entries that went fast in an older epoch are re-armed first (a take since may have cleared their
     * bits), which writes their tags: under the lock when {@code marked} is newer than {@link #epoch}.
     */
    private void goneFast(int i, long marked) {
        if (marked != epoch) {
            fast.rearm(tags, log, notDirty);
            epoch = marked;
        }
        fast.add(i);
    }

    // ---------------------------------------------------------------- atomics

    /**
     * The slow path of an atomic through entry {@code k}, one source for both TLBs (QEMU's {@code atomic_mmu_lookup}
     * after a miss): the TLB has filled the entry as a store miss would, if it could. When the entry's write part
     * holds the page of the naturally aligned guest-physical {@code addr} in any form and the host address is aligned
     * for {@code size}, the atomic is done through the entry, and what wrote is then treated as a store of its bytes
     * through the entry: {@code NOTDIRTY} marks, reports and drops the flag ({@link #afterNotDirtyStore}),
     * {@code LOGGED} checks the dirty epoch ({@link #afterLoggedStore}). Anything else is the address space's atomic
     * ({@link AtomicAccess#atomic}) on dispatch {@code d} with a CPU store's rule: refused when it cannot be done
     * atomically, marked and reported as its store when it wrote.
     *
     * @param seg    the segment the entry's addend indexes: the entry's block segment ({@link SoftTlb}), or the
     *               segment over the whole host address space ({@link HostTlb}); unused when the entry misses
     * @param result an array whose element 0 receives the {@link MemTxResult}
     * @return the old value, zero-extended; 0 when refused
     */
    long atomicSlow(AddressSpace as, AddressSpaceDispatch d, MemorySegment seg, int k, int op, long addr, long a,
                    long b, int size, boolean bigEndian, int[] result) {
        final long page = addr & pageMask;
        final long tag = tags[k];
        if ((addr & (size - 1)) == 0 && holds(k, page)) {
            final long off = addr + tags[k + 1];
            if (AtomicAccess.hostAligned(seg, off, size)) {
                final long old = AtomicAccess.access(op, seg, off, a, b, size, bigEndian);
                if (AtomicAccess.wrote(op, old, a, size)) {
                    if ((tag & notDirty) != 0) {
                        afterNotDirtyStore(k, addr, size);
                    } else if (tag != page) {
                        afterLoggedStore(k);
                    }
                }
                result[0] = MemTxResult.OK;
                return old;
            }
        }
        return AtomicAccess.atomic(as, d, op, addr, a, b, size, bigEndian, true, result);
    }

    /**
     * After a store through entry {@code k}, whose tag carried {@code LOGGED}: if the dirty epoch moved since such
     * entries went fast (a take may have cleared their pages' bits), {@link #epochMoved}. Only such stores read the
     * epoch; see {@link DirtyEpoch}.
     */
    void afterLoggedStore(int k) {
        if (DirtyEpoch.current() != epoch) {
            epochMoved(k);
        }
    }

    /**
     * QEMU's {@code tlb_reset_dirty} reaching the TLB on its own thread: marks the page just stored to through entry
     * {@code k} again, after the store, then sets {@code NOTDIRTY} on every write entry that went fast for a logged
     * page, so that their next stores mark their pages again.
     */
    private void epochMoved(int k) {
        final int i = k >>> 1;
        final long marked = TlbPages.markAfterStore(bitmaps, log[i], ramAddr[i]);
        if (fast.any()) {
            synchronized (lock) {
                fast.rearm(tags, log, notDirty);
            }
        }
        epoch = marked;
    }

    /**
     * QEMU's {@code tlb_reset_dirty} for the CODE client: sets {@code NOTDIRTY} on every write entry whose page
     * overlaps ram_addrs {@code [ramFirst, ramLast]}. Any thread, after the pages' CODE bits were cleared; scans the
     * entries (as QEMU does), unless none holds a logged page.
     */
    void resetDirty(long ramFirst, long ramLast) {
        synchronized (lock) {
            if (loggedPages == 0) {
                return;
            }
            final long pageLast = ~pageMask;
            final long[] t = tags;
            final long[] ramAddrs = ramAddr;
            for (int i = 0; i < ramAddrs.length; i++) {
                final long r = ramAddrs[i];
                if (r != INVALID && U64.le(r, ramLast) && U64.le(ramFirst, r + pageLast)) {
                    // A compare-and-set of the tag read, which the owner's hits read without the lock: the owner may
                    // be refilling this entry without it (fillCode), and a plain read-modify-write could put an
                    // older tag back over the addend of the new page. Only bit pageBits - 1 changes.
                    long tag;
                    do {
                        tag = (long) TAGS.getVolatile(t, 2 * i);
                    } while (!TAGS.compareAndSet(t, 2 * i, tag, tag | notDirty));
                }
            }
        }
    }
}
