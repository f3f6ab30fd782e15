package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.Translation;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
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

import java.util.concurrent.TimeUnit;

/**
 * What finding the region behind a guest-physical address costs, as the map grows: nanoseconds per translation of
 * one address, for maps of {@code regions} regions ({@link AccessMaps#build}: the working-set RAM plus small I/O and
 * RAM regions above 4 GiB, some sharing pages). Each invocation translates the same 1 Mi precomputed random
 * addresses (8-byte aligned) and returns the sum of their region offsets, so no lookup is dead code and every method
 * must compute the same sum (the tests check it).
 *
 * <ul>
 *   <li>{@code translate}: {@link AddressSpace#translate}, QEMU's {@code address_space_translate}, 8 bytes, read.</li>
 *   <li>{@code sectionIndex}: the allocation-free hot-path form, {@code AddressSpaceDispatch.of(as).sectionIndex(addr)} and
 *   {@code offsetInRegion}, one view snapshot per address.</li>
 *   <li>{@code binarySearch} (baseline): what a user would write without the radix tree, a binary search over the
 *   sorted range starts of the current flat view ({@code flatView().lookup(addr)}, also a fresh snapshot per
 *   address).</li>
 *   <li>{@code baseMinus} (baseline, the floor): an emulator with one RAM block and nothing else, address minus base
 *   with a bounds check. Only {@code targets=ram} gives it addresses it can answer.</li>
 * </ul>
 *
 * <p>{@code targets=ram} draws the addresses from the working set (the setting): every lookup lands in the
 * same section, so the dispatch's most-recently-used hint answers it. {@code targets=mixed} draws each address from a
 * region of the map picked at random, so the hint almost always misses and the radix tree is walked; that is the
 * case where the map's size could show. The target: translation cost flat from 10 to 100,000 regions.
 *
 * <p>Run: {@code ./guestmem bench TranslateBenchmark} (or e.g. {@code -p targets=mixed -p workingSetMiB=1}).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(AccessMaps.ADDRESSES)
@State(Scope.Thread)
public class TranslateBenchmark {
    /** Bytes a translation asks for: one 8-byte access. */
    static final long LEN = 8;

    @Param({"1", "100", "1000", "100000"})
    public int regions;

    @Param({"1", "64"})
    public int workingSetMiB;

    /** {@code ram}: addresses in the working set; {@code mixed}: in a random region of the map each. */
    @Param({"ram", "mixed"})
    public String targets;

    AddressSpace addressSpace;
    long[] addrs;
    long ramBase;
    long ramSize;

    @Setup
    public void setup() {
        ramSize = (long) workingSetMiB << 20;
        ramBase = AccessMaps.RAM_BASE;
        addressSpace = AccessMaps.build(regions, ramSize).addressSpace();
        addrs = switch (targets) {
            case "ram" -> AccessMaps.randomAddresses(1, ramBase, ramSize, 8);
            case "mixed" -> AccessMaps.addressesAcrossMap(1, regions, ramSize);
            default -> throw new IllegalArgumentException("targets=" + targets + ": expected ram or mixed");
        };
    }

    @Benchmark
    public long translate() {
        final AddressSpace as = addressSpace;
        long sum = 0;
        for (long addr : addrs) {
            Translation t = as.translate(addr, LEN, false, MemTxAttrs.UNSPECIFIED);
            sum += t.xlat();
        }
        return sum;
    }

    @Benchmark
    public long sectionIndex() {
        final AddressSpace as = addressSpace;
        long sum = 0;
        for (long addr : addrs) {
            AddressSpaceDispatch d = AddressSpaceDispatch.of(as); // one snapshot per address, as one access takes
            sum += d.offsetInRegion(d.sectionIndex(addr), addr);
        }
        return sum;
    }

    @Benchmark
    public long binarySearch() {
        final AddressSpace as = addressSpace;
        long sum = 0;
        for (long addr : addrs) {
            FlatRange fr = as.flatView().lookup(addr);
            sum += fr == null ? addr : fr.offsetInRegion() + (addr - fr.start()); // a hole: offset = address
        }
        return sum;
    }

    @Benchmark
    public long baseMinus() {
        final long base = ramBase;
        final long size = ramSize;
        long sum = 0;
        for (long addr : addrs) {
            long off = addr - base;
            sum += Long.compareUnsigned(off, size) < 0 ? off : outside(addr);
        }
        return sum;
    }

    /** Where the one-block emulator would take its slow path; out of line so the loop stays small. */
    private static long outside(long addr) {
        return addr;
    }
}
