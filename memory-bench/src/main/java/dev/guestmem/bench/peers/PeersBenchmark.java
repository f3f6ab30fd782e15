package dev.guestmem.bench.peers;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
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
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static dev.guestmem.bench.peers.PeersPattern.ACCESSES;
import static dev.guestmem.bench.peers.PeersPattern.COPIES;
import static dev.guestmem.bench.peers.PeersPattern.PAGE_SIZE;

/**
 * guestmem's general access path against its peers on the peers' own pattern ({@link PeersPattern}: 64 MiB of RAM in
 * {@code regions} = 1, 100 or 1,000 RAM regions, random accesses spread over all of them), in one JMH run:
 * <ul>
 *   <li>{@code raw*}: one {@link MemorySegment} of 64 MiB at the same offsets (the RAM counted without holes), the
 *   JVM's limit; it does not depend on {@code regions}, so JMH runs it once;</li>
 *   <li>{@code addressSpace*}: guestmem's {@link AddressSpace} ({@code ldq_le}, {@code stq_le}, and {@code read} and
 *   {@code write} of 4 KiB into and out of a native buffer);</li>
 *   <li>{@code softTlb*}: a {@link SoftTlb} of {@link SoftTlb#DEFAULT_ENTRIES} entries over the same address space,
 *   which covers 4 MiB of the 64 and so mostly misses ({@link #softTlbHitRate}); it has no bulk copy;</li>
 *   <li>{@code unicorn*}: Unicorn 2 ({@link UnicornEngine}, Debian's {@code libunicorn2}) through FFM downcalls, the
 *   same map built with {@code uc_mem_map}, accessed with {@code uc_mem_read} and {@code uc_mem_write}.</li>
 * </ul>
 * Columns (method suffixes): {@code Read8} and {@code Write8}, {@value PeersPattern#ACCESSES} random 8-byte-aligned
 * loads and stores per invocation; {@code Read4k} and {@code Write4k}, {@value PeersPattern#COPIES} copies of a
 * random whole page between guest RAM and a native 4 KiB buffer; {@code Write8Dirty}, the 8-byte stores with
 * migration dirty logging on for all RAM ({@link MemorySystem#globalDirtyLogStart}). Nobody takes the dirty bits while
 * it runs, so after the first pass every mark finds its page dirty, as in vm-memory's run. Unicorn keeps no dirty log.
 * Times are per access. vm-memory, the other peer, runs right after in its own harness; {@link PeersComparison} prints
 * both in one table.
 *
 * <p>Every method returns what it read (a sum) or the buffer and results it wrote, and fails when any access did not
 * succeed, so an unmapped address can never pass for a fast one. The addresses are precomputed in the setup.
 *
 * <p>Run: {@code ./guestmem peers} (this class, vm-memory, the table); alone: {@code ./guestmem bench PeersBenchmark}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class PeersBenchmark {
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    /** The baseline: all RAM as one segment, indexed by offsets counted without holes. */
    @State(Scope.Thread)
    public static class Raw {
        MemorySegment ram;
        long[] words;
        long[] pages;
        MemorySegment buffer;

        @Setup
        public void setup() {
            ram = Arena.ofAuto().allocate(PeersPattern.RAM_SIZE, PAGE_SIZE);
            for (long off = 0; off < PeersPattern.RAM_SIZE; off += 8) {
                ram.set(U64_LE, off, PeersPattern.initialWord(off));
            }
            words = PeersPattern.wordOffsets(PeersPattern.SEED);
            pages = PeersPattern.pageOffsets(PeersPattern.SEED);
            buffer = Arena.ofAuto().allocate(PAGE_SIZE, PAGE_SIZE);
        }
    }

    /** What {@link Guest} and {@link LoggedGuest} have: the region count and guestmem's map of the pattern. */
    @State(Scope.Thread)
    public abstract static class GuestState {
        @Param({"1", "100", "1000"})
        public int regions;

        GuestMap map;

        @TearDown
        public void tearDown() {
            map.close();
        }
    }

    /** guestmem's map of the pattern: an address space, a TLB of the default size over it, the addresses. */
    @State(Scope.Thread)
    public static class Guest extends GuestState {
        @Setup
        public void setup() {
            map = GuestMap.build(new PeersPattern(regions), false);
        }
    }

    /** The same map with migration dirty logging on for all its RAM. */
    @State(Scope.Thread)
    public static class LoggedGuest extends GuestState {
        @Setup
        public void setup() {
            map = GuestMap.build(new PeersPattern(regions), true);
        }
    }

    /** Unicorn's engine with the pattern's map, and the addresses. */
    @State(Scope.Thread)
    public static class Unicorn {
        @Param({"1", "100", "1000"})
        public int regions;

        UnicornEngine engine;
        long[] words;
        long[] pages;
        MemorySegment word;
        MemorySegment buffer;

        @Setup
        public void setup() {
            PeersPattern pattern = new PeersPattern(regions);
            engine = mapUnicorn(pattern);
            words = pattern.guestAddresses(PeersPattern.wordOffsets(PeersPattern.SEED));
            pages = pattern.guestAddresses(PeersPattern.pageOffsets(PeersPattern.SEED));
            word = Arena.ofAuto().allocate(8, 8);
            buffer = Arena.ofAuto().allocate(PAGE_SIZE, PAGE_SIZE);
        }

        @TearDown
        public void tearDown() {
            engine.close();
        }
    }

    /**
     * guestmem's side of the pattern: one {@link MemorySystem} (RAM from an {@link Arena}), a RAM region per pattern
     * region at its address, every word at its {@link PeersPattern#initialWord}, and the addresses as guest-physical
     * ones.
     */
    record GuestMap(MemorySystem system, List<MemoryRegion> ram, AddressSpace addressSpace, SoftTlb tlb,
                    long[] words, long[] pages, MemorySegment buffer, boolean logged) implements AutoCloseable {

        static GuestMap build(PeersPattern pattern, boolean logged) {
            MemorySystem system = new MemorySystem();
            MemoryRegion root = system.container("system", U64.SIZE_2_64);
            List<MemoryRegion> ram = new ArrayList<>();
            system.transaction(() -> {
                for (int r = 0; r < pattern.regions(); r++) {
                    MemoryRegion region = system.ram("ram" + r, pattern.regionSize(r));
                    MemorySegment host = region.ramSegment();
                    long first = pattern.regionOffset(r);
                    for (long off = 0; off < host.byteSize(); off += 8) {
                        host.set(U64_LE, off, PeersPattern.initialWord(first + off));
                    }
                    root.addSubregion(pattern.regionBase(r), region);
                    ram.add(region);
                }
            });
            AddressSpace as = system.addressSpace("memory", root);
            if (logged) {
                system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
            }
            return new GuestMap(system, List.copyOf(ram), as, new SoftTlb(as, SoftTlb.DEFAULT_ENTRIES, U),
                    pattern.guestAddresses(PeersPattern.wordOffsets(PeersPattern.SEED)),
                    pattern.guestAddresses(PeersPattern.pageOffsets(PeersPattern.SEED)),
                    Arena.ofAuto().allocate(PAGE_SIZE, PAGE_SIZE), logged);
        }

        /** Takes the RAM out of the map and destroys it, which frees its 64 MiB after the grace period. */
        @Override
        public void close() {
            if (logged) {
                system.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
            }
            MemoryRegion root = addressSpace.root();
            system.destroyAddressSpace(addressSpace);
            system.transaction(() -> ram.forEach(root::delSubregion));
            ram.forEach(MemoryRegion::destroy);
        }
    }

    /** A Unicorn engine with the pattern's regions mapped ({@code uc_mem_map}) and filled as guestmem's. */
    static UnicornEngine mapUnicorn(PeersPattern pattern) {
        UnicornEngine engine = UnicornEngine.open();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fill = arena.allocate(pattern.regionSize(0), PAGE_SIZE); // region 0 is never smaller
            for (int r = 0; r < pattern.regions(); r++) {
                long base = pattern.regionBase(r);
                long size = pattern.regionSize(r);
                engine.map(base, size);
                for (long off = 0; off < size; off += 8) {
                    fill.set(U64_LE, off, PeersPattern.initialWord(pattern.regionOffset(r) + off));
                }
                UnicornEngine.check(engine.write(base, fill, size), "uc_mem_write(address=0x"
                        + Long.toHexString(base) + ", size=0x" + Long.toHexString(size) + ")");
            }
        } catch (RuntimeException | Error e) {
            engine.close();
            throw e;
        }
        return engine;
    }

    // ---------------------------------------------------------------- raw MemorySegment: the limit

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long rawRead8(Raw raw) {
        final MemorySegment ram = raw.ram;
        long sum = 0;
        for (long off : raw.words) {
            sum += ram.get(U64_LE, off);
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public MemorySegment rawWrite8(Raw raw) {
        final MemorySegment ram = raw.ram;
        final long[] words = raw.words;
        for (int i = 0; i < words.length; i++) {
            ram.set(U64_LE, words[i], i);
        }
        return ram;
    }

    @Benchmark
    @OperationsPerInvocation(COPIES)
    public MemorySegment rawRead4k(Raw raw) {
        final MemorySegment ram = raw.ram;
        final MemorySegment buffer = raw.buffer;
        for (long off : raw.pages) {
            MemorySegment.copy(ram, off, buffer, 0, PAGE_SIZE);
        }
        return buffer;
    }

    @Benchmark
    @OperationsPerInvocation(COPIES)
    public MemorySegment rawWrite4k(Raw raw) {
        return rawWrites4k(raw);
    }

    /** {@link MemorySegment#copy} of the buffer into each of the pattern's pages of the raw segment; returns it. */
    static MemorySegment rawWrites4k(Raw raw) {
        final MemorySegment ram = raw.ram;
        final MemorySegment buffer = raw.buffer;
        for (long off : raw.pages) {
            MemorySegment.copy(buffer, 0, ram, off, PAGE_SIZE);
        }
        return ram;
    }

    // ---------------------------------------------------------------- guestmem AddressSpace

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long addressSpaceRead8(Guest guest) {
        final AddressSpace as = guest.map.addressSpace();
        final int[] result = new int[1];
        int results = MemTxResult.OK;
        long sum = 0;
        for (long addr : guest.map.words()) {
            sum += as.ldqLe(addr, U, result);
            results |= result[0];
        }
        return requireOk(results, "ldq_le") + sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public int addressSpaceWrite8(Guest guest) {
        return addressSpaceStores(guest.map);
    }

    @Benchmark
    @OperationsPerInvocation(COPIES)
    public MemorySegment addressSpaceRead4k(Guest guest) {
        final AddressSpace as = guest.map.addressSpace();
        final MemorySegment buffer = guest.map.buffer();
        int result = MemTxResult.OK;
        for (long addr : guest.map.pages()) {
            result |= as.read(addr, U, buffer, 0, PAGE_SIZE);
        }
        requireOk(result, "read");
        return buffer;
    }

    @Benchmark
    @OperationsPerInvocation(COPIES)
    public int addressSpaceWrite4k(Guest guest) {
        final AddressSpace as = guest.map.addressSpace();
        final MemorySegment buffer = guest.map.buffer();
        int result = MemTxResult.OK;
        for (long addr : guest.map.pages()) {
            result |= as.write(addr, U, buffer, 0, PAGE_SIZE);
        }
        return requireOk(result, "write");
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public int addressSpaceWrite8Dirty(LoggedGuest guest) {
        return addressSpaceStores(guest.map);
    }

    /** {@code stq_le} of the loop index at each word address; returns the OR of the results, which must be OK. */
    static int addressSpaceStores(GuestMap map) {
        final AddressSpace as = map.addressSpace();
        final long[] words = map.words();
        int result = MemTxResult.OK;
        for (int i = 0; i < words.length; i++) {
            result |= as.stqLe(words[i], i, U);
        }
        return requireOk(result, "stq_le");
    }

    // ---------------------------------------------------------------- guestmem SoftTlb

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long softTlbRead8(Guest guest) {
        final SoftTlb tlb = guest.map.tlb();
        long sum = 0;
        for (long addr : guest.map.words()) {
            sum += tlb.ldqLe(addr);
        }
        return requireOk(tlb.takeResult(), "SoftTlb.ldqLe") + sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public int softTlbWrite8(Guest guest) {
        return softTlbStores(guest.map);
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public int softTlbWrite8Dirty(LoggedGuest guest) {
        return softTlbStores(guest.map);
    }

    /** {@code stq_le} of the loop index at each word address through the TLB; returns its result, which must be OK. */
    static int softTlbStores(GuestMap map) {
        final SoftTlb tlb = map.tlb();
        final long[] words = map.words();
        for (int i = 0; i < words.length; i++) {
            tlb.stqLe(words[i], i);
        }
        return requireOk(tlb.takeResult(), "SoftTlb.stqLe");
    }

    /**
     * The share of {@value PeersPattern#ACCESSES} loads that hit a {@link SoftTlb#DEFAULT_ENTRIES}-entry TLB over the
     * pattern's map, measured on a second pass over the benchmark's addresses (the first fills the TLB), from the TLB's
     * {@link SoftTlb#missCount()}: what {@code softTlb*} run at.
     */
    static double softTlbHitRate(int regions) {
        try (GuestMap map = GuestMap.build(new PeersPattern(regions), false)) {
            SoftTlb tlb = map.tlb();
            long sum = 0;
            for (long addr : map.words()) {
                sum += tlb.ldqLe(addr);
            }
            long missesBefore = tlb.missCount();
            for (long addr : map.words()) {
                sum += tlb.ldqLe(addr);
            }
            requireOk(tlb.takeResult(), "SoftTlb.ldqLe sum=" + sum);
            return 1.0 - (double) (tlb.missCount() - missesBefore) / map.words().length;
        }
    }

    // ---------------------------------------------------------------- Unicorn

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public long unicornRead8(Unicorn uc) {
        final UnicornEngine engine = uc.engine;
        final MemorySegment word = uc.word;
        int err = UnicornEngine.UC_ERR_OK;
        long sum = 0;
        for (long addr : uc.words) {
            err |= engine.read(addr, word, 8);
            sum += word.get(U64_LE, 0);
        }
        return requireUcOk(err, "uc_mem_read") + sum;
    }

    @Benchmark
    @OperationsPerInvocation(ACCESSES)
    public int unicornWrite8(Unicorn uc) {
        final UnicornEngine engine = uc.engine;
        final MemorySegment word = uc.word;
        final long[] words = uc.words;
        int err = UnicornEngine.UC_ERR_OK;
        for (int i = 0; i < words.length; i++) {
            word.set(U64_LE, 0, i);
            err |= engine.write(words[i], word, 8);
        }
        return requireUcOk(err, "uc_mem_write");
    }

    @Benchmark
    @OperationsPerInvocation(COPIES)
    public MemorySegment unicornRead4k(Unicorn uc) {
        final UnicornEngine engine = uc.engine;
        final MemorySegment buffer = uc.buffer;
        int err = UnicornEngine.UC_ERR_OK;
        for (long addr : uc.pages) {
            err |= engine.read(addr, buffer, PAGE_SIZE);
        }
        requireUcOk(err, "uc_mem_read");
        return buffer;
    }

    @Benchmark
    @OperationsPerInvocation(COPIES)
    public int unicornWrite4k(Unicorn uc) {
        final UnicornEngine engine = uc.engine;
        final MemorySegment buffer = uc.buffer;
        int err = UnicornEngine.UC_ERR_OK;
        for (long addr : uc.pages) {
            err |= engine.write(addr, buffer, PAGE_SIZE);
        }
        return requireUcOk(err, "uc_mem_write");
    }

    // ---------------------------------------------------------------- results

    /** Returns {@code result} when it is {@link MemTxResult#OK}; a failed access would make the figure meaningless. */
    static int requireOk(int result, String what) {
        if (result != MemTxResult.OK) {
            throw new IllegalStateException(what + " result=" + MemTxResult.toString(result)
                    + ": an access of the pattern failed");
        }
        return result;
    }

    /** Returns {@code err} when it is {@code UC_ERR_OK}; else throws naming Unicorn's error. */
    static int requireUcOk(int err, String what) {
        UnicornEngine.check(err, what);
        return err;
    }
}
