package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CODE client as a JIT uses it ({@link CodeProtection}, QEMU's {@code tlb_protect_code} and
 * {@code TLB_NOTDIRTY}): after a page is protected, every store that lands in it is reported, exactly once and with
 * the bytes it wrote, whichever path wrote it (a soft TLB on this thread or another, the address space's stores,
 * bulk writes, fills and ROM loads, DMA, a region cache); stores to pages without translated code are never reported
 * and keep the TLB's fast path; loads and fetches of protected pages stay on the fast path.
 *
 * <p>The map: {@code ram} (16 pages at 0, logs CODE), {@code data} (4 pages at 0x100000, logs nothing) and
 * {@code vram} (4 pages at 0x200000, logs VGA and CODE). Reports are kept as {@code "page+offset/length"} of
 * {@code ram}'s block, in order.
 */
class CodeProtectionTest {
    private static final long PAGE = 4096;
    private static final long DATA = 0x10_0000;
    private static final long VRAM = 0x20_0000;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    private MemorySystem m;
    private MemoryRegion root;
    private MemoryRegion ram;
    private MemoryRegion vram;
    private AddressSpace as;
    private CodeProtection code;
    private final List<String> reports = new ArrayList<>();
    private final List<Thread> reportThreads = new ArrayList<>();
    /** Pages of {@code ram} with translated code; the listener drops a page's code and unprotects it, as a JIT. */
    private final Set<Long> translated = new HashSet<>();
    private boolean unprotectOnReport = true;

    @BeforeEach
    void setUp() {
        m = new MemorySystem();
        root = m.container("root", U64.SIZE_2_64);
        ram = m.ram("ram", 16 * PAGE);
        vram = m.ram("vram", 4 * PAGE);
        root.addSubregion(0, ram);
        root.addSubregion(DATA, m.ram("data", 4 * PAGE));
        root.addSubregion(VRAM, vram);
        ram.setLog(true, DirtyMemoryClient.CODE);
        vram.setLog(true, DirtyMemoryClient.CODE);
        vram.setLog(true, DirtyMemoryClient.VGA);
        as = m.addressSpace("memory", root);
        code = CodeProtection.of(m);
        code.addListener((ramAddr, length) -> {
            synchronized (reports) {
                reports.add(describe(ramAddr, length));
                reportThreads.add(Thread.currentThread());
            }
            long page = ramAddr & -PAGE;
            if (unprotectOnReport) {
                synchronized (translated) {
                    translated.remove(page);
                }
                code.unprotect(page, PAGE);
            }
        });
    }

    /** {@code "page+offset/length"} within {@code ram} or {@code vram}. */
    private String describe(long ramAddr, long length) {
        for (MemoryRegion r : new MemoryRegion[] {ram, vram}) {
            long off = ramAddr - r.ramBlock().offset();
            if (off >= 0 && off < r.size()) {
                return r.name() + ":" + off / PAGE + "+" + Long.toHexString(off % PAGE) + "/" + length;
            }
        }
        return "other:" + Long.toHexString(ramAddr) + "/" + length;
    }

    private List<String> takeReports() {
        synchronized (reports) {
            List<String> r = List.copyOf(reports);
            reports.clear();
            reportThreads.clear();
            return r;
        }
    }

    /** The JIT translates the page holding {@code addr}: protects it through its TLB, then reads the code. */
    private long translate(SoftTlb tlb, long addr) {
        long ramAddr = tlb.protectCode(addr);
        synchronized (translated) {
            translated.add(ramAddr & -PAGE);
        }
        tlb.ldlCode(addr);
        return ramAddr;
    }

    // ---------------------------------------------------------------- the soft TLB, one thread

    /**
     * A JIT-like loop on one vCPU: it stores into a page, translates code from it, then overwrites that code. The
     * first store after the translation is reported with its bytes, and only it: the listener drops the code and
     * unprotects the page, and the next stores are fast again. Loads and fetches of the protected page never left the
     * fast path. Pages without code report nothing.
     */
    @Test
    void selfModifyingStoreIsReportedOnceThenFastAgain() {
        SoftTlb tlb = new SoftTlb(as);
        tlb.stqLe(3 * PAGE, 1);                                     // data part cached, fast
        tlb.ldlCode(3 * PAGE);                                      // code part cached
        long misses = tlb.missCount();
        assertEquals(ram.ramBlock().offset() + 3 * PAGE + 0x10, translate(tlb, 3 * PAGE + 0x10));
        assertTrue(code.isProtected(ram.ramBlock().offset() + 3 * PAGE));
        assertEquals(1, tlb.ldqLe(3 * PAGE));
        assertEquals(0, tlb.ldlCode(3 * PAGE + 0x10));
        assertEquals(misses, tlb.missCount(), "loads and fetches of a protected page stay fast");

        tlb.stlLe(3 * PAGE + 0x20, 0x1234_5678);
        assertEquals(List.of("ram:3+20/4"), takeReports());
        assertEquals(0x1234_5678, tlb.ldlLe(3 * PAGE + 0x20), "the store landed");
        assertEquals(misses + 1, tlb.missCount(), "the store went to the slow path");
        assertFalse(code.isProtected(ram.ramBlock().offset() + 3 * PAGE), "the JIT unprotected the page");

        tlb.stlLe(3 * PAGE + 0x20, 2);
        tlb.stqLe(4 * PAGE, 3);                                     // never translated
        tlb.stqLe(4 * PAGE, 4);
        assertEquals(List.of(), takeReports());
        assertEquals(misses + 2, tlb.missCount(), "page 3 is fast again; page 4 missed once");
        assertEquals(MemTxResult.OK, tlb.takeResult());
    }

