package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.GlobalLock;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * What the machine's global lock ({@link GlobalLock}, QEMU's BQL) costs an MMIO access: nanoseconds per 8-byte
 * {@code ldqLe} through the address space to a read-only register file, mapped twice: once with ops that keep global
 * locking (the default) and once with ops that clear it (the lock-free baseline, same callbacks). Each invocation
 * makes {@link #ACCESSES} loads at precomputed random aligned offsets.
 *
 * <ul>
 *   <li>{@code lockFree} / {@code locked}: one thread, so the lock is uncontended: its cost is a take and a release
 *   per access.</li>
 *   <li>{@code lockedWhileHeld}: the thread holds the lock around the whole batch, as a main loop running device
 *   code does: each access only checks that it holds it.</li>
 *   <li>{@code contendedLockFree} / {@code contendedLocked}: two threads at once on the same device (JMH groups),
 *   each figure per access of one thread; locked accesses serialize and the lock bounces between the cores.</li>
 * </ul>
 *
 * <p>Run: {@code ./guestmem bench GlobalLockBenchmark}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(GlobalLockBenchmark.ACCESSES)
public class GlobalLockBenchmark {
    static final int ACCESSES = 1 << 16;
    static final long LOCKED_BASE = 0xfed0_0000L;
    static final long FREE_BASE = 0xfed1_0000L;
    static final int DEVICE_SIZE = 0x1000;
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    /** The machine, shared by the threads of a group. */
    @State(Scope.Benchmark)
    public static class Machine {
        MemorySystem system;
        AddressSpace addressSpace;
        final long[] regs = new long[DEVICE_SIZE / 8];

        @Setup
        public void setup() {
            SplittableRandom random = new SplittableRandom(4);
            for (int i = 0; i < regs.length; i++) {
                regs[i] = random.nextLong();
            }
            system = new MemorySystem();
            MemoryRegion root = system.container("system", U64.SIZE_2_64);
            MemoryRegion locked = system.io("locked", DEVICE_SIZE, ops().build());
            MemoryRegion free = system.io("lock-free", DEVICE_SIZE, ops().clearGlobalLocking().build());
            system.transaction(() -> {
                root.addSubregion(0, system.ram("ram", 0x10000));
                root.addSubregion(LOCKED_BASE, locked);
                root.addSubregion(FREE_BASE, free);
            });
            addressSpace = system.addressSpace("memory", root);
        }

        /** Reads only, so that the lock-free device is safe on several threads without synchronizing. */
        private MemoryRegionOps.Builder ops() {
            return MemoryRegionOps.builder()
                    .read((addr, size) -> regs[(int) (addr >>> 3)])
                    .endianness(DeviceEndian.LITTLE)
                    .valid(1, 8, false)
                    .impl(1, 8, false);
        }
    }

    /** Each thread's offsets into the device, 8-byte aligned. */
    @State(Scope.Thread)
    public static class Offsets {
        long[] offsets;

        @Setup
        public void setup() {
            SplittableRandom random = new SplittableRandom(Thread.currentThread().threadId());
            offsets = new long[ACCESSES];
            for (int i = 0; i < ACCESSES; i++) {
                offsets[i] = (long) random.nextInt(DEVICE_SIZE / 8) << 3;
            }
        }
    }

    static long loads(AddressSpace as, long base, long[] offsets) {
        long sum = 0;
        for (long off : offsets) {
            sum += as.ldqLe(base + off, ATTRS, null);
        }
        return sum;
    }

    @Benchmark
    public long lockFree(Machine m, Offsets o) {
        return loads(m.addressSpace, FREE_BASE, o.offsets);
    }

    @Benchmark
    public long locked(Machine m, Offsets o) {
        return loads(m.addressSpace, LOCKED_BASE, o.offsets);
    }

    @Benchmark
    public long lockedWhileHeld(Machine m, Offsets o) {
        final GlobalLock bql = m.system.globalLock();
        bql.lock();
        try {
            return loads(m.addressSpace, LOCKED_BASE, o.offsets);
        } finally {
            bql.unlock();
        }
    }

    @Benchmark
    @Group("contendedLockFree")
    @GroupThreads(2)
    public long contendedLockFree(Machine m, Offsets o) {
        return loads(m.addressSpace, FREE_BASE, o.offsets);
    }

    @Benchmark
    @Group("contendedLocked")
    @GroupThreads(2)
    public long contendedLocked(Machine m, Offsets o) {
        return loads(m.addressSpace, LOCKED_BASE, o.offsets);
    }
}
