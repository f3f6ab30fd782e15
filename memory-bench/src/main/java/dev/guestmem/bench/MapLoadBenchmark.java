package dev.guestmem.bench;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.memory.mtree.MtreePrinter;
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
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.TimeUnit;

/**
 * What share of {@code ./guestmem mtree -f} on a large flat map is the tools' and what share the core's. The map:
 * a 2^64 container holding {@code regions} leaves of 4 KiB side by side, RAM (layout-only) and I/O alternately.
 * {@code load} is {@code MachineMap.parse} of its JSON (Jackson, the map checks, and the core building and rendering
 * the tree); {@code coreBuild}, the baseline in the same run, builds the same tree with the core API alone and
 * commits, so {@code load - coreBuild} is the tools' share of loading. {@code print} is {@code MtreePrinter.flatViews}
 * of the loaded map (the view is already rendered: all of it is the printer's).
 *
 * <p>Run: {@code ./guestmem bench MapLoadBenchmark -p regions=1000000} (single shots: one shot of a million regions
 * takes seconds). {@code MapLoadBenchmarkTest} checks that both ways build the same flat view.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g"})
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@State(Scope.Benchmark)
public class MapLoadBenchmark {
    @Param({"100000", "1000000"})
    public int regions;

    private String json;
    private MemorySystem loaded;

    @Setup
    public void setUp() {
        json = mapJson(regions);
        loaded = MachineMap.parse(json, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES).system();
    }

    @Benchmark
    public MemorySystem load() {
        return MachineMap.parse(json, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES).system();
    }

    @Benchmark
    public MemorySystem coreBuild() {
        return buildWithCore(regions);
    }

    @Benchmark
    public String print() {
        return MtreePrinter.flatViews(loaded);
    }

    /** The map as {@code guestmem-map/1} JSON. */
    public static String mapJson(int regions) {
        StringBuilder sb = new StringBuilder(120 * regions + 200);
        writeMapJson(regions, sb);
        return sb.toString();
    }

    /** Appends the map of {@link #mapJson} to {@code out} a region at a time (a file of a million never is a string). */
    public static void writeMapJson(int regions, Appendable out) {
        try {
            out.append("{ \"format\": \"guestmem-map/1\", \"regions\": {\n \"sys\": { \"name\": \"system\", \"kind\": "
                    + "\"container\", \"size\": \"0x10000000000000000\", \"subregions\": [");
            for (int i = 0; i < regions; i++) {
                out.append(i == 0 ? "\n" : ",\n").append("  { \"region\": \"r").append(Integer.toString(i))
                        .append("\", \"addr\": \"0x").append(Long.toHexString((long) i << 12)).append("\" }");
            }
            out.append(" ] }");
            for (int i = 0; i < regions; i++) {
                out.append(",\n \"r").append(Integer.toString(i)).append("\": { \"name\": \"r").append(Integer.toString(i))
                        .append("\", \"kind\": \"").append(i % 2 == 0 ? "ram" : "io").append("\", \"size\": \"0x1000\" }");
            }
            out.append(" },\n \"addressSpaces\": [ { \"name\": \"memory\", \"root\": \"sys\" } ] }\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The same tree through the core API alone: what loading the map costs without the tools. */
    public static MemorySystem buildWithCore(int regions) {
        MemorySystem system = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegionOps ops = MachineMap.UNIMPLEMENTED_DEVICES.ops("r", "r", MachineMap.OpsSpec.DEFAULT);
        system.begin();
        try {
            MemoryRegion root = system.container("system", U64.SIZE_2_64);
            for (int i = 0; i < regions; i++) {
                String name = "r" + i;
                root.addSubregion((long) i << 12, i % 2 == 0 ? system.ram(name, 0x1000) : system.io(name, 0x1000, ops));
            }
            system.addressSpace("memory", root);
        } finally {
            system.commit();
        }
        return system;
    }
}
