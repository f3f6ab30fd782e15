package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.ValueLayouts;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Execute-in-place from an I/O region ({@code request_ptr}, {@link ExecuteInPlace#invalidate}): instruction fetches
 * through soft TLBs read the device's window directly and cache its pages, until the device invalidates it; a fetch
 * after that asks the device again, on every thread.
 */
class ExecuteInPlaceTest {
    private static final long FLASH = 0x2000_0000L;
    private static final int FLASH_SIZE = 0x10000;
    private static final long DEADLOCK_SECONDS = 120;

    /**
     * A flash in command mode: its array is a segment the device may replace; {@code request_ptr} hands out a
     * window of {@code window} bytes aligned to its size, the read callback reads the same array.
     */
    static final class Flash {
        volatile MemorySegment array;
        final long window;
        final AtomicInteger requests = new AtomicInteger();
        final AtomicInteger reads = new AtomicInteger();
        volatile boolean offer = true;

        Flash(MemorySegment array, long window) {
            this.array = array;
            this.window = window;
        }

        MemoryRegionOps ops() {
            return MemoryRegionOps.builder()
                    .read((addr, size) -> {
                        reads.incrementAndGet();
                        return ValueLayouts.get(array, addr, size, false);
                    })
                    .requestPtr(addr -> {
                        requests.incrementAndGet();
                        if (!offer) {
                            return null;
                        }
                        final long first = addr & -window;
                        return new MemoryRegionOps.MmioPtr(first, window, array.asSlice(first, window));
                    })
                    .endianness(DeviceEndian.LITTLE).valid(1, 8, false).impl(1, 8, false)
                    .build();
        }
    }

    private static MemorySegment code(Arena arena, long seed) {
        MemorySegment s = arena.allocate(FLASH_SIZE, 8);
        SplittableRandom r = new SplittableRandom(seed);
        for (long i = 0; i < FLASH_SIZE; i += 8) {
            s.set(ValueLayout.JAVA_LONG_UNALIGNED, i, r.nextLong());
        }
        return s;
    }

    private static AddressSpace machine(MemorySystem m, MemoryRegion flash) {
        MemoryRegion root = m.container("system", U64.SIZE_2_64);
        m.transaction(() -> {
            root.addSubregion(0x8000_0000L, m.ram("ram", 0x10000));
            root.addSubregion(FLASH, flash);
        });
        return m.addressSpace("memory", root);
    }

    @Test
    void aJitFetchLoopRunsFromTheWindowAndAsksOncePerPage() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySystem m = new MemorySystem();
            Flash dev = new Flash(code(arena, 1), FLASH_SIZE);
            MemoryRegion flash = m.io("flash", FLASH_SIZE, dev.ops());
            AddressSpace as = machine(m, flash);
            SoftTlb tlb = new SoftTlb(as);
            // A JIT translating every instruction of the image, twice: 4-byte fetches, then 2- and 8-byte ones.
            for (int pass = 0; pass < 2; pass++) {
                for (long pc = 0; pc < FLASH_SIZE; pc += 4) {
                    assertEquals(dev.array.get(ValueLayout.JAVA_INT_UNALIGNED, pc), tlb.ldlCode(FLASH + pc));
                }
            }
            for (long pc = 0; pc < FLASH_SIZE; pc += 8) {
                assertEquals(dev.array.get(ValueLayout.JAVA_LONG_UNALIGNED, pc), tlb.ldqCode(FLASH + pc));
                assertEquals(dev.array.get(ValueLayout.JAVA_SHORT_UNALIGNED, pc) & 0xffff, tlb.lduwCode(FLASH + pc));
            }
            int pages = FLASH_SIZE >> as.pageBits();
            assertEquals(pages, dev.requests.get(), "one request per page");
            assertEquals(pages, tlb.missCount(), "every other fetch hit");
            assertEquals(0, dev.reads.get(), "no fetch reached the read callback");
            // Data loads still go to the device.
            assertEquals(dev.array.get(ValueLayout.JAVA_INT_UNALIGNED, 0x40), tlb.ldlLe(FLASH + 0x40));
            assertEquals(1, dev.reads.get());
            assertEquals(MemTxResult.OK, tlb.takeResult());
        }
    }

    @Test
    void aFetchAfterInvalidationAsksTheDeviceAgain() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySystem m = new MemorySystem();
            MemorySegment v1 = code(arena, 1);
            MemorySegment v2 = code(arena, 2);
            Flash dev = new Flash(v1, FLASH_SIZE);
            MemoryRegion flash = m.io("flash", FLASH_SIZE, dev.ops());
            SoftTlb tlb = new SoftTlb(machine(m, flash));
            long at = FLASH + 0x1230;
            long old = v1.get(ValueLayout.JAVA_LONG_UNALIGNED, 0x1230);
            assertEquals(old, tlb.ldqCode(at));
            // The device changes its array without invalidating: the cached page keeps the old bytes (which is
            // why invalidation exists, and what the stress test below would catch).
            dev.array = v2;
            assertEquals(old, tlb.ldqCode(at));
            ExecuteInPlace.invalidate(flash, 0x1000, 0x10);
            long now = v2.get(ValueLayout.JAVA_LONG_UNALIGNED, 0x1230);
            assertNotEquals(old, now);
            assertEquals(now, tlb.ldqCode(at));
            // Invalidating a range the page does not overlap leaves it cached.
            int requests = dev.requests.get();
            ExecuteInPlace.invalidate(flash, 0x8000, 0x1000);
            assertEquals(now, tlb.ldqCode(at));
            assertEquals(requests, dev.requests.get());
            // A device that offers nothing after invalidating: fetches go to its read callback.
            dev.offer = false;
            ExecuteInPlace.invalidate(flash, 0, -1L);
            assertEquals(now, tlb.ldqCode(at));
            assertEquals(1, dev.reads.get());
        }
    }

    @Test
    void aWindowSmallerThanAPageIsReadButNotCached() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySystem m = new MemorySystem();
            Flash dev = new Flash(code(arena, 3), 0x100);
            SoftTlb tlb = new SoftTlb(machine(m, m.io("flash", FLASH_SIZE, dev.ops())));
            for (long pc = 0x200; pc < 0x300; pc += 4) {
                assertEquals(dev.array.get(ValueLayout.JAVA_INT_UNALIGNED, pc), tlb.ldlCode(FLASH + pc));
            }
            assertEquals(64, dev.requests.get(), "each fetch asks: nothing is cached");
            assertEquals(0, dev.reads.get());
        }
    }

    @Test
    void badWindowsAndRangesAreRefusedByName() {
        MemorySegment s = MemorySegment.ofArray(new byte[16]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new MemoryRegionOps.MmioPtr(0, 32, s));
        assertEquals("offset=0x0 size=0x20 codeSize=0x10: not a window of the code", e.getMessage());
        MemorySystem m = new MemorySystem();
        MemoryRegion r = m.io("dev", 16, MemoryRegionOps.builder().build());
        e = assertThrows(IllegalArgumentException.class, () -> ExecuteInPlace.invalidate(r, 8, 0));
        assertEquals("region=dev offset=0x8 size=0: nothing to invalidate", e.getMessage());
    }

    /**
     * Fetchers on their own soft TLBs loop over the flash while the device writes a new version of its code
     * (every word the version number), switches to it, invalidates, and then publishes the version. Forbidden: a
     * fetch that began after a version was published (it read the published number first) returning a word of an
     * older version.
     */
    @Test
    void invalidationReachesEveryTlbBeforeItReturns() throws Exception {
        final int fetchers = 2;
        final int versions = Integer.getInteger("guestmem.xip.stress.versions", 300);
        MemorySystem m = new MemorySystem();
        List<MemorySegment> kept = new ArrayList<>(); // never freed while a fetch may still read one
        Arena arena = Arena.ofAuto();
        Flash dev = new Flash(filled(arena, 0), FLASH_SIZE);
        kept.add(dev.array);
        MemoryRegion flash = m.io("flash", FLASH_SIZE, dev.ops());
        AddressSpace as = machine(m, flash);
        AtomicLong published = new AtomicLong();
        AtomicLong fetches = new AtomicLong();
        AtomicLong stale = new AtomicLong();
        ExecutorService pool = Executors.newFixedThreadPool(fetchers + 1);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int f = 0; f < fetchers; f++) {
                final long seed = f;
                futures.add(pool.submit(() -> {
                    SoftTlb tlb = new SoftTlb(as);
                    SplittableRandom r = new SplittableRandom(seed);
                    while (published.get() < versions) {
                        final long before = published.get(); // volatile read: the fetch begins after it
                        final long word = tlb.ldqCode(FLASH + (r.nextInt(FLASH_SIZE / 8) << 3));
                        fetches.incrementAndGet();
                        if (word < before) {
                            stale.incrementAndGet();
                        }
                    }
                    return null;
                }));
            }
            futures.add(pool.submit(() -> {
                for (long v = 1; v <= versions; v++) {
                    MemorySegment next = filled(arena, v);
                    kept.add(next);
                    dev.array = next;
                    ExecuteInPlace.invalidate(flash, 0, FLASH_SIZE);
                    published.set(v);
                    // Let the fetchers cache the new version before the next one (after the last they stop).
                    final long seen = fetches.get();
                    while (v < versions && fetches.get() < seen + 200) {
                        Thread.onSpinWait();
                    }
                }
                return null;
            }));
            for (Future<?> f : futures) {
                f.get(DEADLOCK_SECONDS, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        System.out.println("ExecuteInPlaceTest: versions=" + versions + " fetches=" + fetches.get()
                + " requests=" + dev.requests.get() + " stale=" + stale.get());
        assertEquals(0, stale.get(), "fetches that returned an invalidated version");
        assertTrue(dev.requests.get() > versions, "the fetchers cached and re-asked: " + dev.requests.get());
        assertEquals(0, dev.reads.get());
    }

    private static MemorySegment filled(Arena arena, long version) {
        MemorySegment s = arena.allocate(FLASH_SIZE, 8);
        for (long i = 0; i < FLASH_SIZE; i += 8) {
            s.set(ValueLayout.JAVA_LONG_UNALIGNED, i, version);
        }
        return s;
    }
}
