package dev.guestmem.memory;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A container's subregions keep QEMU's order (descending priority, the most recently added first among equals)
 * however they are added, and adding a run of regions below many of a higher priority costs in proportion to the run:
 * counted as the elements the container's list moved, not as time. An {@code ArrayList} moves every region of higher
 * priority for each addition ({@value #N} x {@value #N} / 2 here).
 */
class SubregionOrderScaleTest {
    static final int N = 100_000;

    @Test
    void aRunBelowRegionsOfHigherPriorityMovesThemOnce() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = sys.container("root", U64.SIZE_2_64);
        List<MemoryRegion> added = new ArrayList<>();
        sys.transaction(() -> {
            for (int i = 0; i < 2 * N; i++) {
                MemoryRegion r = sys.io("r" + i, 0x1000, MemoryRegionOps.UNASSIGNED);
                root.addSubregionOverlap((long) i << 12, r, i < N ? 1 : 0);
                added.add(r);
            }
        });
        long moves = root.subregionsReversed.moves();
        assertTrue(moves <= 2L * N, "moves=" + moves + " for " + N + " regions below " + N + " of higher priority");
        List<MemoryRegion> order = root.subregions();
        assertEquals(2 * N, order.size());
        assertSame(added.get(N - 1), order.get(0), "the last region of priority 1 comes first");
        assertSame(added.get(0), order.get(N - 1));
        assertSame(added.get(2 * N - 1), order.get(N), "then the last of priority 0");
        assertSame(added.get(N), order.get(2 * N - 1));
        assertEquals(2 * N, root.system().addressSpace("memory", root).flatView().rangeCount());
    }

    /** Random priorities, additions and removals: the order is QEMU's, as a plain sorted list gives it. */
    @Test
    void randomAddsAndRemovesKeepQemusOrder() {
        Random random = new Random(11);
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = sys.container("root", U64.SIZE_2_64);
        List<MemoryRegion> expected = new ArrayList<>(); // QEMU's order, kept by insertion into a plain list
        List<MemoryRegion> free = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            free.add(sys.container("r" + i, 0x1000));
        }
        for (int step = 0; step < 5_000; step++) {
            if (!free.isEmpty() && (expected.isEmpty() || random.nextInt(3) > 0)) {
                MemoryRegion r = free.remove(random.nextInt(free.size()));
                int priority = random.nextInt(5) - 2;
                root.addSubregionOverlap((long) random.nextInt(64) << 12, r, priority);
                int at = 0; // QEMU: before the first region of lower or equal priority
                while (at < expected.size() && expected.get(at).priority() > priority) {
                    at++;
                }
                expected.add(at, r);
            } else {
                MemoryRegion r = expected.remove(random.nextInt(expected.size()));
                root.delSubregion(r);
                free.add(r);
            }
            assertEquals(expected, root.subregions(), "step " + step);
        }
    }
}
