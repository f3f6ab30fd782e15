package dev.guestmem.bench;

import dev.guestmem.bench.baseline.QemuStyleFlatView;
import dev.guestmem.bench.baseline.QemuStyleRenderer;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
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

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.IdentityHashMap;
import java.util.concurrent.TimeUnit;

/**
 * What one visible change costs: toggle one region of a map of {@code regions} leaves, commit, and have the new flat
 * view published. {@code guestmem} is the library's commit: it re-renders only the window the toggled region covers,
 * splices it into the old view, compares, and publishes with a release store. {@code qemuStyle} is the baseline:
 * QEMU's strategy ({@link QemuStyleRenderer}: the whole address space rendered again on every commit, with a linear
 * gap scan and array shifts per region) over a snapshot of the same tree, with the same release store.
 *
 * <p>The map ({@link #buildMap}): a 2^64 root container, an I/O region over all of it at priority -1, and
 * {@code regions} leaves 64 KiB apart from 4 GiB up: I/O regions, RAM (layout-only, so nothing is allocated) and
 * aliases into one RAM block, with every sixteenth leaf overlapping its neighbour at equal priority and every tenth
 * one at priority 1. The toggled leaf is a visible I/O region in the middle, so each invocation changes the view
 * (enabled, disabled, enabled, ...).
 *
 * <p>Run: {@code ./guestmem bench RenderBenchmark}. The baseline stops at 10,000 regions (see {@link BaselineMap}).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class RenderBenchmark {
    /** First leaf's guest-physical address. */
    static final long LEAF_BASE = 1L << 32;
    /** Distance between leaves. */
    static final long LEAF_STRIDE = 0x1_0000;
    /** The RAM block that the alias leaves look into. */
    static final long BACKING_SIZE = 1L << 20;

    /** guestmem's side: the map in a memory system with one address space. */
    @State(Scope.Thread)
    public static class GuestmemMap {
        @Param({"10", "100", "1000", "10000", "100000"})
        public int regions;

        AddressSpace addressSpace;
        MemoryRegion toggled;

        @Setup
        public void setup() {
            MemorySystem system = new MemorySystem(MemorySystem.LAYOUT_ONLY);
            MemoryRegion root = buildMap(system, regions);
            addressSpace = system.addressSpace("memory", root);
            toggled = toggledLeaf(root, regions);
        }
    }

    /**
     * The baseline's side: a snapshot of the same map. Its sizes stop at 10,000 because QEMU's strategy is
     * quadratic: at 100,000 regions one render takes 5 to 6 seconds on this project's 2-core machines, so the
     * default run would spend minutes on that one figure. {@code -p regions=100000} still runs it.
     */
    @State(Scope.Thread)
    public static class BaselineMap {
        private static final VarHandle PUBLISHED;

        static {
            try {
                PUBLISHED = MethodHandles.lookup().findVarHandle(BaselineMap.class, "published",
                        QemuStyleFlatView.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        @Param({"10", "100", "1000", "10000"})
        public int regions;

        QemuStyleRenderer.Node root;
        QemuStyleRenderer.Node toggled;
        /** The baseline's published view, stored with release as an address space's is. */
        @SuppressWarnings("unused")
        private QemuStyleFlatView published;

        @Setup
        public void setup() {
            MemorySystem system = new MemorySystem(MemorySystem.LAYOUT_ONLY);
            MemoryRegion mapRoot = buildMap(system, regions);
            IdentityHashMap<MemoryRegion, QemuStyleRenderer.Node> nodes = new IdentityHashMap<>();
            root = QemuStyleRenderer.snapshot(mapRoot, nodes);
            toggled = nodes.get(toggledLeaf(mapRoot, regions));
            published = QemuStyleRenderer.render(root);
        }

        void publish(QemuStyleFlatView view) {
            PUBLISHED.setRelease(this, view);
        }
    }

    @Benchmark
    public FlatView guestmem(GuestmemMap map) {
        MemoryRegion r = map.toggled;
        r.setEnabled(!r.isEnabled());
        return map.addressSpace.flatView();
    }

    @Benchmark
    public QemuStyleFlatView qemuStyle(BaselineMap map) {
        QemuStyleRenderer.Node n = map.toggled;
        n.enabled = !n.enabled;
        QemuStyleFlatView view = QemuStyleRenderer.render(map.root);
        map.publish(view);
        return view;
    }

    /** The benchmark's map with {@code n} leaves, built in one transaction; returns the root. */
    static MemoryRegion buildMap(MemorySystem system, int n) {
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegionOps ops = MemoryRegionOps.builder()
                .read((addr, size) -> 0)
                .write((addr, data, size) -> { })
                .build();
        system.transaction(() -> {
            root.addSubregionOverlap(0, system.io("unassigned", U64.SIZE_2_64, ops), -1);
            MemoryRegion backing = system.ram("backing", BACKING_SIZE);
            for (int i = 0; i < n; i++) {
                long size = (i % 16 == 5) ? LEAF_STRIDE + 0x8000 : 0x1000L << (i % 4);
                MemoryRegion leaf = switch (i % 4) {
                    case 1 -> system.ram("ram" + i, size);
                    case 2 -> system.alias("alias" + i, backing, (i * 0x1000L) % (BACKING_SIZE - size), size);
                    default -> system.io("io" + i, size, ops);
                };
                root.addSubregionOverlap(LEAF_BASE + i * LEAF_STRIDE, leaf, i % 10 == 7 ? 1 : 0);
            }
        });
        return root;
    }

    /** The leaf that the benchmark toggles: an I/O leaf in the middle that nothing overlaps. */
    static MemoryRegion toggledLeaf(MemoryRegion root, int n) {
        int index = (n / 2) & ~3; // i % 4 == 0: an I/O leaf, never covered by an overlapping neighbour
        long addr = LEAF_BASE + index * LEAF_STRIDE;
        for (MemoryRegion r : root.subregions()) {
            if (r.addr() == addr && r.name().equals("io" + index)) {
                return r;
            }
        }
        throw new IllegalStateException("leaf=io" + index + " not found");
    }
}
