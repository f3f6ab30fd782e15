package dev.guestmem.bench.riscv;

import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import dev.guestmem.bench.riscv.RiscvVirtMachine.RunResult;
import org.openjdk.jmh.annotations.AuxCounters;
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
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * What guestmem costs a whole emulator: guest instructions per second of {@link Rv64Cpu} running the memory-bound
 * guest programs ({@code program}: memcpy, sort, hash) with every access through a per-hart {@code HostTlb}
 * ({@code path=HOST_TLB}, the fast TLB, inside the hart's read-side section with a check point every
 * {@value Rv64Cpu#CHECK_INTERVAL} instructions, as the main job runs), through a per-hart {@code SoftTlb}
 * ({@code path=SOFT_TLB}, the checked TLB), and, the baseline, the same interpreter over the RAM as a plain
 * {@code MemorySegment} ({@code path=SEGMENT}: no view check, no TLB, no dirty tracking). One invocation is one
 * complete run of the program on one hart, from the flash to the finisher; the {@code instructions} counter is the
 * guest instructions retired, per second. The ratios HOST_TLB / SEGMENT and SOFT_TLB / SEGMENT of that counter are
 * guestmem's cost.
 *
 * <p>Run: {@code ./guestmem bench GuestInstructionsBenchmark}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 5, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class GuestInstructionsBenchmark {
    /** A bound far above any program's length, so that a broken run ends instead of hanging the benchmark. */
    static final long MAX_INSTRUCTIONS = 1_000_000_000L;

    /** A machine with the program in its flash. */
    @State(Scope.Thread)
    public static class Guest {
        @Param({"MEMCPY", "SORT", "HASH"})
        public GuestProgram program;

        @Param({"HOST_TLB", "SOFT_TLB", "SEGMENT"})
        public MemoryPath path;

        RiscvVirtMachine machine;

        @Setup(Level.Trial)
        public void setup() {
            machine = RiscvVirtMachine.create();
            machine.loadBootImage(program.image());
        }
    }

    /** Guest instructions retired; JMH reports it per second. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Retired {
        public long instructions;

        @Setup(Level.Iteration)
        public void clear() {
            instructions = 0;
        }
    }

    /** One run of the program; returns its checksum, and fails the run if it did not pass. */
    @Benchmark
    public long run(Guest guest, Retired retired) throws InterruptedException {
        guest.machine.reset();
        RunResult result = guest.machine.run(1, guest.path, MAX_INSTRUCTIONS);
        if (!result.passed()) {
            throw new IllegalStateException("the guest did not pass: " + result);
        }
        retired.instructions += result.totalRetired();
        return result.checksum();
    }
}
