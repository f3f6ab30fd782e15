package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.AsymmetricFence;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.Rcu;
import dev.guestmem.memory.SoftTlb;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
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

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * What dirty logging adds to a guest 8-byte store: {@code stq_le} through the address space
 * ({@code addressSpaceStore}) to RAM that {@code clients} dirty-memory clients log, against the same store with no
 * client logging ({@code clients=0}) and, as the baseline in the same run, raw {@code MemorySegment.set} on one segment
 * of the working set's size ({@code rawStore}, shared with {@link SoftTlbBenchmark}), each with either
 * {@link AsymmetricFence} ({@code fence}: {@code membarrier}, where marks add no fence, or {@code fallback}, a fence
 * per mark). The target is the logged store within 1.1x of the unlogged one with membarrier.
 * {@code tlbStore} and {@code hostTlbStore} make the same stores through a {@link SoftTlb} and a {@link HostTlb} (inside
 * its RCU section): with membarrier a logged page's write entry goes fast once its first store marked it (QEMU's
 * {@code TLB_NOTDIRTY}), so after the first pass these stores cost what stores to unlogged RAM do, plus nothing (the
 * issue's target for the TLB: within 1.1x of {@code clients=0}); with the fallback every logged store takes the access
 * path. With {@code clients=3} every page holds protected code (CODE's bits are clear), so TLB stores are reported.
 *
 * <p>Cut-down marks next to them, raw stores each followed by the mark of its page in a {@code long[]} bitmap whose
 * bits are all set (as the logged RAM's are after the first pass): {@code rawStoreTestBit} reads the page's word
 * (opaque, as a mark does) and ORs only if the bit is clear, the floor of a test-before-set mark;
 * {@code rawStoreOrBit} always ORs atomically, what a mark costs without the test.
 *
 * <p>Clients ({@link #startLogging}): {@code 1} is VGA ({@link MemoryRegion#setLog}); {@code 3} adds CODE
 * ({@code setLog}) and MIGRATION (global dirty logging, {@link MemorySystem#globalDirtyLogStart} with
 * {@link MemorySystem#GLOBAL_DIRTY_MIGRATION}). Nobody takes the bits while the benchmark runs, so after the first
 * pass every page is already dirty and each store marks a page that is dirty: the cost of marking itself, not of
 * cache misses in the bitmap (the 64 MiB set's bitmap is 2 KiB per client).
 *
 * <p>Each invocation stores to the same {@value SoftTlbBenchmark#ADDRESSES} precomputed random 8-byte-aligned offsets
 * into the working set ({@code workingSet}: 1 MiB or 64 MiB); times are per store. The map is
 * {@link SoftTlbBenchmark#buildMap} with the RAM alone; the TLB has 1,024 entries (4 KiB pages), so the 1 MiB set
 * fits and the 64 MiB set mostly misses.
 *
 * <p>Run: {@code ./guestmem bench DirtyLoggingBenchmark}; one size: {@code -p workingSet=1048576}; one fence:
 * {@code -p fence=membarrier}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(SoftTlbBenchmark.ADDRESSES)
public class DirtyLoggingBenchmark {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle WORD = MethodHandles.arrayElementVarHandle(long[].class);
    static final int TLB_ENTRIES = 1024;

    /** The RAM under test with {@code clients} clients logging it, its address space and a TLB over it. */
    @State(Scope.Thread)
    public static class Logged {
        @Param({"0", "1", "3"})
        public int clients;

        /**
         * The dirty bitmaps' {@link AsymmetricFence}: {@code membarrier} (marks are plain reads, each take calls
         * membarrier) or {@code fallback} (a full fence per mark). Chosen once per JVM, so each value needs its own
         * fork, which JMH makes per parameter combination.
         */
        @Param({"membarrier", "fallback"})
        public String fence;

        MemorySystem system;
        MemoryRegion ram;
        AddressSpace addressSpace;
        SoftTlb tlb;
        Rcu.Reader reader;
        HostTlb hostTlb;
        /** Guest-physical: {@link SoftTlbBenchmark#RAM_BASE} plus each of the working set's offsets. */
        long[] addresses;

        @Setup
        public void setup(SoftTlbBenchmark.WorkingSet set) {
            useFence(fence);
            system = new MemorySystem();
            ram = system.ram("ram", set.workingSet);
            SoftTlbBenchmark.fill(ram.ramSegment());
            addressSpace = system.addressSpace("memory", SoftTlbBenchmark.buildMap(system, ram, 1));
            startLogging(system, ram, clients);
            tlb = new SoftTlb(addressSpace, TLB_ENTRIES, U);
            reader = system.rcu().register();
            hostTlb = new HostTlb(addressSpace, reader, U, TLB_ENTRIES, TLB_ENTRIES);
            hostTlb.begin();
            addresses = new long[set.offsets.length];
            for (int i = 0; i < addresses.length; i++) {
                addresses[i] = SoftTlbBenchmark.RAM_BASE + set.offsets[i];
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            hostTlb.end();
            reader.close();
        }
    }

    /**
     * Asks for {@code fence} before the first dirty bitmap is used, and checks that it is the one installed: a fork
     * that already chose another one (JMH run with {@code -f 0}), or {@code membarrier} without native access,
     * stops the run instead of measuring the wrong thing.
     */
    static void useFence(String fence) {
        System.setProperty("guestmem.fence", "fallback".equals(fence) ? "fallback" : "auto");
        AsymmetricFence installed = AsymmetricFence.installed();
        boolean fallback = installed == AsymmetricFence.fallback();
        if (fallback != "fallback".equals(fence)) {
            throw new IllegalStateException("fence=" + fence + " installed=" + installed.name()
                    + ": run each fence in its own fork, with native access enabled");
        }
    }

    /** Makes {@code clients} (0, 1 or 3) clients log {@code ram}, as described in the class comment. */
    static void startLogging(MemorySystem system, MemoryRegion ram, int clients) {
        switch (clients) {
            case 0 -> { }
            case 1 -> ram.setLog(true, DirtyMemoryClient.VGA);
            case 3 -> {
                ram.setLog(true, DirtyMemoryClient.VGA);
                ram.setLog(true, DirtyMemoryClient.CODE);
                system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
            }
            default -> throw new IllegalArgumentException("clients=" + clients + ": expected 0, 1 or 3");
        }
    }

    /** A bitmap of the working set's pages, every bit set: the cut-down marks' words. */
    @State(Scope.Thread)
    public static class Bits {
        long[] words;

        @Setup
        public void setup(SoftTlbBenchmark.WorkingSet set) {
            words = new long[(int) Math.max(1, (set.workingSet >>> SoftTlbBenchmark.PAGE_BITS) / 64)];
            Arrays.fill(words, -1L);
        }
    }

    @Benchmark
    public void rawStore(SoftTlbBenchmark.WorkingSet set) {
        SoftTlbBenchmark.rawStores(set.raw, set.offsets);
    }

    @Benchmark
    public long rawStoreTestBit(SoftTlbBenchmark.WorkingSet set, Bits bits) {
        final MemorySegment seg = set.raw;
        final long[] offsets = set.offsets;
        final long[] words = bits.words;
        long set0 = 0;
        for (int i = 0; i < offsets.length; i++) {
            long off = offsets[i];
            seg.set(U64_LE, off, i);
            long page = off >>> SoftTlbBenchmark.PAGE_BITS;
            int w = (int) (page >>> 6);
            // Opaque, as a mark reads its word after the store; the OR only for a clear bit (never, here).
            if (((long) WORD.getOpaque(words, w) & (1L << page)) == 0) {
                set0 |= (long) WORD.getAndBitwiseOr(words, w, 1L << page);
            }
        }
        return set0;
    }

    @Benchmark
    public long rawStoreOrBit(SoftTlbBenchmark.WorkingSet set, Bits bits) {
        final MemorySegment seg = set.raw;
        final long[] offsets = set.offsets;
        final long[] words = bits.words;
        long old = 0;
        for (int i = 0; i < offsets.length; i++) {
            long off = offsets[i];
            seg.set(U64_LE, off, i);
            long page = off >>> SoftTlbBenchmark.PAGE_BITS;
            old ^= (long) WORD.getAndBitwiseOr(words, (int) (page >>> 6), 1L << page);
        }
        return old;
    }

    @Benchmark
    public int addressSpaceStore(Logged guest) {
        return SoftTlbBenchmark.addressSpaceStores(guest.addressSpace, guest.addresses);
    }

    @Benchmark
    public int tlbStore(Logged guest) {
        return SoftTlbBenchmark.tlbStores(guest.tlb, guest.addresses);
    }

    @Benchmark
    public int hostTlbStore(Logged guest) {
        return HostTlbBenchmark.hostStores(guest.hostTlb, guest.addresses);
    }
}
