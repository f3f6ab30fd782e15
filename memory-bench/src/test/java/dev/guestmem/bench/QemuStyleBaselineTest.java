package dev.guestmem.bench;

import dev.guestmem.bench.baseline.QemuStyleFlatView;
import dev.guestmem.bench.baseline.QemuStyleRenderer;
import dev.guestmem.bench.machine.DefaultPcMachine;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;

/**
 * The benchmark compares like with like: the QEMU-style baseline renders exactly the ranges guestmem renders, on the
 * benchmark's maps and on the default machine, and every benchmark invocation changes the view.
 */
class QemuStyleBaselineTest {

    record Range(long start, long last, MemoryRegion region, long offset, boolean readonly) {
        /** The range without the region's identity, for comparing views of two different memory systems. */
        String byName() {
            return Long.toHexString(start) + "-" + Long.toHexString(last) + " " + region.name() + "@"
                    + Long.toHexString(offset) + (readonly ? " ro" : "");
        }
    }

    static List<String> byName(List<Range> ranges) {
        return ranges.stream().map(Range::byName).toList();
    }

    static List<Range> ranges(FlatView view) {
        List<Range> out = new ArrayList<>();
        for (FlatRange fr : view.ranges()) {
            out.add(new Range(fr.start(), fr.last(), fr.region(), fr.offsetInRegion(), fr.readonly()));
        }
        return out;
    }

    static List<Range> ranges(QemuStyleFlatView view) {
        List<Range> out = new ArrayList<>();
        for (int i = 0; i < view.rangeCount(); i++) {
            out.add(new Range(view.start(i), view.last(i), view.region(i), view.offsetInRegion(i), view.readonly(i)));
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 5, 10, 37, 100, 1000})
    void baselineMatchesGuestmemOnTheBenchmarkMap(int n) {
        MemorySystem system = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = RenderBenchmark.buildMap(system, n);
        AddressSpace as = system.addressSpace("memory", root);
        IdentityHashMap<MemoryRegion, QemuStyleRenderer.Node> nodes = new IdentityHashMap<>();
        QemuStyleRenderer.Node snapshot = QemuStyleRenderer.snapshot(root, nodes);
        MemoryRegion toggled = RenderBenchmark.toggledLeaf(root, n);

        for (int step = 0; step < 3; step++) {
            List<Range> expected = ranges(as.flatView());
            assertEquals(expected, ranges(QemuStyleRenderer.render(snapshot)), "n=" + n + " step=" + step);
            toggled.setEnabled(!toggled.isEnabled());
            nodes.get(toggled).enabled = toggled.isEnabled();
            assertNotEquals(expected, ranges(as.flatView()), "the toggled leaf is visible");
        }
    }

    @Test
    void baselineMatchesGuestmemOnTheDefaultMachine() {
        MemorySystem system = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        for (AddressSpace as : DefaultPcMachine.build(system)) {
            QemuStyleRenderer.Node snapshot = QemuStyleRenderer.snapshot(as.root(), new IdentityHashMap<>());
            assertEquals(ranges(as.flatView()), ranges(QemuStyleRenderer.render(snapshot)), as.name());
        }
    }

    @Test
    void everyInvocationPublishesAChangedView() {
        RenderBenchmark bench = new RenderBenchmark();
        RenderBenchmark.GuestmemMap gm = new RenderBenchmark.GuestmemMap();
        gm.regions = 100;
        gm.setup();
        FlatView a = bench.guestmem(gm);
        FlatView b = bench.guestmem(gm);
        assertNotSame(a, b);
        assertNotEquals(ranges(a), ranges(b));

        RenderBenchmark.BaselineMap bm = new RenderBenchmark.BaselineMap();
        bm.regions = 100;
        bm.setup();
        QemuStyleFlatView c = bench.qemuStyle(bm);
        QemuStyleFlatView d = bench.qemuStyle(bm);
        assertNotEquals(ranges(c), ranges(d));
        assertEquals(byName(ranges(a)), byName(ranges(c)), "both sides made the same change");
        assertEquals(byName(ranges(b)), byName(ranges(d)));
    }
}
