package dev.guestmem.memory;

import java.lang.foreign.MemorySegment;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Map;
import java.util.Objects;
import java.util.WeakHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Execute-in-place from MMIO: QEMU 2.9's {@code memory_region_request_mmio_ptr} and
 * {@code memory_region_invalidate_mmio_ptr} (removed from QEMU in 2018, with the {@code mmio_interface} device
 * behind them). A device whose {@link MemoryRegionOps} have a {@link MemoryRegionOps.RequestPtr request_ptr}
 * callback (a flash in command mode, a ROM behind a controller) hands instruction fetches a window of its I/O region
 * backed by memory; {@link SoftTlb} fetches ({@code ldubCode}..{@code ldqCode}) from there read it directly, and a
 * TLB caches each page that a window covers whole, until the device calls {@link #invalidate}. Data loads and stores
 * still go to the device's callbacks.
 *
 * <h2>The guarantee</h2>
 * A fetch that begins after {@link #invalidate} returned (with a happens-before edge from that return, as for
 * {@link CodeProtection#protect}) does not read the invalidated window: it asks the device again (its
 * {@code request_ptr}, then its read callback if that gives nothing). This holds for every soft TLB of the machine,
 * on every thread, including ones that cached the page before; invalidation does not wait for vCPU threads, so a
 * device may call it from its own callback, under the {@link GlobalLock}.
 *
 * <p>How: each region with windows has a generation. A fetch reads it before calling {@code request_ptr}, registers
 * its TLB with the region, and caches the page under the TLB's entry lock only if the generation is unchanged there.
 * {@link #invalidate} increments the generation and then, under the region's lock, visits every registered TLB and
 * marks its cached pages of the range invalid under that TLB's entry lock (the tag gets the bit with which it never
 * matches, the same bit {@code NOTDIRTY} is on write tags). Either the fill came first and the visit marks it, or
 * the fill sees the new generation and caches nothing. A fetch served without caching reads the bytes and then
 * checks the generation again, and asks the device again if it changed.
 *
 * <p>Differences from QEMU: QEMU mapped the window as a RAM subregion of the device (data accesses read it too) and
 * invalidated asynchronously on the first CPU; here only fetches use it and invalidation is synchronous.
 *
 * <p>Threading: any thread.
 */
public final class ExecuteInPlace {
    /** The regions that handed out windows; guarded by itself. Weak: a region that is gone has nothing cached. */
    private static final Map<MemoryRegion, State> STATES = new WeakHashMap<>();

    private ExecuteInPlace() {
    }

    /**
     * QEMU's {@code memory_region_invalidate_mmio_ptr}: the windows of {@code mr} that overlap region offsets
     * {@code [offset, offset + size)} must no longer be read. Returns once no soft TLB of the machine can serve a new
     * fetch from them.
     *
     * @param size bytes, at least 1 ({@code -1} for up to 2^64)
     */
    public static void invalidate(MemoryRegion mr, long offset, long size) {
        Objects.requireNonNull(mr, "mr");
        if (size == 0) {
            throw new IllegalArgumentException("region=" + mr.name() + " offset=" + U64.hex(offset)
                    + " size=0: nothing to invalidate");
        }
        final long last = size == U64.SIZE_2_64 ? offset - 1 : offset + size - 1;
        if (U64.lt(last, offset) && !(size == U64.SIZE_2_64 && offset == 0)) {
            throw new IllegalArgumentException("region=" + mr.name() + " offset=" + U64.hex(offset) + " size="
                    + U64.hex(size) + ": the range wraps past 2^64");
        }
        final State state;
        synchronized (STATES) {
            state = STATES.get(mr);
        }
        if (state != null) {
            state.invalidate(offset, last);
        }
    }

    // ---------------------------------------------------------------- for SoftTlb

    /** A cached page of a window: whose it is and which region offsets it holds. */
    record Entry(State state, long first, long last) {
        boolean overlaps(State s, long from, long to) {
            return state == s && U64.le(first, to) && U64.le(from, last);
        }
    }

    /**
     * A window for one fetch: the code ({@code addr + addend} is a guest-physical address's offset in it), the region
     * offsets it covers in the mapping of the fetch, and the generation of its region when it was requested.
     */
    record Window(MemorySegment code, long addend, State state, long generation, long regionFirst, long regionLast) {
        /** Whether no invalidation began since the window was requested. */
        boolean current() {
            return state.generation.get() == generation;
        }
    }

    /** Whether fetches from {@code fr} may ask its device for a window. */
    static boolean offers(FlatRange fr) {
        final MemoryRegion mr = fr.region();
        return mr.kind == MemoryRegion.Kind.IO && mr.ops != null && mr.ops.requestPtr() != null;
    }

    /**
     * Asks the device behind {@code fr} for a window that holds the {@code size} bytes fetched at guest-physical
     * {@code addr}, under the global lock unless its ops clear it, after registering {@code tlb} with the region.
     *
     * @return the window, or null when the device gives none or one that does not hold the fetch
     */
    static Window request(SoftTlb tlb, FlatRange fr, long addr, int size) {
        final MemoryRegion mr = fr.region();
        final State state;
        synchronized (STATES) {
            state = STATES.computeIfAbsent(mr, k -> new State());
        }
        // Registered before the generation is read: an invalidation that bumps it later visits this TLB.
        state.register(tlb);
        final long generation = state.generation.get();
        final long regionAddr = fr.offsetInRegion() + (addr - fr.start());
        final MemoryRegionOps.MmioPtr ptr = requestPtr(mr, regionAddr);
        if (ptr == null || !ptr.covers(regionAddr, regionAddr + size - 1)) {
            return null;
        }
        // Guest-physical bytes of the window that this mapping shows.
        final long regionFirst = U64.max(ptr.offset(), fr.offsetInRegion());
        final long regionLast = U64.min(ptr.offset() + ptr.size() - 1, fr.offsetInRegion() + (fr.last() - fr.start()));
        return new Window(ptr.code(), fr.offsetInRegion() - fr.start() - ptr.offset(), state, generation,
                regionFirst, regionLast);
    }

    private static MemoryRegionOps.MmioPtr requestPtr(MemoryRegion mr, long regionAddr) {
        final MemoryRegionOps ops = mr.ops;
        if (!ops.globalLocking()) {
            return ops.requestPtr().requestPtr(regionAddr);
        }
        final GlobalLock bql = mr.system.globalLock();
        final boolean release = bql.prepare(mr);
        try {
            return ops.requestPtr().requestPtr(regionAddr);
        } finally {
            if (release) {
                bql.unlock();
            }
        }
    }

    /** The windows one region handed out: their generation and the TLBs that may cache them. */
    static final class State {
        /** Incremented by every invalidation; read by fetches before they ask the device and before they cache. */
        final AtomicLong generation = new AtomicLong();
        /** Guarded by this object. */
        private final ArrayList<WeakReference<SoftTlb>> tlbs = new ArrayList<>();

        void register(SoftTlb tlb) {
            synchronized (this) {
                for (int i = 0; i < tlbs.size(); i++) {
                    if (tlbs.get(i).get() == tlb) {
                        return;
                    }
                }
                tlbs.removeIf(r -> r.get() == null);
                tlbs.add(new WeakReference<>(tlb));
            }
        }

        void invalidate(long first, long last) {
            synchronized (this) {
                // Volatile: a fetch that reads the generation after this sees it changed and does not cache; one
                // that read it before and caches does so under its TLB's entry lock, before the visit below.
                generation.incrementAndGet();
                for (int i = 0; i < tlbs.size(); i++) {
                    final SoftTlb tlb = tlbs.get(i).get();
                    if (tlb != null) {
                        tlb.invalidateInPlace(this, first, last);
                    }
                }
            }
        }
    }
}
