package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
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
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * What a bulk copy through the address space costs against copying the same bytes between the same segments
 * yourself: nanoseconds per {@link AddressSpace#read} or {@link AddressSpace#write} of {@code size} bytes (4 KiB or
 * 1 MiB) between guest RAM at {@link #COPY_ADDR} and a host buffer, in both forms (a native {@link MemorySegment}
 * and a {@code byte[]}). The baseline, in the same run, is {@link MemorySegment#copy} of each piece between guest
 * RAM's segment and the buffer: the memcpy-class limit.
 *
 * <p>{@code sections=1}: the copy lies inside the working-set RAM, one section, one piece. {@code sections=3}: an
 * alias of the same RAM (at offset {@link #ALIAS_TARGET}) covers the middle half of the copied range, so the copy
 * crosses RAM | RAM alias | RAM, three sections, each a separate lookup and piece (the baseline copies the same three
 * pieces); at 4 KiB the three share one page, so the lookups go through a subpage. The difference between the two
 * shows the cost per section.
 *
 * <p>Every copy is at the same address, so source and destination stay in cache as far as their size allows: this
 * is per-call overhead against copy bandwidth, not memory latency. The address-space methods return their
 * {@link dev.guestmem.memory.MemTxResult}, the baselines the segment or array they filled.
 *
 * <p>Run: {@code ./guestmem bench BulkCopyBenchmark} (or e.g. {@code -p size=4096 -p sections=3}).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Thread)
public class BulkCopyBenchmark {
    /** Guest-physical address of every copy: the start of the working-set RAM. */
    static final long COPY_ADDR = AccessMaps.RAM_BASE;
    /** The working-set RAM: 4 MiB. */
    static final long RAM_SIZE = 4 << 20;
    /** Where in the RAM the alias of {@code sections=3} looks: 2 MiB, past every copied range. */
    static final long ALIAS_TARGET = 2 << 20;
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    @Param({"4096", "1048576"})
    public int size;

    /** 1: one RAM section; 3: RAM | alias of RAM | RAM. */
    @Param({"1", "3"})
    public int sections;

    AddressSpace addressSpace;
    /** The working-set RAM's host memory. */
    MemorySegment ram;
    MemorySegment buffer;
    byte[] array;
    /** The baseline's pieces: RAM offset, buffer offset and length of each, in bytes. */
    long[] ramOffsets;
    long[] bufferOffsets;
    long[] lengths;
    private Arena arena;

    @Setup
    public void setup() {
        AccessMaps.Map map = AccessMaps.build(1, RAM_SIZE);
        long quarter = size / 4;
        if (sections == 3) {
            map.system().transaction(() -> map.root().addSubregionOverlap(COPY_ADDR + quarter,
                    map.system().alias("ram-window", map.ram(), ALIAS_TARGET, 2 * quarter), 1));
            ramOffsets = new long[] {0, ALIAS_TARGET, 3 * quarter};
            bufferOffsets = new long[] {0, quarter, 3 * quarter};
            lengths = new long[] {quarter, 2 * quarter, quarter};
        } else if (sections == 1) {
            ramOffsets = new long[] {0};
            bufferOffsets = new long[] {0};
            lengths = new long[] {size};
        } else {
            throw new IllegalArgumentException("sections=" + sections + ": expected 1 or 3");
        }
        addressSpace = map.addressSpace();
        ram = map.ram().ramSegment();
        SplittableRandom random = new SplittableRandom(4);
        for (long off = 0; off < RAM_SIZE; off += 8) {
            ram.set(ValueLayout.JAVA_LONG_UNALIGNED, off, random.nextLong());
        }
        arena = Arena.ofConfined();
        buffer = arena.allocate(size, 64);
        array = new byte[size];
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public int readSegment() {
        return addressSpace.read(COPY_ADDR, ATTRS, buffer, 0, size);
    }

    @Benchmark
    public int readArray() {
        return addressSpace.read(COPY_ADDR, ATTRS, array, 0, size);
    }

    @Benchmark
    public int writeSegment() {
        return addressSpace.write(COPY_ADDR, ATTRS, buffer, 0, size);
    }

    @Benchmark
    public int writeArray() {
        return addressSpace.write(COPY_ADDR, ATTRS, array, 0, size);
    }

    @Benchmark
    public MemorySegment copyReadSegment() {
        for (int p = 0; p < lengths.length; p++) {
            MemorySegment.copy(ram, ramOffsets[p], buffer, bufferOffsets[p], lengths[p]);
        }
        return buffer;
    }

    @Benchmark
    public byte[] copyReadArray() {
        for (int p = 0; p < lengths.length; p++) {
            MemorySegment.copy(ram, ValueLayout.JAVA_BYTE, ramOffsets[p], array, (int) bufferOffsets[p],
                    (int) lengths[p]);
        }
        return array;
    }

    @Benchmark
    public MemorySegment copyWriteSegment() {
        for (int p = 0; p < lengths.length; p++) {
            MemorySegment.copy(buffer, bufferOffsets[p], ram, ramOffsets[p], lengths[p]);
        }
        return ram;
    }

    @Benchmark
    public MemorySegment copyWriteArray() {
        for (int p = 0; p < lengths.length; p++) {
            MemorySegment.copy(array, (int) bufferOffsets[p], ram, ValueLayout.JAVA_BYTE, ramOffsets[p],
                    (int) lengths[p]);
        }
        return ram;
    }
}
