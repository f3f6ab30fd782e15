package dev.guestmem.memory.stress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.AsymmetricFence;
import dev.guestmem.memory.DirtyBitmap;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.DirtySnapshot;
import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.Rcu;
import dev.guestmem.memory.SoftTlb;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Guest stores through the address space or a soft TLB race takes of their pages' dirty bits, each take followed by a
 * migration-style copy of the pages it took, with whichever {@link AsymmetricFence} is installed: the proof that marks
 * without a fence of their own lose no store once every take calls {@link AsymmetricFence#heavy()}, and that a TLB's
 * fast stores to logged pages ({@code TLB_NOTDIRTY}: a page marked once is then stored to without marking) lose none
 * either, the takes re-arming the TLBs through the dirty epoch.
 *
 * <p>{@value #WRITERS} writers store ({@link Path}: through {@link AddressSpace#stqLe}, through a {@link SoftTlb} of
 * their own, or through a {@link HostTlb} of their own inside its RCU section, with a check point after every
 * {@value #VISITS_PER_CHECKPOINT} visits) into a {@value #PAGES}-page RAM region that
 * VGA ({@link MemoryRegion#setLog}) and MIGRATION (global dirty logging) log. A writer visits a random page and
 * stores {@value #STORES_PER_VISIT} increasing sequence numbers into its own slots of that page, then reads the
 * number of takes of that page's unit begun so far, {@code e1} (volatile), and publishes
 * {@code (last sequence number, e1)} for the page (release). One copier takes the bits of one client unit by unit,
 * in one of three ways ({@link Take}), each time first announcing the take (a volatile increment of the unit's count
 * to {@code k}); it copies every page the take returned from RAM into its destination, 8 bytes at a time, as a
 * migration sends pages, and then checks the unit's pages.
 *
 * <p><b>Forbidden outcomes.</b>
 * <ul>
 *   <li>At take {@code k} of a unit: a writer's visit to one of its pages, published with {@code e1 < k}, whose
 *   stores are not all in the destination (the slot holds a smaller sequence number) after the take's copy. Such a
 *   visit read its marks' bits before take {@code k} was announced, so every store of it is taken by take {@code k}
 *   or an earlier one: a smaller number in the destination is a store that no take carried and that no bit marks
 *   any more, a page lost to a migration. This is the race an unfenced mark opens: the writer reads its bit as set
 *   while its store still sits in its core's store buffer, the take swaps the bit and the copy reads the page
 *   before the store lands.</li>
 *   <li>After the writers stop: a page whose RAM differs from the destination while its bit is clear (its last
 *   store is in no take after it and it is not marked now); then, after one last take and copy, any difference.</li>
 *   <li>Any exception.</li>
 * </ul>
 * Required: takes that returned pages, and visits published between two takes of their unit ({@code e1 = k - 1}),
 * so that the check did meet racing stores; through a TLB with a process-wide fence installed, stores that hit (went
 * fast on a logged page), so that fast stores met the takes.
 *
 * <p>Runs {@value #DEFAULT_SECONDS} second per kind of take by default; {@code -Dguestmem.dirty.stress.seconds=N}
 * for longer. memory-offheap runs the same test on a memfd with {@code membarrier} and with the fallback.
 */
public class DirtyStoreRaceStressTest {
    static final long DEFAULT_SECONDS = 1;
    private static final long SECONDS = Long.getLong("guestmem.dirty.stress.seconds", DEFAULT_SECONDS);
    static final int PAGES = 256;
    static final int WRITERS = 2;
    static final int STORES_PER_VISIT = 8;
    static final int VISITS_PER_CHECKPOINT = 64;
    static final int SMALL_ENTRIES = 8;
    static final long PAGE = 4096;
    private static final int LONGS_PER_PAGE = (int) (PAGE / 8);
    private static final long RAM_BASE = 0x1000_0000L;
    /** Sequence numbers stay below 2^31, so a published (sequence, e1) pair fits one long. */
    private static final long LAST_SEQUENCE = Integer.MAX_VALUE - STORES_PER_VISIT;
    private static final VarHandle INTS = MethodHandles.arrayElementVarHandle(int[].class);
    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final int MAX_REPORTED = 5;

    /** How the copier takes bits, and how many pages one take covers. */
    enum Take {
        /** MIGRATION, {@link DirtyBitmap#testAndClearDirty} page by page, as a migration clears the page it sends. */
        PAGE_TEST_AND_CLEAR(1),
        /** VGA, {@link MemoryRegion#snapshotAndClearDirty} 64 pages at a time: the region path a display takes. */
        REGION_SNAPSHOT(64),
        /** MIGRATION, {@link DirtyBitmap#snapshotAndClear} 64 pages at a time, as a migration round syncs. */
        BITMAP_SNAPSHOT(64);

        final int pagesPerUnit;

        Take(int pagesPerUnit) {
            this.pagesPerUnit = pagesPerUnit;
        }

        DirtyMemoryClient client() {
            return this == REGION_SNAPSHOT ? DirtyMemoryClient.VGA : DirtyMemoryClient.MIGRATION;
        }
    }

    /**
     * How the writers store: through the address space, or a TLB of the default size (all {@value #PAGES} pages fit,
     * so entries are mostly re-armed, not refilled), or one of {@value #SMALL_ENTRIES} entries (nearly every visit
     * refills its entry, so fills of pages already marked, which go fast at once, race the takes).
     */
    enum Path {
        ADDRESS_SPACE,
        SOFT_TLB,
        HOST_TLB,
        SMALL_SOFT_TLB,
        SMALL_HOST_TLB
    }

    static Stream<Arguments> cases() {
        return Stream.of(Take.values()).flatMap(t -> Stream.of(Path.values()).map(p -> Arguments.of(t, p)));
    }

    /** Where guest RAM comes from; memory-offheap overrides it with a memfd. */
    protected MemorySystem.RamAllocator ramBackend() {
        return MemorySystem.ANONYMOUS_RAM;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void noStoreIsLostToATakeAndItsCopy(Take take, Path path) throws Exception {
        final MemorySystem system = new MemorySystem();
        final MemoryRegion ram = system.ram("ram", PAGES * PAGE, ramBackend());
        final MemoryRegion root = system.container("system", 1L << 32);
        root.addSubregion(RAM_BASE, ram);
        final AddressSpace as = system.addressSpace("memory", root);
        ram.setLog(true, DirtyMemoryClient.VGA);
        system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        final DirtyBitmap bitmap = system.dirtyBitmap(take.client());
        final long ramAddr = ram.ramBlock().offset();
        final MemorySegment memory = ram.ramSegment();
        // Pages start dirty (a new block is dirty for every client): take them all once so the race starts clean.
        bitmap.snapshotAndClear(ramAddr, PAGES * PAGE);

        final Run run = new Run(take, system, ram, bitmap, ramAddr, memory);
        final Thread[] writers = new Thread[WRITERS];
        for (int w = 0; w < WRITERS; w++) {
            final int writer = w;
            writers[w] = new Thread(() -> run.write(as, path, writer), "writer-" + w);
        }
        final Thread copier = new Thread(run::copy, "copier");
        copier.start();
        for (Thread t : writers) {
            t.start();
        }
        Thread.sleep(SECONDS * 1000);
        run.stop = true;
        for (Thread t : writers) {
            t.join();
        }
        copier.join();
        if (run.failure.get() != null) {
            throw new AssertionError("thread failed", run.failure.get());
        }
        assertTrue(run.lost.isEmpty(), () -> "fence=" + AsymmetricFence.installed().name() + " take=" + take
                + " path=" + path + ": stores lost to a take (" + run.lostCount + " in all), first: " + run.lost);

        // The writers are joined: a page whose bit is clear must hold in the destination what RAM holds.
        for (int p = 0; p < PAGES; p++) {
            if (!bitmap.getDirty(ramAddr + p * PAGE, PAGE)) {
                for (int i = 0; i < WRITERS * STORES_PER_VISIT; i++) {
                    long now = memory.get(ValueLayout.JAVA_LONG, p * PAGE + 8L * i);
                    assertEquals(now, run.destination[p][i], "page=" + p + " slot=" + i
                            + ": clear bit, but the destination misses the page's last store");
                }
            }
        }
        run.copyTaken(bitmap.snapshotAndClear(ramAddr, PAGES * PAGE));
        for (int p = 0; p < PAGES; p++) {
            for (int i = 0; i < LONGS_PER_PAGE; i++) {
                assertEquals(memory.get(ValueLayout.JAVA_LONG, p * PAGE + 8L * i), run.destination[p][i],
                        "page=" + p + " slot=" + i);
            }
        }
        assertTrue(run.pagesCopied > 0, "no take returned a page");
        assertTrue(run.racing > 0, "no visit was published between two takes of its unit");
        if (path != Path.ADDRESS_SPACE && AsymmetricFence.installed() != AsymmetricFence.fallback()) {
            assertTrue(run.stores.get() > run.misses.get(), () -> "path=" + path + " stores=" + run.stores
                    + " misses=" + run.misses + ": no store went fast on a logged page");
        }
        system.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
    }

    /** One run's shared state: the writers' publications, the takes' counts, the destination. */
    private static final class Run {
        final Take take;
        final MemorySystem system;
        final MemoryRegion ram;
        final DirtyBitmap bitmap;
        final long ramAddr;
        final MemorySegment memory;
        /** Per unit: takes begun (volatile). */
        final int[] takes;
        /** Per writer, per page: (last sequence number of its last visit) << 32 | e1 (release / acquire). */
        final long[][] published = new long[WRITERS][PAGES];
        /** What the copier copied: per page, its longs. Copier only (then the test's thread, after the join). */
        final long[][] destination = new long[PAGES][LONGS_PER_PAGE];
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final List<String> lost = new ArrayList<>();
        long lostCount;
        long pagesCopied;
        /** Stores made, and those of them that left a TLB's fast path, by all writers. */
        final AtomicLong stores = new AtomicLong();
        final AtomicLong misses = new AtomicLong();
        long racing;
        volatile boolean stop;

        Run(Take take, MemorySystem system, MemoryRegion ram, DirtyBitmap bitmap, long ramAddr,
                MemorySegment memory) {
            this.take = take;
            this.system = system;
            this.ram = ram;
            this.bitmap = bitmap;
            this.ramAddr = ramAddr;
            this.memory = memory;
            this.takes = new int[PAGES / take.pagesPerUnit];
        }

        void write(AddressSpace as, Path path, int w) {
            try {
                switch (path) {
                    case ADDRESS_SPACE -> write(w, (addr, v) -> as.stqLe(addr, v, MemTxAttrs.UNSPECIFIED), () -> { });
                    case SOFT_TLB, SMALL_SOFT_TLB -> {
                        final SoftTlb tlb = path == Path.SOFT_TLB ? new SoftTlb(as)
                                : new SoftTlb(as, SMALL_ENTRIES, MemTxAttrs.UNSPECIFIED);
                        write(w, tlb::stqLe, () -> assertEquals(MemTxResult.OK, tlb.takeResult()));
                        misses.addAndGet(tlb.missCount());
                    }
                    case HOST_TLB, SMALL_HOST_TLB -> {
                        try (Rcu.Reader reader = system.rcu().register()) {
                            final HostTlb tlb = path == Path.HOST_TLB ? new HostTlb(as, reader)
                                    : new HostTlb(as, reader, MemTxAttrs.UNSPECIFIED, SMALL_ENTRIES, SMALL_ENTRIES);
                            tlb.begin();
                            try {
                                write(w, tlb::stqLe, () -> {
                                    assertEquals(MemTxResult.OK, tlb.takeResult());
                                    tlb.checkpoint();
                                });
                            } finally {
                                tlb.end();
                            }
                            misses.addAndGet(tlb.missCount());
                        }
                    }
                    default -> throw new AssertionError(path);
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                stop = true;
            }
        }

        /** A guest's 8-byte store. */
        interface Store {
            void stqLe(long addr, long value);
        }

        /** Writer {@code w}'s visits, each stored with {@code store}; {@code checkpoint} every few visits. */
        private void write(int w, Store store, Runnable checkpoint) {
            final SplittableRandom random = new SplittableRandom(w + 1);
            final int shift = Integer.numberOfTrailingZeros(take.pagesPerUnit);
            final long[] mine = published[w];
            long seq = 0;
            long visits = 0;
            while (!stop && seq < LAST_SEQUENCE) {
                final int p = random.nextInt(PAGES);
                final long slots = RAM_BASE + p * PAGE + 8L * w * STORES_PER_VISIT;
                for (int j = 0; j < STORES_PER_VISIT; j++) {
                    store.stqLe(slots + 8L * j, ++seq);
                }
                // Volatile read, after the visit's marks: how many takes of this unit had been announced.
                final int e1 = (int) INTS.getVolatile(takes, p >>> shift);
                // Release: the visit's stores come before the publication (on x86 a plain store, no fence).
                LONGS.setRelease(mine, p, seq << 32 | e1);
                if (++visits % VISITS_PER_CHECKPOINT == 0) {
                    checkpoint.run();
                }
                if ((seq & 8191) == 0) {
                    Thread.yield(); // let the copier in on a machine with fewer cores than threads
                }
            }
            checkpoint.run();
            stores.addAndGet(seq);
        }

        void copy() {
            try {
                final DirtySnapshot snapshot = new DirtySnapshot();
                final int per = take.pagesPerUnit;
                while (!stop) {
                    for (int u = 0; u < takes.length && !stop; u++) {
                        final int k = (int) INTS.getVolatile(takes, u) + 1;
                        // Volatile: the take is announced before it begins.
                        INTS.setVolatile(takes, u, k);
                        final long first = (long) u * per;
                        switch (take) {
                            case PAGE_TEST_AND_CLEAR -> {
                                if (bitmap.testAndClearDirty(ramAddr + first * PAGE, PAGE)) {
                                    copyPage((int) first);
                                }
                            }
                            case REGION_SNAPSHOT -> copyTaken(
                                    ram.snapshotAndClearDirty(first * PAGE, per * PAGE, DirtyMemoryClient.VGA,
                                            snapshot));
                            case BITMAP_SNAPSHOT -> copyTaken(
                                    bitmap.snapshotAndClear(ramAddr + first * PAGE, per * PAGE, snapshot));
                            default -> throw new AssertionError(take);
                        }
                        check(u, k);
                    }
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                stop = true;
            }
        }

        void copyTaken(DirtySnapshot snapshot) {
            final long ramPage = ramAddr / PAGE; // nextDirtyPage counts pages of the ram_addr space
            for (long p = snapshot.nextDirtyPage(0); p >= 0; p = snapshot.nextDirtyPage(p + 1)) {
                copyPage((int) (p - ramPage));
            }
        }

        /** A migration's copy of page {@code p}, 8 bytes at a time so that no sequence number is torn. */
        void copyPage(int p) {
            final long[] to = destination[p];
            for (int i = 0; i < LONGS_PER_PAGE; i++) {
                to[i] = memory.get(ValueLayout.JAVA_LONG, p * PAGE + 8L * i);
            }
            pagesCopied++;
        }

        /** The first forbidden outcome, for the pages of unit {@code u} after its take {@code k} and copy. */
        private void check(int u, int k) {
            final int per = take.pagesPerUnit;
            for (int p = u * per; p < (u + 1) * per; p++) {
                for (int w = 0; w < WRITERS; w++) {
                    // Acquire: pairs with the writer's release, so the visit's stores happened before this check.
                    final long pub = (long) LONGS.getAcquire(published[w], p);
                    final long last = pub >>> 32;
                    final int e1 = (int) pub;
                    if (last == 0 || e1 >= k) {
                        continue; // no visit yet, or one that may have read its bits after take k began
                    }
                    racing += e1 == k - 1 ? 1 : 0;
                    for (int j = 0; j < STORES_PER_VISIT; j++) {
                        final long expected = last - (STORES_PER_VISIT - 1) + j;
                        final int slot = w * STORES_PER_VISIT + j;
                        final long copied = destination[p][slot];
                        if (copied < expected) {
                            lostCount++;
                            if (lost.size() < MAX_REPORTED) {
                                lost.add("page=" + p + " writer=" + w + " slot=" + slot + " take=" + k + " e1=" + e1
                                        + " stored=" + expected + " copied=" + copied + " now="
                                        + memory.get(ValueLayout.JAVA_LONG, p * PAGE + 8L * slot));
                            }
                        }
                    }
                }
            }
        }
    }
}
