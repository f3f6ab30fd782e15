package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.AsymmetricFence;
import dev.guestmem.memory.AtomicOp;
import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.Rcu;
import dev.guestmem.memory.SoftTlb;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.function.LongSupplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * QEMU's {@code TLB_NOTDIRTY} for VGA and MIGRATION in both soft TLBs, step by step, with the fence this JVM installed
 * (memory-offheap's tests run with {@code membarrier}, and again with the fallback in the {@code fallback-fence} run):
 * with {@code membarrier} a logged page's first store leaves the fast path and marks it, later stores hit, a take
 * re-arms the TLB (the next store to the page hits and marks it again, other pages' next stores leave the fast path
 * once), and the bits always name every page stored to since the last take; with the fallback every store to a logged
 * page leaves the fast path and marks it.
 */
class TlbNotDirtyTest {
    private static final long PAGE = 4096;
    private static final long BASE = 0x10_0000;

    /** Which TLB, and which client logs the RAM (VGA with {@code setLog}, MIGRATION with global logging). */
    enum Case {
        SOFT_VGA, SOFT_MIGRATION, HOST_VGA, HOST_MIGRATION;

        boolean host() {
            return this == HOST_VGA || this == HOST_MIGRATION;
        }

        DirtyMemoryClient client() {
            return this == SOFT_VGA || this == HOST_VGA ? DirtyMemoryClient.VGA : DirtyMemoryClient.MIGRATION;
        }
    }

    /** A guest's 8-byte store through a TLB, and the TLB's miss count. */
    private interface Tlb {
        void stqLe(long addr, long value);

        long missCount();

        int takeResult();
    }

    @ParameterizedTest
    @EnumSource(Case.class)
    void aLoggedPageGoesFastOnceMarkedAndEveryTakeReArmsIt(Case c) {
        final boolean rearming = AsymmetricFence.installed() != AsymmetricFence.fallback();
        final Rig rig = Rig.of(c);
        final AddressSpace as = rig.as();
        final MemorySystem system = rig.system();
        final MemoryRegion ram = rig.ram();
        final DirtyBitmap bitmap = rig.bitmap();
        final long ramAddr = rig.ramAddr();
        final LongSupplier takeAll = () -> bitmap.snapshotAndClear(ramAddr, 16 * PAGE).dirtyPageCount();

        if (c.host()) {
            try (Rcu.Reader reader = system.rcu().register()) {
                final HostTlb tlb = new HostTlb(as, reader);
                tlb.begin();
                try {
                    steps(rearming, ram, bitmap, ramAddr, takeAll, new Tlb() {
                        @Override
                        public void stqLe(long addr, long value) {
                            tlb.stqLe(addr, value);
                        }

                        @Override
                        public long missCount() {
                            return tlb.missCount();
                        }

                        @Override
                        public int takeResult() {
                            return tlb.takeResult();
                        }
                    });
                } finally {
                    tlb.end();
                }
            }
        } else {
            final SoftTlb tlb = new SoftTlb(as);
            steps(rearming, ram, bitmap, ramAddr, takeAll, new Tlb() {
                @Override
                public void stqLe(long addr, long value) {
                    tlb.stqLe(addr, value);
                }

                @Override
                public long missCount() {
                    return tlb.missCount();
                }

                @Override
                public int takeResult() {
                    return tlb.takeResult();
                }
            });
        }
        rig.close();
    }

    /** The tests' RAM, mapped at {@code BASE} and logged by one client, its bits taken once (a new block is dirty). */
    private record Rig(MemorySystem system, MemoryRegion root, MemoryRegion ram, AddressSpace as, DirtyBitmap bitmap,
                       long ramAddr, DirtyMemoryClient client) {
        static Rig of(Case c) {
            final MemorySystem system = new MemorySystem();
            final MemoryRegion ram = system.ram("ram", 16 * PAGE, HostMemoryBackend.memfd().build());
            final MemoryRegion root = system.container("system", 1L << 32);
            root.addSubregion(BASE, ram);
            final AddressSpace as = system.addressSpace("memory", root);
            if (c.client() == DirtyMemoryClient.VGA) {
                ram.setLog(true, DirtyMemoryClient.VGA);
            } else {
                system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
            }
            final DirtyBitmap bitmap = system.dirtyBitmap(c.client());
            final long ramAddr = ram.ramBlock().offset();
            bitmap.snapshotAndClear(ramAddr, 16 * PAGE);
            return new Rig(system, root, ram, as, bitmap, ramAddr, c.client());
        }

        void close() {
            if (client == DirtyMemoryClient.MIGRATION) {
                system.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
            }
            release(system, root, ram);
        }
    }

    /** Ends the test's memfd RAM at once: a memfd a cleaner closed later would upset the tests that count fds. */
    private static void release(MemorySystem system, MemoryRegion root, MemoryRegion... regions) {
        system.transaction(() -> {
            for (MemoryRegion r : regions) {
                root.delSubregion(r);
            }
        });
        for (MemoryRegion r : regions) {
            r.destroy();
        }
        system.rcu().barrier();
    }

    /**
     * A store that hits neither tag form but lands inside a cached page (an unaligned one) goes through the slow path's
     * "inside a cached page" branch: for a marked logged page (its tag carries {@code LOGGED}) that branch must check
     * the dirty epoch as a hit does, so that after a take the store marks the page again; a store hit to RAM nobody
     * logs marks nothing and leaves the logged page's entry as it was.
     */
    @ParameterizedTest
    @EnumSource(value = Case.class, names = {"SOFT_VGA", "HOST_VGA"})
    void anUnalignedStoreToAMarkedLoggedPageMarksItAgainAfterATake(Case c) {
        final boolean rearming = AsymmetricFence.installed() != AsymmetricFence.fallback();
        final MemorySystem system = new MemorySystem();
        final MemoryRegion ram = system.ram("ram", 16 * PAGE, HostMemoryBackend.memfd().build());
        final MemoryRegion plain = system.ram("plain", 16 * PAGE, HostMemoryBackend.memfd().build());
        final MemoryRegion root = system.container("system", 1L << 32);
        root.addSubregion(BASE, ram);
        root.addSubregion(BASE + 16 * PAGE, plain);
        final AddressSpace as = system.addressSpace("memory", root);
        ram.setLog(true, DirtyMemoryClient.VGA);
        final DirtyBitmap bitmap = system.dirtyBitmap(DirtyMemoryClient.VGA);
        final long ramAddr = ram.ramBlock().offset();
        bitmap.snapshotAndClear(ramAddr, 16 * PAGE); // a new block starts dirty
        final long p = BASE + 5 * PAGE;
        final long u = BASE + 20 * PAGE; // in the RAM nobody logs

        if (c.host()) {
            try (Rcu.Reader reader = system.rcu().register()) {
                final HostTlb tlb = new HostTlb(as, reader);
                tlb.begin();
                try {
                    unalignedSteps(rearming, bitmap, ramAddr, p, u, tlb::stqLe, tlb::missCount);
                    assertEquals(MemTxResult.OK, tlb.takeResult());
                } finally {
                    tlb.end();
                }
            }
        } else {
            final SoftTlb tlb = new SoftTlb(as);
            unalignedSteps(rearming, bitmap, ramAddr, p, u, tlb::stqLe, tlb::missCount);
            assertEquals(MemTxResult.OK, tlb.takeResult());
        }
        assertEquals(0x1122_3344_5566_7788L, ram.ramSegment().get(ValueLayout.JAVA_LONG_UNALIGNED, 5 * PAGE + 20),
                "the unaligned store's bytes");
        assertEquals(7, plain.ramSegment().get(ValueLayout.JAVA_LONG, 4 * PAGE + 8), "the unlogged page's store");
        release(system, root, ram, plain);
    }

    /** A guest's 8-byte store. */
    private interface Store {
        void stqLe(long addr, long value);
    }

    private static void unalignedSteps(boolean rearming, DirtyBitmap bitmap, long ramAddr, long p, long u,
                                       Store tlb, LongSupplier misses) {
        final long pageP = ramAddr + 5 * PAGE;
        tlb.stqLe(p, 1); // marks p; with membarrier its entry goes fast (LOGGED)
        tlb.stqLe(p + 8, 2);
        tlb.stqLe(u, 3); // fills the unlogged page's entry
        tlb.stqLe(u + 8, 4);
        assertEquals(rearming ? 2 : 3, misses.getAsLong(), "p's and u's first stores (and, fallback, p's second)");
        assertTrue(bitmap.getDirty(pageP, PAGE), "p marked");

        assertEquals(1, bitmap.snapshotAndClear(ramAddr, 16 * PAGE).dirtyPageCount(), "the take");
        // A store hit to unlogged RAM after the take: one compare and the store, it reads no epoch and marks nothing.
        tlb.stqLe(u + 8, 7);
        assertEquals(rearming ? 2 : 3, misses.getAsLong(), "u's store after the take hits");
        assertFalse(bitmap.getDirty(pageP, PAGE), "p not stored to since the take");

        // Unaligned, inside p's cached page: the slow path stores through the entry and, for a LOGGED one, checks the
        // epoch as a hit does, which marks p again.
        tlb.stqLe(p + 20, 0x1122_3344_5566_7788L);
        assertTrue(bitmap.getDirty(pageP, PAGE), "p marked again by the unaligned store after the take");
    }

    private static void steps(boolean rearming, MemoryRegion ram, DirtyBitmap bitmap, long ramAddr,
                              LongSupplier takeAll, Tlb tlb) {
        final long p = BASE + 3 * PAGE;
        final long q = BASE + 9 * PAGE;
        // First stores: the entries start NOTDIRTY (or, with the fallback, there is none), so each marks its page.
        tlb.stqLe(p, 1);
        tlb.stqLe(q, 2);
        assertEquals(2, tlb.missCount(), "first stores to two logged pages");
        assertTrue(bitmap.getDirty(ramAddr + 3 * PAGE, PAGE), "page p marked by its first store");
        assertTrue(bitmap.getDirty(ramAddr + 9 * PAGE, PAGE), "page q marked by its first store");
        assertFalse(bitmap.getDirty(ramAddr + 4 * PAGE, PAGE), "page p+1 not stored to");

        // Later stores to the marked pages hit (membarrier), or leave the fast path every time (fallback).
        tlb.stqLe(p + 8, 3);
        tlb.stqLe(q + 8, 4);
        assertEquals(rearming ? 2 : 4, tlb.missCount(), "second stores to marked pages");

        // A take: both pages in it, nothing marked after it.
        assertEquals(2, takeAll.getAsLong(), "pages taken");
        assertFalse(bitmap.getDirty(ramAddr, 16 * PAGE), "bits after the take");

        // The next store to p is a hit whose check sees the take: it marks p again and re-arms the TLB's entries.
        tlb.stqLe(p + 16, 5);
        assertEquals(rearming ? 2 : 5, tlb.missCount(), "first store to p after the take");
        assertTrue(bitmap.getDirty(ramAddr + 3 * PAGE, PAGE), "p marked again by its store after the take");
        assertFalse(bitmap.getDirty(ramAddr + 9 * PAGE, PAGE), "q not stored to since the take");

        // q was re-armed: its next store leaves the fast path once and marks it; the one after hits.
        tlb.stqLe(q + 16, 6);
        assertEquals(rearming ? 3 : 6, tlb.missCount(), "first store to re-armed q");
        assertTrue(bitmap.getDirty(ramAddr + 9 * PAGE, PAGE), "q marked again");
        tlb.stqLe(q + 24, 7);
        assertEquals(rearming ? 3 : 7, tlb.missCount(), "second store to q after the take");

        // p too was re-armed by the check that marked it: one more slow store, then hits.
        tlb.stqLe(p + 24, 8);
        tlb.stqLe(p + 32, 9);
        assertEquals(rearming ? 4 : 9, tlb.missCount(), "stores to p after its re-arm");

        assertEquals(2, takeAll.getAsLong(), "pages taken the second time");
        assertEquals(MemTxResult.OK, tlb.takeResult());
        final long[] expected = {1, 3, 5, 8, 9};
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], ram.ramSegment().get(ValueLayout.JAVA_LONG, 3 * PAGE + 8L * i), "p slot " + i);
        }
        assertEquals(7, ram.ramSegment().get(ValueLayout.JAVA_LONG, 9 * PAGE + 24), "q's last store");
    }

    /** A guest's 8-byte load. */
    private interface Load {
        long ldqLe(long addr);
    }

    /**
     * QEMU's {@code tlb_set_page} leaves {@code TLB_NOTDIRTY} off a page that is not clean: a load miss on a logged page
     * that is already marked (here by a store through the address space) fills the write part fast too, so the next
     * store to the page hits (membarrier); a clean page's write part starts {@code NOTDIRTY}, so its first store leaves
     * the fast path and marks it; and an entry filled fast is re-armed by a take as any other, its next store marking
     * the page again. With the fallback every store to a logged page leaves the fast path.
     */
    @ParameterizedTest
    @EnumSource(Case.class)
    void aFillOfAPageAlreadyMarkedGoesFast(Case c) {
        final boolean rearming = AsymmetricFence.installed() != AsymmetricFence.fallback();
        final Rig rig = Rig.of(c);
        final AddressSpace as = rig.as();
        final DirtyBitmap bitmap = rig.bitmap();
        final long ramAddr = rig.ramAddr();
        if (c.host()) {
            try (Rcu.Reader reader = rig.system().rcu().register()) {
                final HostTlb tlb = new HostTlb(as, reader);
                tlb.begin();
                try {
                    fillSteps(rearming, as, bitmap, ramAddr, tlb::ldqLe, tlb::stqLe, tlb::missCount);
                    assertEquals(MemTxResult.OK, tlb.takeResult());
                } finally {
                    tlb.end();
                }
            }
        } else {
            final SoftTlb tlb = new SoftTlb(as);
            fillSteps(rearming, as, bitmap, ramAddr, tlb::ldqLe, tlb::stqLe, tlb::missCount);
            assertEquals(MemTxResult.OK, tlb.takeResult());
        }
        assertEquals(4, rig.ram().ramSegment().get(ValueLayout.JAVA_LONG, 3 * PAGE + 16), "p's last store");
        assertEquals(3, rig.ram().ramSegment().get(ValueLayout.JAVA_LONG, 9 * PAGE + 8), "q's store");
        rig.close();
    }

    private static void fillSteps(boolean rearming, AddressSpace as, DirtyBitmap bitmap, long ramAddr, Load load,
                                  Store store, LongSupplier misses) {
        final long p = BASE + 3 * PAGE;
        final long q = BASE + 9 * PAGE;
        final long pageP = ramAddr + 3 * PAGE;
        final long pageQ = ramAddr + 9 * PAGE;
        assertEquals(MemTxResult.OK, as.stqLe(p, 1, MemTxAttrs.UNSPECIFIED));
        assertTrue(bitmap.getDirty(pageP, PAGE), "p marked by the address space's store");

        assertEquals(1, load.ldqLe(p));
        assertEquals(1, misses.getAsLong(), "the load that fills p's entry");
        store.stqLe(p + 8, 2);
        assertEquals(rearming ? 1 : 2, misses.getAsLong(), "a store to p, already marked when its entry was filled");

        assertEquals(0, load.ldqLe(q));
        store.stqLe(q + 8, 3);
        assertEquals(rearming ? 3 : 4, misses.getAsLong(), "the load that fills q's entry, then q's first store");
        assertTrue(bitmap.getDirty(pageQ, PAGE), "clean q marked by its first store");

        assertEquals(2, bitmap.snapshotAndClear(ramAddr, 16 * PAGE).dirtyPageCount(), "the take");
        store.stqLe(p + 16, 4);
        assertEquals(rearming ? 3 : 5, misses.getAsLong(), "p's store after the take: a hit that sees the take");
        assertTrue(bitmap.getDirty(pageP, PAGE), "p marked again by its store after the take");
        assertFalse(bitmap.getDirty(pageQ, PAGE), "q not stored to since the take");
    }

    /** A TLB's {@code atomicFetchOp}. */
    private interface FetchOp {
        long apply(AtomicOp op, long addr, long operand, int size, boolean bigEndian);
    }

    /** A TLB's {@code atomicCmpxchg}. */
    private interface Cmpxchg {
        long apply(long addr, long expected, long desired, int size, boolean bigEndian);
    }

    /**
     * Atomics into a logged page behave as stores there: the first leaves the fast path and marks the page, the next
     * hit (membarrier); after a take the next one hits, marks the page again and re-arms the TLB, so the one after
     * leaves the fast path once more; a compare-and-exchange that failed after a take marks nothing. With the fallback
     * every atomic leaves the fast path, and each that wrote marks.
     */
    @ParameterizedTest
    @EnumSource(value = Case.class, names = {"SOFT_VGA", "HOST_VGA"})
    void atomicsIntoALoggedPageAreMarkedAsItsStoresAre(Case c) {
        final boolean rearming = AsymmetricFence.installed() != AsymmetricFence.fallback();
        final MemorySystem system = new MemorySystem();
        final MemoryRegion ram = system.ram("ram", 16 * PAGE, HostMemoryBackend.memfd().build());
        final MemoryRegion root = system.container("system", 1L << 32);
        root.addSubregion(BASE, ram);
        final AddressSpace as = system.addressSpace("memory", root);
        ram.setLog(true, DirtyMemoryClient.VGA);
        final DirtyBitmap bitmap = system.dirtyBitmap(DirtyMemoryClient.VGA);
        final long ramAddr = ram.ramBlock().offset();
        bitmap.snapshotAndClear(ramAddr, 16 * PAGE); // a new block starts dirty
        if (c.host()) {
            try (Rcu.Reader reader = system.rcu().register()) {
                final HostTlb tlb = new HostTlb(as, reader);
                tlb.begin();
                try {
                    atomicSteps(rearming, bitmap, ramAddr, tlb::atomicFetchOp, tlb::atomicCmpxchg, tlb::missCount);
                    assertEquals(MemTxResult.OK, tlb.takeResult());
                } finally {
                    tlb.end();
                }
            }
        } else {
            final SoftTlb tlb = new SoftTlb(as);
            atomicSteps(rearming, bitmap, ramAddr, tlb::atomicFetchOp, tlb::atomicCmpxchg, tlb::missCount);
            assertEquals(MemTxResult.OK, tlb.takeResult());
        }
        assertEquals(4, ram.ramSegment().get(ValueLayout.JAVA_LONG, 3 * PAGE), "p's 8-byte word");
        assertEquals(1, ram.ramSegment().get(ValueLayout.JAVA_INT.withOrder(ByteOrder.BIG_ENDIAN), 3 * PAGE + 8),
                "p's 4-byte word");
        release(system, root, ram);
    }

    private static void atomicSteps(boolean rearming, DirtyBitmap bitmap, long ramAddr, FetchOp fetchOp,
                                    Cmpxchg cmpxchg, LongSupplier misses) {
        final long p = BASE + 3 * PAGE;
        final long pageP = ramAddr + 3 * PAGE;
        assertEquals(0, fetchOp.apply(AtomicOp.FETCH_ADD, p, 1, 8, false));
        assertEquals(1, misses.getAsLong(), "the first atomic into the logged page");
        assertTrue(bitmap.getDirty(pageP, PAGE), "p marked by its first atomic");
        assertEquals(0, fetchOp.apply(AtomicOp.FETCH_ADD, p + 8, 1, 4, true));
        assertEquals(rearming ? 1 : 2, misses.getAsLong(), "the second atomic into the marked page");

        assertEquals(1, bitmap.snapshotAndClear(ramAddr, 16 * PAGE).dirtyPageCount(), "the take");
        assertEquals(1, cmpxchg.apply(p, 99, 5, 8, false), "a compare that fails");
        assertEquals(rearming ? 1 : 3, misses.getAsLong(), "the failed compare after the take");
        assertFalse(bitmap.getDirty(pageP, PAGE), "a compare that failed wrote nothing and marks nothing");

        assertEquals(1, fetchOp.apply(AtomicOp.FETCH_ADD, p, 1, 8, false));
        assertEquals(rearming ? 1 : 4, misses.getAsLong(), "the first atomic after the take");
        assertTrue(bitmap.getDirty(pageP, PAGE), "p marked again by the atomic after the take");
        assertEquals(2, cmpxchg.apply(p, 2, 3, 8, false));
        assertEquals(rearming ? 2 : 5, misses.getAsLong(), "re-armed by the check: one atomic leaves the fast path");
        assertEquals(3, fetchOp.apply(AtomicOp.FETCH_ADD, p, 1, 8, false));
        assertEquals(rearming ? 2 : 6, misses.getAsLong(), "then atomics hit again");
        assertEquals(1, bitmap.snapshotAndClear(ramAddr, 16 * PAGE).dirtyPageCount(), "the second take");
    }
}
