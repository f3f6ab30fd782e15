package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
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
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * What a JIT emulator pays per guest 8-byte load or store: through the {@link SoftTlb} ({@code tlb*}), through the
 * address space's {@code ldq_le}/{@code stq_le} ({@code addressSpace*}), and, as the baseline in the same run, raw
 * {@link MemorySegment} access to one segment of the working set's size ({@code raw*}), the JVM's limit for RAM.
 * A second baseline, {@code rawPage*}, accesses the same memory through the segment of its 4 KiB page, picked per
 * access: what any safe page-granular translation costs at least, because FFM's bounds and liveness checks of a
 * segment that changes from one access to the next cannot be hoisted out of the loop as they are for {@code raw*}.
 *
 * <p>Each invocation walks the same {@value #ADDRESSES} precomputed random 8-byte-aligned offsets into the working set
 * ({@code workingSet}: 1 MiB or 64 MiB) once; times are per access. Loads return the sum of what they read; stores
 * write the loop index (off-heap stores cannot be removed) and return the OR of their results where there is one.
 *
 * <p>The map ({@link #buildMap}): the RAM under test, one region of {@code workingSet} bytes at 1 GiB,
 * and {@code regions - 1} more regions from 4 GiB up, 8 KiB apart: 4 KiB I/O regions and
 * 4 KiB RAM regions (all over one shared 4 KiB segment, so that 100,000 regions cost no memory). The TLB has
 * {@code tlbEntries} entries (4 KiB pages): the 1 MiB set fits in the default 1,024, the 64 MiB set does not and
 * mostly misses; {@code -p tlbEntries=16384} shows it cached.
 *
 * <p>Run: {@code ./guestmem bench SoftTlbBenchmark}; one size: {@code -p regions=1 -p workingSet=1048576}.
 * The raw baseline depends only on {@code workingSet}, so JMH runs it once per working set.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(SoftTlbBenchmark.ADDRESSES)
public class SoftTlbBenchmark {
    /** Accesses per invocation: 1 Mi. */
    static final int ADDRESSES = 1 << 20;
    /** Guest-physical address of the RAM under test: 1 GiB. */
    static final long RAM_BASE = 0x4000_0000L;
    /** Where the other regions start, and how far apart they are. */
    static final long OTHERS_BASE = 1L << 32;
    static final long OTHERS_STRIDE = 0x2000;

    static final int PAGE_BITS = 12;
    static final long PAGE_OFFSET = (1L << PAGE_BITS) - 1;
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    /** The working set: the random offsets, and the baseline's segment holding the same bytes as the guest RAM. */
    @State(Scope.Thread)
    public static class WorkingSet {
        @Param({"1048576", "67108864"})
        public long workingSet;

        long[] offsets;
        MemorySegment raw;
        /** {@link #raw} cut into 4 KiB slices, one segment per page. */
        MemorySegment[] pages;

        @Setup
        public void setup() {
            offsets = randomOffsets(workingSet, 42);
            raw = Arena.ofAuto().allocate(workingSet, 4096);
            fill(raw);
            pages = new MemorySegment[(int) (workingSet >>> PAGE_BITS)];
            for (int i = 0; i < pages.length; i++) {
                pages[i] = raw.asSlice((long) i << PAGE_BITS, 1L << PAGE_BITS);
            }
        }
    }

    /** The map around the RAM under test, its address space and a TLB over it. */
    @State(Scope.Thread)
    public static class Guest {
        @Param({"1", "100", "1000", "100000"})
        public int regions;

        @Param({"1024"})
        public int tlbEntries;

        AddressSpace addressSpace;
        SoftTlb tlb;
        /** Guest-physical: {@link #RAM_BASE} plus each of the working set's offsets. */
        long[] addresses;

        @Setup
        public void setup(WorkingSet set) {
            MemorySystem system = new MemorySystem();
            MemoryRegion ram = system.ram("ram", set.workingSet);
            fill(ram.ramSegment());
            addressSpace = system.addressSpace("memory", buildMap(system, ram, regions));
            tlb = new SoftTlb(addressSpace, tlbEntries, U);
            addresses = new long[set.offsets.length];
            for (int i = 0; i < addresses.length; i++) {
                addresses[i] = RAM_BASE + set.offsets[i];
            }
        }
    }

    // ---------------------------------------------------------------- loads

    @Benchmark
    public long rawLoad(WorkingSet set) {
        final MemorySegment seg = set.raw;
        final long[] offsets = set.offsets;
        long sum = 0;
        for (long off : offsets) {
            sum += seg.get(U64_LE, off);
        }
        return sum;
    }

    /**
     * The second baseline: raw access through a segment picked per access (the page's slice), the JVM's floor for
     * any safe per-page translation, since FFM's bounds and liveness checks can no longer leave the loop.
     */
    @Benchmark
    public long rawPageLoad(WorkingSet set) {
        final MemorySegment[] pages = set.pages;
        final long[] offsets = set.offsets;
        long sum = 0;
        for (long off : offsets) {
            sum += pages[(int) (off >>> PAGE_BITS)].get(U64_LE, off & PAGE_OFFSET);
        }
        return sum;
    }

    @Benchmark
    public long tlbLoad(Guest guest) {
        final SoftTlb tlb = guest.tlb;
        final long[] addresses = guest.addresses;
        long sum = 0;
        for (long addr : addresses) {
            sum += tlb.ldqLe(addr);
        }
        return sum;
    }

    @Benchmark
    public long addressSpaceLoad(Guest guest) {
        final AddressSpace as = guest.addressSpace;
        final long[] addresses = guest.addresses;
        long sum = 0;
        for (long addr : addresses) {
            sum += as.ldqLe(addr, U, null);
        }
        return sum;
    }

    // ---------------------------------------------------------------- stores

    @Benchmark
    public void rawStore(WorkingSet set) {
        rawStores(set.raw, set.offsets);
    }

    @Benchmark
    public void rawPageStore(WorkingSet set) {
        final MemorySegment[] pages = set.pages;
        final long[] offsets = set.offsets;
        for (int i = 0; i < offsets.length; i++) {
            long off = offsets[i];
            pages[(int) (off >>> PAGE_BITS)].set(U64_LE, off & PAGE_OFFSET, i);
        }
    }

    @Benchmark
    public int tlbStore(Guest guest) {
        return tlbStores(guest.tlb, guest.addresses);
    }

    @Benchmark
    public int addressSpaceStore(Guest guest) {
        return addressSpaceStores(guest.addressSpace, guest.addresses);
    }

    /** Stores the loop index at each of {@code offsets} of {@code seg}, little-endian. */
    static void rawStores(MemorySegment seg, long[] offsets) {
        for (int i = 0; i < offsets.length; i++) {
            seg.set(U64_LE, offsets[i], i);
        }
    }

    /** {@code stq_le} of the loop index at each of {@code addresses} through {@code tlb}; returns its result. */
    static int tlbStores(SoftTlb tlb, long[] addresses) {
        for (int i = 0; i < addresses.length; i++) {
            tlb.stqLe(addresses[i], i);
        }
        return tlb.takeResult();
    }

    /** {@code stq_le} of the loop index at each of {@code addresses} through {@code as}; returns the OR of results. */
    static int addressSpaceStores(AddressSpace as, long[] addresses) {
        int result = 0;
        for (int i = 0; i < addresses.length; i++) {
            result |= as.stqLe(addresses[i], i, U);
        }
        return result;
    }

    // ---------------------------------------------------------------- setup

    /** {@value #ADDRESSES} random 8-byte-aligned offsets below {@code size}, the same for the same seed. */
    static long[] randomOffsets(long size, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        long[] out = new long[ADDRESSES];
        for (int i = 0; i < out.length; i++) {
            out[i] = rnd.nextLong(size / 8) * 8;
        }
        return out;
    }

    /** The same bytes in every working set of a size: each 8-byte word holds its offset times an odd constant. */
    static void fill(MemorySegment seg) {
        for (long off = 0; off < seg.byteSize(); off += 8) {
            seg.set(U64_LE, off, off * 0x9e37_79b9_7f4a_7c15L);
        }
    }

    /**
     * The benchmark's map: {@code ram} at {@link #RAM_BASE} and {@code regions - 1} 4 KiB regions, alternately I/O and
     * RAM over one shared segment, from {@link #OTHERS_BASE} up, built in one transaction. Returns the root.
     */
    static MemoryRegion buildMap(MemorySystem system, MemoryRegion ram, int regions) {
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        MemoryRegionOps ops = MemoryRegionOps.builder()
                .read((addr, size) -> addr)
                .write((addr, data, size) -> { })
                .build();
        MemorySegment shared = Arena.ofAuto().allocate(0x1000, 4096);
        system.transaction(() -> {
            root.addSubregion(RAM_BASE, ram);
            for (int i = 1; i < regions; i++) {
                MemoryRegion r = i % 2 == 0 ? system.io("io" + i, 0x1000, ops)
                        : system.ramFromSegment("ram" + i, shared);
                root.addSubregion(OTHERS_BASE + i * OTHERS_STRIDE, r);
            }
        });
        return root;
    }
}
