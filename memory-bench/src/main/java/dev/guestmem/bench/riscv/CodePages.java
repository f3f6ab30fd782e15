package dev.guestmem.bench.riscv;

import dev.guestmem.memory.CodeProtection;

import java.util.HashMap;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The pages of one machine's RAM and ROM that hold decoded instructions of some hart, each with the number of harts
 * that hold it: QEMU's per-page descriptor ({@code PageDesc}) and its list of translation blocks, reduced to a count.
 * A page is protected ({@link CodeProtection#protect}) before a hart decodes from it, and unprotected
 * ({@link CodeProtection#unprotect}) when the last hart that held it drops it (a code write, a map change, an eviction
 * from the hart's cache, the hart's end), as QEMU's TB invalidation calls {@code tlb_unprotect_code} when a page's last
 * translation block goes. So stores to a page nobody executes any more take the TLBs' fast path again.
 *
 * <h2>The protocol</h2>
 * A hart that is about to decode from a page reads {@link #unprotects()}, protects the page (through its TLB, which
 * also finds the page's ram_addr), then {@link #hold holds} it, and decodes only after that returned. A hart that
 * drops the page {@link #release releases} it. The count and the unprotect both change under this object's lock, so
 * a page is never unprotected while a hart holds it. Between a hart's protect and its hold, the last holder may have
 * released and unprotected the page; {@code hold} sees that from the changed count of unprotects and protects the page
 * again before it returns. The count moves after the unprotect, so a hart that read the new count protected after the
 * unprotect and need not protect again. Protecting is done outside the lock, because it may take the memory system's locks (a
 * listener's dirty log), while the code-write reports that release pages may come from a thread holding them.
 *
 * <p>Pages are 4 KiB ({@link DecodedPage#PAGE_SIZE}) and named by the ram_addr of their first byte.
 *
 * <p>Threading: any thread; {@link #release} is also called from code-write listeners on the storing thread.
 */
public final class CodePages {
    private final CodeProtection codeProtection;
    /** Holders per page (ram_addr of its first byte); guarded by this object's lock. */
    private final HashMap<Long, Integer> holders = new HashMap<>();
    /** Pages unprotected so far; incremented under the lock, read without it by harts about to protect. */
    private final AtomicLong unprotects = new AtomicLong();

    /** The pages of the machine whose translated-code protection is {@code codeProtection}. */
    public CodePages(CodeProtection codeProtection) {
        this.codeProtection = Objects.requireNonNull(codeProtection, "codeProtection");
    }

    /** The code protection this object protects and unprotects pages with. */
    public CodeProtection codeProtection() {
        return codeProtection;
    }

    /** Pages unprotected so far: read it before protecting a page, and give it to {@link #hold}. */
    public long unprotects() {
        return unprotects.get();
    }

    /**
     * Counts one more holder of the page at ram_addr {@code page}, which the caller protected after reading
     * {@code unprotectsBefore} from {@link #unprotects()}; protects the page again if a page was unprotected since.
     * On return the page is protected and stays so until its last holder releases it.
     */
    public void hold(long page, long unprotectsBefore) {
        final boolean again;
        synchronized (this) {
            holders.merge(page, 1, Integer::sum);
            again = unprotects.get() != unprotectsBefore;
        }
        if (again) {
            // This hart holds the page now: nobody unprotects it until it releases, so this protect stands.
            codeProtection.protect(page, DecodedPage.PAGE_SIZE);
        }
    }

    /**
     * Counts one holder of the page at ram_addr {@code page} less; the last one unprotects it.
     *
     * @throws IllegalStateException if the page has no holder (a release without its hold)
     */
    public void release(long page) {
        synchronized (this) {
            final Integer n = holders.get(page);
            if (n == null) {
                throw new IllegalStateException("page=0x" + Long.toHexString(page) + ": released without a holder");
            }
            if (n > 1) {
                holders.put(page, n - 1);
                return;
            }
            holders.remove(page);
            codeProtection.unprotect(page, DecodedPage.PAGE_SIZE);
            // After the unprotect, under the lock. A hart that read the old count protects again at its hold (which
            // takes the lock, so it sees the new count); a hart that read the new count protects after the unprotect
            // (this volatile write orders it before that read), so its own protect stands.
            unprotects.incrementAndGet();
        }
    }

    /** Harts that hold the page at ram_addr {@code page} now. */
    public synchronized int holders(long page) {
        return holders.getOrDefault(page, 0);
    }

    /** Pages some hart holds now. */
    public synchronized int pages() {
        return holders.size();
    }

    @Override
    public synchronized String toString() {
        return "CodePages[" + holders.size() + " pages, " + unprotects.get() + " unprotects]";
    }
}
