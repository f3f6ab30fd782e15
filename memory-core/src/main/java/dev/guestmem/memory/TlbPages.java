package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.RamFaults;
import dev.guestmem.memory.internal.dirty.DirtyEpoch;
import dev.guestmem.memory.internal.dirty.DirtyMarks;

import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.dispatch.RangeAccess;

import static dev.guestmem.memory.internal.access.DirectAccess.isRamOrRamDevice;
import static dev.guestmem.memory.internal.access.DirectAccess.rangeWritesDirect;
import static dev.guestmem.memory.internal.access.DirectAccess.readsDirect;

/**
 * What the two soft TLBs ({@link SoftTlb} and {@link HostTlb}) decide alike about a page: whether an access stays in
 * one page, whether a flat range may be cached for a page (QEMU's {@code tlb_set_page} rules as this project keeps
 * them), and translated-code protection of the page behind an address ({@code tlb_protect_code}). Pages are TLB
 * pages: {@code pageMask} is {@code ~(pageSize - 1)}, QEMU's {@code TARGET_PAGE_MASK}.
 *
 * <p>Threading: stateless; the flat ranges are those of the view the caller loaded.
 */
final class TlbPages {
    /** The CODE client's bit in a dirty-log mask. */
    static final int CODE = DirtyMemoryClient.CODE.mask();

    private TlbPages() {
    }

    /** Whether {@code size} bytes from {@code addr} stay inside one page. */
    static boolean inPage(long addr, int size, long pageMask) {
        return (addr & ~pageMask) + size - 1 <= ~pageMask;
    }

    /** Whether the range covers all of the page starting at guest-physical {@code page}. */
    static boolean coversPage(FlatRange fr, long page, long pageMask) {
        return U64.le(fr.start(), page) && U64.le(page | ~pageMask, fr.last());
    }

    /**
     * Whether loads and fetches of the page at guest-physical {@code page} may be cached from {@code fr} (null for a
     * hole): memory read directly, covering the whole page, that cannot fault (see {@link RamFaults}).
     */
    static boolean readCacheable(FlatRange fr, long page, long pageMask) {
        return fr != null && readsDirect(fr) && coversPage(fr, page, pageMask) && !fr.region().ramMayFault;
    }

    /**
     * {@link #readCacheable(FlatRange, long, long)} from the access path's record of the range holding the page at
     * guest-physical {@code page} ({@link RangeAccess#NONE} for a hole): its {@link RangeAccess#READ} flag is the same
     * rule (memory read directly, present, that cannot fault), decided when the dispatch took the range in.
     */
    static boolean readCacheable(RangeAccess r, long page, long pageMask) {
        return (r.flags & RangeAccess.READ) != 0 && coversPage(r, page, pageMask);
    }

    /** Whether the range of {@code r} covers all of the page starting at guest-physical {@code page}. */
    static boolean coversPage(RangeAccess r, long page, long pageMask) {
        return U64.le(r.first, page) && U64.le(page | ~pageMask, r.last);
    }

    /**
     * Whether stores to a page that {@link #readCacheable} accepted may be cached too: writable through this mapping,
     * and, where the dirty epoch cannot re-arm the TLBs ({@link DirtyEpoch#REARMING} false: the fallback fence),
     * logged by no client but CODE (such VGA and MIGRATION pages are always written through the access path, which
     * marks them). See {@link SoftTlb}'s "Dirty memory and translated code".
     */
    static boolean writeCacheable(FlatRange fr) {
        return rangeWritesDirect(fr) && (DirtyEpoch.REARMING || (fr.dirtyLogMask() & ~CODE) == 0);
    }

    /**
     * Whether a CPU store that a TLB could not cache must be discarded ({@link MemTxResult#DECODE_ERROR}), QEMU's
     * {@code TLB_DISCARD_WRITE}: {@code fr} (null for a hole) is RAM read-only through this mapping, whose RAM the
     * address space's store would reach behind the read-only alias. (When the store runs past the section the address
     * space drops it too.)
     */
    static boolean discardsStore(FlatRange fr) {
        return fr != null && isRamOrRamDevice(fr) && fr.readonly();
    }

