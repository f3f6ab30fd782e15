package dev.guestmem.bench.backend;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.BenchmarkParams;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;

/**
 * Giving 1 GiB of guest RAM back to the host and taking it again, one shot per invocation, per {@code backend}
 * ({@link Backends}): {@code discard} is {@link AbstractRamBlock#discardRange} of the whole block after every page was
 * written (QEMU's {@code ram_block_discard_range}: MADV_DONTNEED for private anonymous memory, a punched hole for
 * memfds and shared files, zeroing for {@code Arena} memory, which cannot be given back); {@code repopulate} writes
 * one byte in every 4 KiB page of a discarded block, the page faults a guest pays to use it again. The
 * {@code arena} rows are the baseline: what discard costs where the host gets nothing back.
 *
 * <p>Resident memory of the block before the discard, after it and after re-populating is printed at the end of each
 * trial ({@code resident:} lines in the fork's output, from /proc/self/smaps).
 * Not covered: huge pages, and discards of parts of a block (a balloon's 4 KiB pages, a virtio-mem block).
 *
 * <p>Run: {@code ./guestmem bench DiscardBenchmark}.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 5)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-XX:MaxDirectMemorySize=4g"})
@State(Scope.Thread)
public class DiscardBenchmark {
    /** Bytes of RAM discarded and re-populated: 1 GiB (smaller in the benchmark's test). */
    long size = 1L << 30;
    static final long PAGE = 4096;

    @Param({"arena", "anonymous", "memfd", "file"})
    public String backend;

    Backends backends;
    MemoryRegion ram;
    AbstractRamBlock block;
    MemorySegment memory;
    long residentBefore = -1;
    long residentDiscarded = -1;
    long residentRepopulated = -1;

    @Setup(Level.Trial)
    public void setup() {
        backends = new Backends();
        MemorySystem system = new MemorySystem(backends.allocator(backend));
        ram = system.ram("ram", size);
        block = (AbstractRamBlock) ram.ramBlock();
        memory = ram.ramSegment();
    }

    @Setup(Level.Invocation)
    public void prepare(BenchmarkParams params) {
        prepare(discarding(params));
    }

    @TearDown(Level.Invocation)
    public void record(BenchmarkParams params) {
        record(discarding(params));
    }

    /**
     * Before a discard, every page is written, so all of the block is resident; before a re-populate, the block is
     * discarded.
     */
    void prepare(boolean discarding) {
        if (discarding) {
            touch(memory);
            residentBefore = ResidentMemory.of(memory);
        } else {
            block.discardRange(0, size);
            residentDiscarded = ResidentMemory.of(memory);
        }
    }

    /** The block's resident memory after the shot. */
    void record(boolean discarding) {
        if (discarding) {
            residentDiscarded = ResidentMemory.of(memory);
        } else {
            residentRepopulated = ResidentMemory.of(memory);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        System.out.println("resident: backend=" + backend
                + (residentBefore >= 0 ? " before=" + ResidentMemory.mib(residentBefore) : "")
                + " discarded=" + ResidentMemory.mib(residentDiscarded)
                + (residentRepopulated >= 0 ? " repopulated=" + ResidentMemory.mib(residentRepopulated) : ""));
        ram.destroy();
        ram.system().rcu().barrier();
        backends.close();
    }

    /** Whether this trial measures {@link #discard} (else {@link #repopulate}). */
    private static boolean discarding(BenchmarkParams params) {
        return params.getBenchmark().endsWith(".discard");
    }

    @Benchmark
    public AbstractRamBlock discard() {
        block.discardRange(0, size);
        return block;
    }

    @Benchmark
    public MemorySegment repopulate() {
        touch(memory);
        return memory;
    }

    /** Writes one byte in every page of {@code m}. */
    static void touch(MemorySegment m) {
        for (long off = 0; off < m.byteSize(); off += PAGE) {
            m.set(ValueLayout.JAVA_BYTE, off, (byte) 1);
        }
    }
}