    /**
     * Clearing CODE bits through the region (QEMU's {@code memory_region_reset_dirty} and
     * {@code memory_region_snapshot_and_clear_dirty}, which reset the TLBs too) protects like {@code protect}: a
     * TLB that stored to the page on its fast path reports the next store.
     */
    @Test
    void clearingCodeBitsThroughTheRegionReachesCachedWriteEntries() {
        SoftTlb tlb = new SoftTlb(as);
        tlb.stqLe(6 * PAGE, 1);
        tlb.stqLe(7 * PAGE, 1);
        tlb.stqLe(6 * PAGE, 2);
        tlb.stqLe(7 * PAGE, 2);
        assertEquals(List.of(), takeReports(), "no code yet: fast stores");

        ram.resetDirty(6 * PAGE, PAGE, DirtyMemoryClient.CODE);
        assertTrue(code.isProtected(ram.ramBlock().offset() + 6 * PAGE));
        tlb.stqLe(6 * PAGE + 8, 3);
        assertEquals(List.of("ram:6+8/8"), takeReports());

        DirtySnapshot taken = ram.snapshotAndClearDirty(0, 16 * PAGE, DirtyMemoryClient.CODE);
        assertTrue(taken.getDirty(ram.ramBlock().offset() + 7 * PAGE, PAGE), "page 7 held no code: its bit was set");
        tlb.stqLe(7 * PAGE + 16, 4);
        assertEquals(List.of("ram:7+10/8"), takeReports());
    }

    /** {@code protect} tells listeners with dirty logs of their own, as QEMU's test-and-clear does. */
    @Test
    void protectTellsLogClearListeners() {
        List<String> cleared = new ArrayList<>();
        as.registerListener(new MemoryListener() {
            @Override
            public void logClear(MemoryRegionSection section) {
                cleared.add(section.region().name() + "@" + Long.toHexString(section.offsetWithinRegion()) + "+"
                        + Long.toHexString(section.sizeMinusOne() + 1));
            }
        });
        SoftTlb tlb = new SoftTlb(as);
        translate(tlb, 9 * PAGE + 0x40);
        assertEquals(List.of("ram@9000+1000"), cleared);
    }

    /** While the JIT keeps code on the page, every store is reported, each with its own bytes, and stays slow. */
    @Test
    void aPageThatKeepsItsCodeReportsEveryStore() {
        unprotectOnReport = false;
        SoftTlb tlb = new SoftTlb(as);
        translate(tlb, 5 * PAGE);
        long misses = tlb.missCount();
        tlb.stb(5 * PAGE + 1, 1);
        tlb.stwBe(5 * PAGE + 2, 2);
        tlb.stqBe(5 * PAGE + 8, 3);
        tlb.stlLe(5 * PAGE + 0xffa, 4);                            // unaligned, still inside the page
        assertEquals(List.of("ram:5+1/1", "ram:5+2/2", "ram:5+8/8", "ram:5+ffa/4"), takeReports());
        assertEquals(misses + 4, tlb.missCount());
        code.unprotect(ram.ramBlock().offset() + 5 * PAGE, PAGE);
        tlb.stb(5 * PAGE, 5);
        tlb.stb(5 * PAGE, 6);
        assertEquals(List.of(), takeReports());
        assertEquals(misses + 5, tlb.missCount(), "one slow store drops NOTDIRTY, the next is fast");
    }