    /**
     * The slow half of a store to a write entry with {@code NOTDIRTY}, after the store landed: reads the dirty epoch,
     * then marks the page at ram_addr {@code ramPage} for every client of {@code log} but CODE (QEMU's
     * {@code notdirty_write}; CODE's report is the caller's). The entry may be made fast in the epoch returned: every
     * take after the read advances it past that value, and every bit a take before it swapped is set again by the
     * marks that follow the read (see {@link DirtyEpoch}).
     *
     * @param ramPage the ram_addr of the page, or {@code INVALID} ({@code -1}) for a page nobody logs
     * @return the dirty epoch read before marking
     */
    static long markAfterStore(DirtyBitmap[] bitmaps, int log, long ramPage) {
        // Acquire: a take that advanced the epoch to this value swapped its words before; the marks below see them.
        final long epoch = DirtyEpoch.acquire();
        final int mask = log & ~CODE;
        if (mask != 0 && ramPage != -1) {
            for (int c = 0; c < bitmaps.length; c++) {
                if ((mask & (1 << c)) != 0) {
                    bitmaps[c].setDirtyRange(ramPage, 1);
                }
            }
        }
        return epoch;
    }

    /** {@link #markedEpoch}'s answer when a bit is clear. */
    static final long NOT_MARKED = -1;

    /**
     * QEMU's {@code cpu_physical_memory_is_clean} for a write entry's fill: reads the dirty epoch, then whether the page
     * at ram_addr {@code ramPage} is marked for every client of {@code log} but CODE. When it is, the entry may go fast
     * in the epoch returned, as after {@link #markAfterStore}: the bits were found set by reads made after that acquire
     * read, so a take that clears any of them later advances the epoch past it, and the fast store's check after
     * storing sees that (see {@link DirtyEpoch}). When a bit is clear, {@link #NOT_MARKED}: the first store must mark.
     * {@code marks}, the range's resolved marks ({@link dev.guestmem.memory.internal.dispatch.RangeAccess#marks}) or
     * null, saves the walk of each bitmap's table: 7 to 8 ns of a 22 ns store miss on such RAM (README, "A fill of a
     * page already marked").
     */
    static long markedEpoch(DirtyBitmap[] bitmaps, int log, long ramPage, DirtyMarks marks) {
        // Acquire: a take that advanced the epoch to this value swapped its words before; the reads below see them.
        final long epoch = DirtyEpoch.acquire();
        if (marks != null) {
            return marks.marked(ramPage) ? epoch : NOT_MARKED;
        }
        final int mask = log & ~CODE;
        for (int c = 0; c < bitmaps.length; c++) {
            if ((mask & (1 << c)) != 0 && !bitmaps[c].getDirty(ramPage, 1)) {
                return NOT_MARKED;
            }
        }
        return epoch;
    }

    /**
     * QEMU's {@code get_page_addr_code} then {@code tlb_protect_code} on dispatch {@code d}: protects the target pages
     * of the TLB page holding {@code addr}, as far as the RAM behind {@code addr} covers it; see
     * {@link SoftTlb#protectCode}.
     *
     * @return the ram_addr of {@code addr}, or {@link RamList#INVALID_RAM_ADDR} when it is not memory read directly
     */
    static long protectCode(AddressSpaceDispatch d, long addr, long pageMask, CodeProtection codeProtection) {
        final FlatRange fr = d.flatRange(d.sectionIndex(addr));
        if (fr == null || !readsDirect(fr)) {
            return RamList.INVALID_RAM_ADDR;
        }
        if ((fr.dirtyLogMask() & CODE) == 0) {
            throw new IllegalStateException("addr=" + U64.hex(addr) + " region=" + fr.region().name()
                    + ": translated code needs CODE logging, setLog(true, DirtyMemoryClient.CODE)");
        }
        final long ramBase = fr.region().ramBlock.offset() + fr.offsetInRegion() - fr.start();
        final long first = U64.max(addr & pageMask, fr.start());
        final long last = U64.min(addr | ~pageMask, fr.last());
        codeProtection.protect(ramBase + first, last - first + 1);
        return ramBase + addr;
    }
}
