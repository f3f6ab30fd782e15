package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyMemoryClient;
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
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * What the CODE client costs a JIT emulator's 8-byte guest stores, through the {@link SoftTlb} ({@code tlbStore}) and
 * through the address space's {@code stq_le} ({@code addressSpaceStore}), by how the RAM is set up ({@code code}):
 * <ul>
 *   <li>{@code unlogged}, the baseline in the same run: nobody logs the RAM;</li>
 *   <li>{@code logged}: the RAM logs CODE, as a JIT's RAM does, and no page holds translated code;</li>
 *   <li>{@code protected}: every page is protected ({@link CodeProtection#protect}) and stays so, so every store is
 *   reported to a listener that only counts (a JIT that keeps its code): the price of a self-modifying store.</li>
 * </ul>
 * The same {@value SoftTlbBenchmark#ADDRESSES} random offsets as {@link SoftTlbBenchmark}, into 1 MiB (cached in the
 * 1,024-entry TLB: hits) or 64 MiB (mostly TLB misses); times are per store.
 *
 * <p>Run: {@code ./guestmem bench CodeProtectionBenchmark}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(SoftTlbBenchmark.ADDRESSES)
public class CodeProtectionBenchmark {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    /** The RAM under test at {@link SoftTlbBenchmark#RAM_BASE}, its address space and a TLB over it. */
    @State(Scope.Thread)
    public static class Guest {
        @Param({"1048576", "67108864"})
        public long workingSet;

        @Param({"unlogged", "logged", "protected"})
        public String code;

        AddressSpace addressSpace;
        SoftTlb tlb;
        long[] addresses;
        /** Bytes the listener heard of. */
        long reported;

        @Setup
        public void setup() {
            MemorySystem system = new MemorySystem();
            MemoryRegion ram = system.ram("ram", workingSet);
            MemoryRegion root = system.container("system", U64.SIZE_2_64);
            root.addSubregion(SoftTlbBenchmark.RAM_BASE, ram);
            if (!code.equals("unlogged")) {
                ram.setLog(true, DirtyMemoryClient.CODE);
            }
            if (code.equals("protected")) {
                CodeProtection.of(system).addListener((ramAddr, length) -> reported += length);
                CodeProtection.of(system).protect(ram.ramBlock().offset(), workingSet);
            }
            addressSpace = system.addressSpace("memory", root);
            tlb = new SoftTlb(addressSpace, SoftTlb.DEFAULT_ENTRIES, U);
            long[] offsets = SoftTlbBenchmark.randomOffsets(workingSet, 42);
            addresses = new long[offsets.length];
            for (int i = 0; i < addresses.length; i++) {
                addresses[i] = SoftTlbBenchmark.RAM_BASE + offsets[i];
            }
        }
    }

    @Benchmark
    public int tlbStore(Guest guest) {
        return SoftTlbBenchmark.tlbStores(guest.tlb, guest.addresses);
    }

    @Benchmark
    public int addressSpaceStore(Guest guest) {
        return SoftTlbBenchmark.addressSpaceStores(guest.addressSpace, guest.addresses);
    }
}