    /**
     * A store that crosses from an unprotected page into a protected one reports only the protected page's bytes;
     * fills of a protected page start with NOTDIRTY (a TLB that never saw the page before the protect).
     */
    @Test
    void pageCrossingStoresReportOnlyTheProtectedPage() {
        unprotectOnReport = false;
        code.protect(ram.ramBlock().offset() + 7 * PAGE, PAGE);
        SoftTlb tlb = new SoftTlb(as);
        tlb.stqLe(7 * PAGE - 4, -1L);                               // pages 6 | 7
        tlb.stqLe(8 * PAGE - 2, -1L);                               // pages 7 | 8
        tlb.stqLe(7 * PAGE + 8, 1);                                 // fills page 7 with NOTDIRTY
        tlb.stqLe(7 * PAGE + 8, 2);
        assertEquals(List.of("ram:7+0/4", "ram:7+ffe/2", "ram:7+8/8", "ram:7+8/8"), takeReports());
    }

    /**
     * A listener may use the storing TLB (here: it flushes it, as a JIT that drops its state); the store has landed
     * and the TLB keeps working.
     */
    @Test
    void theListenerMayUseTheStoringTlb() {
        SoftTlb tlb = new SoftTlb(as);
        code.addListener((ramAddr, length) -> tlb.flush());
        translate(tlb, 2 * PAGE);
        tlb.stqLe(2 * PAGE + 0x40, 7);
        assertEquals(List.of("ram:2+40/8"), takeReports());
        assertEquals(7, tlb.ldqLe(2 * PAGE + 0x40));
        assertEquals(1, tlb.flushCount());
    }

    // ---------------------------------------------------------------- another vCPU

    /**
     * vCPU B caches page 9 for fast stores; vCPU A then translates code from it. B's next store, which begins after
     * A's protect returned (the queue hands the news over), is reported, on B's thread, once.
     */
    @Test
    void anotherThreadsCachedPageReportsAfterTheProtect() throws Exception {
        SynchronousQueue<String> toB = new SynchronousQueue<>();
        SynchronousQueue<Long> fromB = new SynchronousQueue<>();
        Thread[] bThread = new Thread[1];
        CompletableFuture<Void> b = CompletableFuture.runAsync(() -> {
            bThread[0] = Thread.currentThread();
            SoftTlb tlb = new SoftTlb(as);
            try {
                tlb.stqLe(9 * PAGE, 1);                             // cached for fast stores
                tlb.stqLe(9 * PAGE, 2);
                fromB.put(tlb.missCount());
                assertEquals("translated", toB.take());
                tlb.stqLe(9 * PAGE + 0x18, 3);
                tlb.stqLe(9 * PAGE + 0x18, 4);                      // unprotected by then: fast, unreported
                fromB.put(tlb.missCount());
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        });
        long before = fromB.poll(10, TimeUnit.SECONDS);
        assertEquals(1, before, "B's second store hit");
        SoftTlb a = new SoftTlb(as);
        translate(a, 9 * PAGE);
        toB.put("translated");
        long after = fromB.poll(10, TimeUnit.SECONDS);
        b.get(10, TimeUnit.SECONDS);
        List<Thread> threads;
        synchronized (reports) {
            threads = List.copyOf(reportThreads);
        }
        assertEquals(List.of("ram:9+18/8"), takeReports());
        assertEquals(List.of(bThread[0]), threads, "reported on the storing thread");
        assertEquals(before + 1, after, "one slow store, then fast again");
        assertEquals(4, as.ldqLe(9 * PAGE + 0x18, U, null));
    }

    // ---------------------------------------------------------------- every other path that writes RAM

    /**
     * The address space's stores, bulk writes and fills, ROM loads, DMA mappings and region caches report the
     * protected pages they wrote, after writing, with exactly the bytes that fell in each; unprotected pages in the
     * same writes are not mentioned.
     */
    @Test
    void addressSpaceDmaAndCacheWritesReport() {
        unprotectOnReport = false;
        long base = ram.ramBlock().offset();
        code.protect(base + 2 * PAGE, PAGE);
        code.protect(base + 6 * PAGE, 2 * PAGE);

        as.stqLe(2 * PAGE + 8, 1, U);
        as.stqLe(3 * PAGE + 8, 1, U);
        assertEquals(List.of("ram:2+8/8"), takeReports());

        as.write(2 * PAGE - 4, U, new byte[PAGE_INT + 8], 0, PAGE_INT + 8);   // pages 1, 2, 3
        assertEquals(List.of("ram:2+0/4096"), takeReports());

        as.set(5 * PAGE + 0xff0, (byte) 1, 0x20, U);                 // pages 5 | 6
        as.writeRom(8 * PAGE - 2, U, new byte[4], 0, 4);             // pages 7 | 8
        assertEquals(List.of("ram:6+0/16", "ram:7+ffe/2"), takeReports());

        DmaMapping dma = as.map(6 * PAGE + 0x100, 0x200, true, U);
        assertFalse(dma.isBounce());
        dma.segment().fill((byte) 2);
        assertEquals(List.of(), takeReports(), "a mapping reports when it is unmapped");
        as.unmap(dma, true, 0x80);
        assertEquals(List.of("ram:6+100/128"), takeReports());

        MemoryRegionCache cache = as.cacheInit(7 * PAGE, PAGE, true);
        cache.stlLe(0x10, 5, U);
        cache.invalidate(0x10, 4);
        assertEquals(List.of("ram:7+10/4"), takeReports());
        assertEquals(5, as.ldlLe(7 * PAGE + 0x10, U, null));
    }

    private static final int PAGE_INT = (int) PAGE;

    /**
     * Memory that VGA logs keeps its always-slow stores (see {@link SoftTlb}): with CODE as well, a TLB store marks
     * the VGA bit and reports the protected page, and stores there never go fast, protected or not.
     */
    @Test
    void vgaLoggedCodeStaysSlowAndBothClientsHear() {
        SoftTlb tlb = new SoftTlb(as);
        long ramAddr = translate(tlb, VRAM + PAGE);
        vram.resetDirty(0, 4 * PAGE, DirtyMemoryClient.VGA);
        long misses = tlb.missCount();
        tlb.stqLe(VRAM + PAGE + 0x30, 1);
        assertEquals(List.of("vram:1+30/8"), takeReports());
        assertTrue(vram.getDirty(PAGE, PAGE, DirtyMemoryClient.VGA));
        assertFalse(code.isProtected(ramAddr), "unprotected by the listener");
        tlb.stqLe(VRAM + PAGE + 0x30, 2);
        tlb.stqLe(VRAM + 2 * PAGE, 2);
        assertEquals(List.of(), takeReports());
        assertEquals(misses + 3, tlb.missCount(), "every store to VGA-logged memory is slow");
    }

    // ---------------------------------------------------------------- what protectCode takes

    /**
     * protectCode names memory by ram_addr, through aliases too; refuses RAM that does not log CODE; and answers
     * INVALID_RAM_ADDR for what is not read directly (MMIO, holes).
     */
    @Test
    void protectCodeTakesCodeLoggedMemoryOnly() {
        root.addSubregion(0x30_0000, m.alias("ram-mirror", ram, 4 * PAGE, PAGE));
        root.addSubregion(0x40_0000, m.io("dev", PAGE, MemoryRegionOps.builder()
                .read((addr, size) -> 0)
                .build()));
        SoftTlb tlb = new SoftTlb(as);
        assertEquals(ram.ramBlock().offset() + 4 * PAGE + 0x44, tlb.protectCode(0x30_0044));
        tlb.stb(4 * PAGE + 1, 1);                                   // the same page, through the RAM itself
        assertEquals(List.of("ram:4+1/1"), takeReports());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> tlb.protectCode(DATA + 8));
        assertEquals("addr=0x100008 region=data: translated code needs CODE logging, "
                + "setLog(true, DirtyMemoryClient.CODE)", e.getMessage());
        assertEquals(RamList.INVALID_RAM_ADDR, tlb.protectCode(0x40_0000));
        assertEquals(RamList.INVALID_RAM_ADDR, tlb.protectCode(0x50_0000));
        tlb.stqLe(DATA, 1);
        as.stqLe(DATA, 1, U);
        assertEquals(List.of(), takeReports());
    }

