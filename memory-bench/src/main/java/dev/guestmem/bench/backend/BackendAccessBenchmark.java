package dev.guestmem.bench.backend;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Whether where guest RAM comes from changes what an access costs once the memory is resident: 8-byte loads and
 * stores at random addresses spread over the whole working set, and 4 KiB copies at random pages, through the
 * address space ({@code as*}) and a {@link SoftTlb} ({@code tlb*}), with the RAM from each {@code backend}
 * ({@link Backends}: the default {@code Arena}, private anonymous mmap, memfd, a shared file). The baselines in the
 * same run are the {@code arena} backend's rows, raw {@link MemorySegment} access ({@code raw*}) to a plain
 * {@code Arena} segment of the same size (the JVM's limit; it does not depend on the backend, so its rows also show
 * the run's noise), and raw access to the backend's own segment ({@code segment*}: the memory with no translation).
 *
 * <p>Every page is written in setup, so the numbers are for resident memory; page faults, first touch and
 * creation are {@link BackendCreationBenchmark}'s and {@link DiscardBenchmark}'s. Each invocation walks 64 Ki
 * precomputed random addresses (8-byte aligned for loads and stores, page-aligned for copies); times are per
 * access. The map is one RAM region at 1 GiB; what many regions cost is {@code SoftTlbBenchmark}'s question.
 * Not covered: accesses from several threads, and memory a second process is writing at the same time.
 *
 * <p>Run: {@code ./guestmem bench BackendAccessBenchmark}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(BackendAccessBenchmark.ACCESSES)
@State(Scope.Thread)
public class BackendAccessBenchmark {
    /** Accesses per invocation: 64 Ki. */
    static final int ACCESSES = 1 << 16;
    /** Guest-physical address of the RAM under test: 1 GiB. */
    static final long RAM_BASE = 0x4000_0000L;
    static final int PAGE = 4096;
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @Param({"arena", "anonymous", "memfd", "file"})
    public String backend;

    @Param({"1048576", "67108864"})
    public long workingSet;

    Backends backends;
    MemoryRegion ram;
    /** The backend's memory, for the {@code segment*} rows. */
    MemorySegment ramSegment;
    AddressSpace addressSpace;
    SoftTlb tlb;
    /** The baseline: a plain segment holding the same bytes as the guest RAM. */
    MemorySegment raw;
    /** Random 8-byte-aligned offsets into the working set, and the same as guest-physical addresses. */
    long[] offsets;
    long[] addresses;
    /** Random page offsets, and the same as guest-physical addresses, for the copies. */
    long[] pageOffsets;
    long[] pageAddresses;
    MemorySegment buffer;
    private Arena arena;

    @Setup
    public void setup() {
        backends = new Backends();
        MemorySystem system = new MemorySystem(backends.allocator(backend));
        ram = system.ram("ram", workingSet);
        ramSegment = ram.ramSegment();
        fill(ramSegment);
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        root.addSubregion(RAM_BASE, ram);
        addressSpace = system.addressSpace("memory", root);
        // Enough entries for every page of the 64 MiB set: a backend must not be judged by TLB misses.
        tlb = new SoftTlb(addressSpace, (int) Math.max(1024, workingSet / PAGE), U);
        arena = Arena.ofShared();
        raw = arena.allocate(workingSet, PAGE);
        fill(raw);
        buffer = arena.allocate(PAGE, PAGE);
        SplittableRandom rnd = new SplittableRandom(42);
        offsets = new long[ACCESSES];
        addresses = new long[ACCESSES];
        pageOffsets = new long[ACCESSES];
        pageAddresses = new long[ACCESSES];
        for (int i = 0; i < ACCESSES; i++) {
            offsets[i] = rnd.nextLong(workingSet / 8) * 8;
            addresses[i] = RAM_BASE + offsets[i];
            pageOffsets[i] = rnd.nextLong(workingSet / PAGE) * PAGE;
            pageAddresses[i] = RAM_BASE + pageOffsets[i];
        }
    }

    @TearDown
    public void tearDown() {
        ram.system().transaction(() -> ram.container().delSubregion(ram));
        ram.destroy();
        ram.system().rcu().barrier(); // the mapping is gone before the next trial maps another
        arena.close();
        backends.close();
    }

    // ---------------------------------------------------------------- 8-byte loads

    @Benchmark
    public long rawLoad() {
        final MemorySegment seg = raw;
        long sum = 0;
        for (long off : offsets) {
            sum += seg.get(U64_LE, off);
        }
        return sum;
    }

    /** Raw access to the backend's own segment: what the memory costs with no translation at all. */
    @Benchmark
    public long segmentLoad() {
        final MemorySegment seg = ramSegment;
        long sum = 0;
        for (long off : offsets) {
            sum += seg.get(U64_LE, off);
        }
        return sum;
    }

    @Benchmark
    public long asLoad() {
        final AddressSpace as = addressSpace;
        long sum = 0;
        for (long addr : addresses) {
            sum += as.ldqLe(addr, U, null);
        }
        return sum;
    }

    @Benchmark
    public long tlbLoad() {
        final SoftTlb t = tlb;
        long sum = 0;
        for (long addr : addresses) {
            sum += t.ldqLe(addr);
        }
        return sum;
    }

    // ---------------------------------------------------------------- 8-byte stores

    @Benchmark
    public void rawStore() {
        final MemorySegment seg = raw;
        final long[] o = offsets;
        for (int i = 0; i < o.length; i++) {
            seg.set(U64_LE, o[i], i);
        }
    }

    @Benchmark
    public void segmentStore() {
        final MemorySegment seg = ramSegment;
        final long[] o = offsets;
        for (int i = 0; i < o.length; i++) {
            seg.set(U64_LE, o[i], i);
        }
    }

    @Benchmark
    public int asStore() {
        final AddressSpace as = addressSpace;
        final long[] a = addresses;
        int result = 0;
        for (int i = 0; i < a.length; i++) {
            result |= as.stqLe(a[i], i, U);
        }
        return result;
    }

    @Benchmark
    public int tlbStore() {
        final SoftTlb t = tlb;
        final long[] a = addresses;
        for (int i = 0; i < a.length; i++) {
            t.stqLe(a[i], i);
        }
        return t.takeResult();
    }

    // ---------------------------------------------------------------- 4 KiB copies out of guest RAM

    @Benchmark
    public MemorySegment rawCopy() {
        final MemorySegment seg = raw;
        final MemorySegment buf = buffer;
        for (long off : pageOffsets) {
            MemorySegment.copy(seg, off, buf, 0, PAGE);
        }
        return buf;
    }

    @Benchmark
    public int asCopy() {
        final AddressSpace as = addressSpace;
        final MemorySegment buf = buffer;
        int result = 0;
        for (long addr : pageAddresses) {
            result |= as.read(addr, U, buf, 0, PAGE);
        }
        return result;
    }

    /** The same bytes in every working set of a size: each 8-byte word holds its offset times an odd constant. */
    static void fill(MemorySegment seg) {
        for (long off = 0; off < seg.byteSize(); off += 8) {
            seg.set(U64_LE, off, off * 0x9e37_79b9_7f4a_7c15L);
        }
    }
}
