package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegionOps;
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

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * What an MMIO access costs on top of the device's own callback: nanoseconds per guest load or store of
 * {@code size} bytes (1, 2, 4, 8) to a trivial device, through the {@link AddressSpace} ({@code ldub},
 * {@code lduwLe}, {@code ldlLe}, {@code ldqLe} and the matching stores: section lookup, {@code valid} checks, the
 * re-entrancy guard, byte order, {@code impl} splitting) against calling the device's {@link MemoryRegionOps.Read}
 * and {@link MemoryRegionOps.Write} callbacks directly (the baseline) with the same region offsets and the same
 * pieces. Each invocation makes 1 Mi accesses at precomputed random offsets inside the device, aligned to the size.
 *
 * <p>The device ({@link Device}) is a register file: a read returns a field, a write stores one. {@code impl8} takes
 * 1 to 8 bytes, so every access is one callback; {@code impl4} takes at most 4, so an 8-byte access arrives as two
 * 4-byte calls, as on QEMU (the baseline makes the same two calls). Loads return the sum of the values read;
 * stores leave their values in the device (the tests check both sides leave the same registers).
 *
 * <p>The device is the only MMIO in the map, so the dispatch's most-recently-used hint finds its section and the
 * callback call sites stay monomorphic: this is the cost of the access path itself. The target: MMIO
 * overhead within 10 ns of a direct call.
 *
 * <p>Run: {@code ./guestmem bench MmioDispatchBenchmark} (or e.g. {@code -p device=impl4 -p size=8}).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(AccessMaps.ADDRESSES)
@State(Scope.Thread)
public class MmioDispatchBenchmark {
    /** Guest-physical address of the device, where a PC has its HPET. */
    static final long DEVICE_BASE = 0xfed0_0000L;
    /** The device's size in bytes: one 4 KiB page. */
    static final int DEVICE_SIZE = 0x1000;
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    /** Guest access size in bytes. */
    @Param({"1", "2", "4", "8"})
    public int size;

    /** {@code impl8}: callbacks take 1..8 bytes; {@code impl4}: 1..4, so 8-byte accesses are split in two. */
    @Param({"impl8", "impl4"})
    public String device;

    AddressSpace addressSpace;
    Device dev;
    MemoryRegionOps.Read read;
    MemoryRegionOps.Write write;
    long[] addrs;
    /** Bytes per callback: {@code min(size, impl max)}. */
    int piece;

    /**
     * A trivial little-endian device: one {@code long} per 4 bytes of its registers; a read returns the field for
     * its offset, a write stores it. Threading: the benchmark thread only.
     */
    static final class Device {
        final long[] regs = new long[DEVICE_SIZE / 4];

        long read(long addr, int size) {
            return regs[(int) (addr >>> 2)];
        }

        void write(long addr, long data, int size) {
            regs[(int) (addr >>> 2)] = data;
        }
    }

    @Setup
    public void setup() {
        int implMax = switch (device) {
            case "impl8" -> 8;
            case "impl4" -> 4;
            default -> throw new IllegalArgumentException("device=" + device + ": expected impl8 or impl4");
        };
        dev = new Device();
        SplittableRandom random = new SplittableRandom(2);
        for (int i = 0; i < dev.regs.length; i++) {
            dev.regs[i] = random.nextLong();
        }
        MemoryRegionOps ops = MemoryRegionOps.builder()
                .read(dev::read)
                .write(dev::write)
                .endianness(DeviceEndian.LITTLE)
                .valid(1, 8, false)
                .impl(1, implMax, false)
                .build();
        read = ops.read();
        write = ops.write();
        piece = Math.min(size, implMax);
        AccessMaps.Map map = AccessMaps.build(1, 1 << 20);
        map.system().transaction(() -> map.root().addSubregion(DEVICE_BASE,
                map.system().io("device", DEVICE_SIZE, ops)));
        addressSpace = map.addressSpace();
        addrs = AccessMaps.randomAddresses(3, DEVICE_BASE, DEVICE_SIZE, size);
    }

    @Benchmark
    public long loadThroughAddressSpace() {
        final AddressSpace as = addressSpace;
        final int n = size;
        long sum = 0;
        for (long addr : addrs) {
            sum += switch (n) {
                case 1 -> as.ldub(addr, ATTRS, null);
                case 2 -> as.lduwLe(addr, ATTRS, null);
                case 4 -> as.ldlLe(addr, ATTRS, null) & 0xffff_ffffL;
                default -> as.ldqLe(addr, ATTRS, null);
            };
        }
        return sum;
    }

    @Benchmark
    public long loadDirect() {
        final MemoryRegionOps.Read r = read;
        final int n = size;
        final int p = piece;
        final long mask = mask(p);
        long sum = 0;
        for (long addr : addrs) {
            long off = addr - DEVICE_BASE;
            long v = 0;
            for (int i = 0; i < n; i += p) {
                v |= (r.read(off + i, p) & mask) << (i * 8);
            }
            sum += v;
        }
        return sum;
    }

    @Benchmark
    public int storeThroughAddressSpace() {
        final AddressSpace as = addressSpace;
        final int n = size;
        int result = 0;
        for (long addr : addrs) {
            long v = value(addr);
            result |= switch (n) {
                case 1 -> as.stb(addr, (int) v, ATTRS);
                case 2 -> as.stwLe(addr, (int) v, ATTRS);
                case 4 -> as.stlLe(addr, (int) v, ATTRS);
                default -> as.stqLe(addr, v, ATTRS);
            };
        }
        return result;
    }

    @Benchmark
    public void storeDirect() {
        final MemoryRegionOps.Write w = write;
        final int n = size;
        final int p = piece;
        final long mask = mask(p);
        final long sizeMask = mask(n);
        for (long addr : addrs) {
            long off = addr - DEVICE_BASE;
            long v = value(addr) & sizeMask;
            for (int i = 0; i < n; i += p) {
                w.write(off + i, (v >>> (i * 8)) & mask, p);
            }
        }
    }

    /** What a store to {@code addr} writes: the address mixed, so that all 64 bits vary. */
    static long value(long addr) {
        return addr * 0x9e37_79b9_7f4a_7c15L;
    }

    /** The low {@code size} bytes. */
    static long mask(int size) {
        return size == 8 ? -1L : (1L << (size * 8)) - 1;
    }
}
