package dev.guestmem.bench.peers;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.dispatch.RangeAccess;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;

import static dev.guestmem.bench.peers.PeersPattern.ACCESSES;
import static dev.guestmem.bench.peers.PeersPattern.PAGE_SIZE;

/**
 * Where the time of one 8-byte access through {@link AddressSpace} goes when the working set fits the caches: the
 * peers' map ({@link PeersPattern}: 64 MiB of RAM in {@code regions} = 1, 100 or 1,000 regions) with a working set of
 * 1 MiB spread over it ({@code pages} = {@link #WORKING_SET_PAGES} random pages of the whole RAM, so every region of a
 * 100-region map gets some), {@value PeersPattern#ACCESSES} random 8-byte-aligned addresses in it. With
 * {@code -p pages=16384} the working set is every page of the RAM, the peers' own spread, where each access misses
 * the host's caches and the lookup's share shows as lost overlap of those misses. The rows, each a cut-down
 * access next to the real one, in one run:
 * <ul>
 *   <li>{@code rawDense}: one 1 MiB segment, the working set's pages packed (the JVM's limit, the issue's
 *   "raw at 1 MiB"); {@code rawSpread}: the 64 MiB segment at the same spread offsets (host TLB and cache effects of
 *   the spread alone);</li>
 *   <li>{@code segmentChoice}: the segment of each access's region from an array, at a precomputed offset (what
 *   choosing the segment per access costs over raw);</li>
 *   <li>{@code lookup}: only the dispatch's lookup of each address ({@code sectionIndex}, the dispatch loaded once);
 *   {@code lookupAccess}: the lookup, then the flat range, its region's segment and the load, written by hand with
 *   public getters and no result, recovery or MMIO branches;</li>
 *   <li>the direct case piece by piece, each falling back to the real load where it does not apply:
 *   {@code recordLoads} (the dispatch loaded once, the record found by its hint and checked, no memory read),
 *   {@code hintSegment} (the same, then the load through the range's segment with FFM's checks) and
 *   {@code hintUnbounded} (the load through one unbounded segment at the host address, no FFM check), which the JIT
 *   may hoist everything out of as the dispatch is loop-invariant; then the same with the dispatch read per access
 *   with acquire from a cell, as the address space reads its published one, which makes every access load the hint,
 *   the record and the segment's fields again: {@code hintSegmentAcquire} (the record's flags, bounds and region
 *   offset, then its region's segment: the access path's form before issue 10's last round),
 *   {@code hintSliceAcquire} (the record's own slice of the segment, whose size is the only check: the form the
 *   access path uses) and {@code hintUnboundedAcquire} (the slice's address through the unbounded segment: what the
 *   FFM checks cost per access);</li>
 *   <li>{@code hintWalkAcquire}: the address space's own lookup written into the loop (the dispatch read with
 *   acquire, its range hint, else its range cache and tree walk, {@link AddressSpaceDispatch#rangeAccessWalk}), then
 *   the load through the record's slice: what {@code addressSpace} costs without its call and its checks of the
 *   access and the result (the JIT inlines this row; it does not inline {@link AddressSpace#ldqLe}, whose compiled
 *   code is over its inlining size once the walk is hot);</li>
 *   <li>{@code addressSpace}: {@link AddressSpace#ldqLe} (result into an array, as the peers' row uses it),
 *   {@code addressSpaceNoResult} (a null result array), and {@link AddressSpace#stqLe} next to {@code rawDenseStore}.</li>
 * </ul>
 * Every method returns what it read (a sum the test checks against the pattern) or fails when an access failed.
 *
 * <p>Run: {@code ./guestmem bench AccessPathBenchmark}; {@code -prof gc} shows that no row allocates.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class AccessPathBenchmark {
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    /** The whole host address space, a constant (null without native access; only the unbounded rows use it). */
    private static final MemorySegment HOST = unbounded();
    private static final VarHandle HELD = MethodHandles.arrayElementVarHandle(AddressSpaceDispatch[].class);
    /** Pages in the working set: 256 pages of 4 KiB, 1 MiB. */
    static final int WORKING_SET_PAGES = 256;
    /** The seed of the working set's pages and addresses (not the peers' seed: a different draw). */
    static final long SEED = 7;

    /** The map, the spread working set's addresses and the baselines' segments and offsets. */
    @State(Scope.Thread)
    public static class Spread {
        @Param({"1", "100", "1000"})
        public int regions;

        /** Pages in the working set: 256 (1 MiB) or all 16,384 of the RAM (the peers' spread). */
        @Param({"256"})
        public int pages;

        PeersBenchmark.GuestMap map;
        AddressSpaceDispatch dispatch;
        /** Guest-physical addresses of the accesses. */
        long[] addrs;
        /** The same accesses as offsets of the 64 MiB RAM counted without holes. */
        long[] spreadOffsets;
        /** The same accesses in a 1 MiB segment holding the working set's pages one after another. */
        long[] denseOffsets;
        /** Each access's region, and its offset there. */
        int[] regionIndex;
        long[] regionOffsets;
        MemorySegment[] regionSegments;
        MemorySegment spread;
        MemorySegment dense;
        /** The dispatch in a cell of its own, read per access as the address space reads its published one. */
        final AddressSpaceDispatch[] held = new AddressSpaceDispatch[1];
        /** The whole host address space as one segment, as {@code HostTlb}'s entries address it. */
        MemorySegment host;

        @Setup
        public void setup() {
            PeersPattern pattern = new PeersPattern(regions);
            map = PeersBenchmark.GuestMap.build(pattern, false);
            dispatch = AddressSpaceDispatch.of(map.addressSpace());
            HELD.setRelease(held, 0, dispatch);
            long[] pages = workingSetPages(SEED, this.pages);
            spreadOffsets = new long[ACCESSES];
            denseOffsets = new long[ACCESSES];
            PeersPattern.SplitMix64 random = new PeersPattern.SplitMix64(SEED + 1);
            for (int i = 0; i < ACCESSES; i++) {
                int p = (int) random.below(pages.length);
                long word = random.below(PAGE_SIZE / 8) * 8;
                spreadOffsets[i] = pages[p] + word;
                denseOffsets[i] = (long) p * PAGE_SIZE + word;
            }
            addrs = pattern.guestAddresses(spreadOffsets);
            regionSegments = new MemorySegment[regions];
            for (int r = 0; r < regions; r++) {
                regionSegments[r] = map.ram().get(r).ramSegment();
            }
            regionIndex = new int[ACCESSES];
            regionOffsets = new long[ACCESSES];
            for (int i = 0; i < ACCESSES; i++) {
                int r = pattern.regionOf(spreadOffsets[i]);
                regionIndex[i] = r;
                regionOffsets[i] = spreadOffsets[i] - pattern.regionOffset(r);
            }
            spread = Arena.ofAuto().allocate(PeersPattern.RAM_SIZE, PAGE_SIZE);
            for (long off = 0; off < PeersPattern.RAM_SIZE; off += 8) {
                spread.set(U64_LE, off, PeersPattern.initialWord(off));
            }
            host = HOST;
            dense = Arena.ofAuto().allocate((long) pages.length * PAGE_SIZE, PAGE_SIZE);
            for (int p = 0; p < pages.length; p++) {
                for (int w = 0; w < PAGE_SIZE; w += 8) {
                    dense.set(U64_LE, (long) p * PAGE_SIZE + w, PeersPattern.initialWord(pages[p] + w));
                }
            }
        }

        @TearDown
        public void tearDown() {
            map.close();
        }
    }

    @SuppressWarnings("restricted") // the unbounded row's segment; the fork enables native access
    private static MemorySegment unbounded() {
        return MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    }

    /**
     * {@link #WORKING_SET_PAGES} distinct page offsets of the RAM counted without holes, uniform over its 64 MiB, the
     * same for the same seed.
     */
    static long[] workingSetPages(long seed, int count) {
        PeersPattern.SplitMix64 random = new PeersPattern.SplitMix64(seed);
        boolean[] taken = new boolean[PeersPattern.RAM_PAGES];
        long[] out = new long[count];
        for (int n = 0; n < out.length; ) {
            int page = (int) random.below(PeersPattern.RAM_PAGES);
            if (!taken[page]) {
                taken[page] = true;
                out[n++] = (long) page * PAGE_SIZE;
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- baselines

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long rawDense(Spread s) {
        final MemorySegment ram = s.dense;
        long sum = 0;
        for (long off : s.denseOffsets) {
            sum += ram.get(U64_LE, off);
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long rawSpread(Spread s) {
        final MemorySegment ram = s.spread;
        long sum = 0;
        for (long off : s.spreadOffsets) {
            sum += ram.get(U64_LE, off);
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public MemorySegment rawDenseStore(Spread s) {
        final MemorySegment ram = s.dense;
        final long[] offsets = s.denseOffsets;
        for (int i = 0; i < offsets.length; i++) {
            ram.set(U64_LE, offsets[i], i);
        }
        return ram;
    }

    // ---------------------------------------------------------------- cut-down accesses

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long segmentChoice(Spread s) {
        final MemorySegment[] segments = s.regionSegments;
        final int[] index = s.regionIndex;
        final long[] offsets = s.regionOffsets;
        long sum = 0;
        for (int i = 0; i < index.length; i++) {
            sum += segments[index[i]].get(U64_LE, offsets[i]);
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long lookup(Spread s) {
        final AddressSpaceDispatch d = s.dispatch;
        long sum = 0;
        for (long addr : s.addrs) {
            sum += d.sectionIndex(addr);
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long lookupAccess(Spread s) {
        final AddressSpaceDispatch d = s.dispatch;
        long sum = 0;
        for (long addr : s.addrs) {
            int i = d.sectionIndex(addr);
            FlatRange fr = d.flatRange(i);
            MemoryRegion mr = fr.region();
            sum += mr.ramSegment().get(U64_LE, d.offsetInRegion(i, addr));
        }
        return sum;
    }

    // ---------------------------------------------------------------- the direct case, piece by piece

    /** Where the direct case fails, the real load: the rows below then stay correct whatever the record says. */
    private static long slow(Spread s, long addr) {
        return s.map.addressSpace().ldqLe(addr, U, null);
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long hintWalkAcquire(Spread s) {
        final AddressSpaceDispatch[] held = s.held;
        long sum = 0;
        for (long addr : s.addrs) {
            AddressSpaceDispatch d = (AddressSpaceDispatch) HELD.getAcquire(held, 0);
            RangeAccess r = d.rangeHint();
            if (!r.covers(addr)) {
                r = d.rangeAccessWalk(addr);
            }
            sum += r.loadRam.get(U64_LE, addr - r.first);
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long recordLoads(Spread s) {
        final AddressSpaceDispatch d = s.dispatch;
        long sum = 0;
        for (long addr : s.addrs) {
            RangeAccess r = d.rangeAccess(addr);
            if ((r.flags & RangeAccess.READ) != 0 && Long.compareUnsigned(7, r.last - addr) <= 0) {
                sum += addr + r.delta;
            } else {
                sum += slow(s, addr);
            }
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long hintSegment(Spread s) {
        final AddressSpaceDispatch d = s.dispatch;
        long sum = 0;
        for (long addr : s.addrs) {
            RangeAccess r = d.rangeAccess(addr);
            if ((r.flags & RangeAccess.READ) != 0 && Long.compareUnsigned(7, r.last - addr) <= 0) {
                sum += r.ram.get(U64_LE, addr + r.delta);
            } else {
                sum += slow(s, addr);
            }
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long hintUnbounded(Spread s) {
        final AddressSpaceDispatch d = s.dispatch;
        final MemorySegment host = s.host;
        long sum = 0;
        for (long addr : s.addrs) {
            RangeAccess r = d.rangeAccess(addr);
            if ((r.flags & RangeAccess.READ) != 0 && Long.compareUnsigned(7, r.last - addr) <= 0) {
                sum += host.get(U64_LE, r.ram.address() + addr + r.delta);
            } else {
                sum += slow(s, addr);
            }
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long hintSegmentAcquire(Spread s) {
        final AddressSpaceDispatch[] held = s.held;
        long sum = 0;
        for (long addr : s.addrs) {
            RangeAccess r = ((AddressSpaceDispatch) HELD.getAcquire(held, 0)).rangeAccess(addr);
            if ((r.flags & RangeAccess.READ) != 0 && Long.compareUnsigned(7, r.last - addr) <= 0) {
                sum += r.ram.get(U64_LE, addr + r.delta);
            } else {
                sum += slow(s, addr);
            }
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long hintSliceAcquire(Spread s) {
        final AddressSpaceDispatch[] held = s.held;
        long sum = 0;
        for (long addr : s.addrs) {
            RangeAccess r = ((AddressSpaceDispatch) HELD.getAcquire(held, 0)).rangeHint();
            MemorySegment ram = r.loadRam;
            long o = addr - r.first;
            if (Long.compareUnsigned(o, ram.byteSize()) < 0 && o <= ram.byteSize() - 8) {
                sum += ram.get(U64_LE, o);
            } else {
                sum += slow(s, addr);
            }
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long hintUnboundedAcquire(Spread s) {
        final AddressSpaceDispatch[] held = s.held;
        final MemorySegment host = HOST;
        long sum = 0;
        for (long addr : s.addrs) {
            RangeAccess r = ((AddressSpaceDispatch) HELD.getAcquire(held, 0)).rangeHint();
            MemorySegment ram = r.loadRam;
            long o = addr - r.first;
            // The range's own size, not the segment's: no FFM check on the access; NO_MEMORY for what is not RAM.
            if (ram != RangeAccess.NO_MEMORY && Long.compareUnsigned(o, r.sizeM1) <= 0 && o <= r.sizeM1 - 7) {
                sum += host.get(U64_LE, ram.address() + o);
            } else {
                sum += slow(s, addr);
            }
        }
        return sum;
    }

    // ---------------------------------------------------------------- the real thing

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long addressSpace(Spread s) {
        final AddressSpace as = s.map.addressSpace();
        final int[] result = new int[1];
        int results = MemTxResult.OK;
        long sum = 0;
        for (long addr : s.addrs) {
            sum += as.ldqLe(addr, U, result);
            results |= result[0];
        }
        return PeersBenchmark.requireOk(results, "ldq_le") + sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long addressSpaceNoResult(Spread s) {
        final AddressSpace as = s.map.addressSpace();
        long sum = 0;
        for (long addr : s.addrs) {
            sum += as.ldqLe(addr, U, null);
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public int addressSpaceStore(Spread s) {
        final AddressSpace as = s.map.addressSpace();
        final long[] addrs = s.addrs;
        int result = MemTxResult.OK;
        for (int i = 0; i < addrs.length; i++) {
            result |= as.stqLe(addrs[i], i, U);
        }
        return PeersBenchmark.requireOk(result, "stq_le");
    }
}
