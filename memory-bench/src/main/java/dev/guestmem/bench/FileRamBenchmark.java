package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
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

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;

/**
 * What guest RAM that another process could truncate costs: RAM over a {@code FileChannel.map} segment
 * ({@code backing=file}), whose accesses take the guarded out-of-line paths that turn a fault into
 * {@code MemTxResult.ERROR}, against anonymous RAM ({@code backing=anonymous}, the baseline in the same run), for
 * 8-byte loads and stores through the address space and the {@link SoftTlb} (which never caches file pages) and 4 KiB
 * reads. The file is resident (written in full before the run) and never truncated: this is the price of the guard
 * alone. Each invocation walks {@value SoftTlbBenchmark#ADDRESSES} random 8-byte offsets of a 1 MiB working set; times
 * are per access (per copy for {@code read4k}).
 *
 * <p>Run: {@code ./guestmem bench FileRamBenchmark}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(SoftTlbBenchmark.ADDRESSES)
public class FileRamBenchmark {
    static final long WORKING_SET = 1 << 20;
    static final int COPIES = 256;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @State(Scope.Thread)
    public static class Guest {
        @Param({"anonymous", "file"})
        public String backing;

        Path file;
        FileChannel channel;
        Arena arena;
        AddressSpace addressSpace;
        SoftTlb tlb;
        long[] addresses;
        long[] pages;
        MemorySegment buffer;

        @Setup(Level.Trial)
        public void setup() throws IOException {
            MemorySystem system = new MemorySystem();
            MemoryRegion ram;
            if (backing.equals("file")) {
                file = Files.createTempFile("guestmem-bench", ".ram");
                channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
                arena = Arena.ofShared();
                channel.write(ByteBuffer.allocate((int) WORKING_SET), 0);
                ram = system.ramFromSegment("ram", channel.map(FileChannel.MapMode.READ_WRITE, 0, WORKING_SET, arena));
            } else {
                ram = system.ram("ram", WORKING_SET);
            }
            SoftTlbBenchmark.fill(ram.ramSegment());
            MemoryRegion root = system.container("system", U64.SIZE_2_64);
            root.addSubregion(SoftTlbBenchmark.RAM_BASE, ram);
            addressSpace = system.addressSpace("memory", root);
            tlb = new SoftTlb(addressSpace);
            long[] offsets = SoftTlbBenchmark.randomOffsets(WORKING_SET, 42);
            addresses = new long[offsets.length];
            for (int i = 0; i < addresses.length; i++) {
                addresses[i] = SoftTlbBenchmark.RAM_BASE + offsets[i];
            }
            pages = new long[COPIES];
            for (int i = 0; i < COPIES; i++) {
                pages[i] = SoftTlbBenchmark.RAM_BASE + (offsets[i] & ~0xfffL);
            }
            buffer = Arena.ofAuto().allocate(4096, 4096);
        }

        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            if (channel != null) {
                arena.close();
                channel.close();
                Files.delete(file);
            }
        }
    }

    @Benchmark
    public long addressSpaceLoad(Guest guest) {
        final AddressSpace as = guest.addressSpace;
        long sum = 0;
        for (long addr : guest.addresses) {
            sum += as.ldqLe(addr, U, null);
        }
        return sum;
    }

    @Benchmark
    public int addressSpaceStore(Guest guest) {
        return SoftTlbBenchmark.addressSpaceStores(guest.addressSpace, guest.addresses);
    }

    @Benchmark
    public long tlbLoad(Guest guest) {
        final SoftTlb tlb = guest.tlb;
        long sum = 0;
        for (long addr : guest.addresses) {
            sum += tlb.ldqLe(addr);
        }
        return sum;
    }

    @Benchmark
    public int tlbStore(Guest guest) {
        return SoftTlbBenchmark.tlbStores(guest.tlb, guest.addresses);
    }

    @Benchmark
    @OperationsPerInvocation(COPIES)
    public int read4k(Guest guest) {
        int result = 0;
        for (long page : guest.pages) {
            result |= guest.addressSpace.read(page, U, guest.buffer, 0, 4096);
        }
        return result;
    }
}
