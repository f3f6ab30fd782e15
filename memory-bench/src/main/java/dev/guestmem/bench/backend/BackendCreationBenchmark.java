package dev.guestmem.bench.backend;

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

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;

/**
 * What it costs to create a guest's RAM, one shot per invocation: {@code create} makes a RAM region of {@code size}
 * bytes from each {@code backend} ({@link Backends}); {@code -prealloc} backends populate every page first
 * (QEMU's {@code prealloc=on}). The baselines in the same run: the {@code arena} backend
 * ({@code Arena.allocate}, which zeroes every byte up front, what every guest paid before memory-offheap), and
 * {@code fillResident}, a {@link MemorySegment#fill} of an already resident segment of the same size: memory
 * bandwidth for writing {@code size} bytes, which preallocation should approach.
 *
 * <p>Each invocation's RAM is destroyed and freed (after an RCU barrier) before the next, so resident memory never
 * holds two. 16 GiB needs that much free memory for the {@code arena} and {@code -prealloc} rows; the fork raises
 * the JVM's direct-memory limit, which {@code Arena} allocations count against.
 * Not covered: huge pages (the host has none reserved by default), and the first-touch cost that lazily zeroed
 * memory pays later, page by page ({@link DiscardBenchmark}'s re-populate measures it for 1 GiB).
 *
 * <p>Run: {@code ./guestmem bench BackendCreationBenchmark}; one size: {@code -p size=1073741824}.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-XX:MaxDirectMemorySize=20g"})
public class BackendCreationBenchmark {
    /** How much RAM each shot creates. */
    @State(Scope.Benchmark)
    public static class Size {
        @Param({"1073741824", "17179869184"})
        public long size;
    }

    /** A memory system whose RAM comes from {@code backend}, and the region the last shot created. */
    @State(Scope.Thread)
    public static class Creator {
        @Param({"arena", "anonymous", "memfd", "anonymous-prealloc", "memfd-prealloc"})
        public String backend;

        Backends backends;
        MemorySystem system;
        MemoryRegion created;

        @Setup(Level.Trial)
        public void setup() {
            backends = new Backends();
            system = new MemorySystem(backends.allocator(backend));
        }

        @TearDown(Level.Invocation)
        public void free() {
            if (created != null) {
                created.destroy();
                created = null;
                system.rcu().barrier(); // freed before the next invocation allocates
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            backends.close();
        }
    }

    @Benchmark
    public MemoryRegion create(Creator c, Size s) {
        c.created = c.system.ram("ram", s.size);
        return c.created;
    }

    /** The bandwidth baseline's memory: {@code size} bytes, resident before the first shot. */
    @State(Scope.Thread)
    public static class Resident {
        Arena arena;
        MemorySegment memory;

        @Setup(Level.Trial)
        public void setup(Size s) {
            arena = Arena.ofShared();
            memory = arena.allocate(s.size, 4096);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            arena.close();
        }
    }

    /** The bandwidth baseline: writing {@code size} bytes of resident memory. */
    @Benchmark
    public MemorySegment fillResident(Resident r) {
        return r.memory.fill((byte) 1);
    }
}