    /**
     * TLB pages smaller than target pages (1 KiB against 4 KiB): protecting one TLB page protects its whole target
     * page, so a store through another TLB page of it, cached before, is reported too.
     */
    @Test
    void smallTlbPagesShareTheTargetPagesBit() {
        unprotectOnReport = false;
        SoftTlb tlb = new SoftTlb(m.addressSpace("small", root, 10));
        tlb.stqLe(10 * PAGE + 0xc00, 1);
        tlb.protectCode(10 * PAGE + 0x10);
        tlb.stqLe(10 * PAGE + 0xc00, 2);
        tlb.stqLe(10 * PAGE + 0x400, 3);
        tlb.stqLe(11 * PAGE, 4);
        assertEquals(List.of("ram:10+c00/8", "ram:10+400/8"), takeReports());
    }

    /** Listeners come and go; a protected page with no listener stores normally. */
    @Test
    void listenersAreAddedAndRemoved() {
        CodeProtection.Listener extra = (ramAddr, length) -> reports.add("extra");
        code.addListener(extra);
        unprotectOnReport = false;
        code.protect(ram.ramBlock().offset(), PAGE);
        as.stb(0, 1, U);
        assertEquals(2, takeReports().size());
        assertTrue(code.removeListener(extra));
        assertFalse(code.removeListener(extra));
        as.stb(0, 2, U);
        assertEquals(List.of("ram:0+0/1"), takeReports());
    }
}
