package dev.guestmem.memory.internal.render;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The cycle check of {@code addSubregion} costs the smaller side of the two trees it joins, counted in steps (never
 * timed): a 100,000-deep chain built top down or bottom up takes a few steps per add, a cycle closed at the bottom
 * of that chain is still refused, and random merges stay within n log n. Each add's steps are counted by running the
 * same check the add runs, just before it.
 */
class CycleSearchTest {
    private static final int DEPTH = 100_000;

    private final MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);

    /** Adds {@code sub} to {@code c} after counting what its cycle check costs; returns the steps. */
    private static long countedAdd(MemoryRegion c, MemoryRegion sub) {
        CycleSearch s = new CycleSearch();
        assertFalse(s.closesCycle(c, sub), () -> c.name() + " <- " + sub.name());
        c.addSubregion(0, sub);
        return s.steps();
    }

    @Test
    void chainBuiltTopDownCostsAFewStepsPerLevel() {
        List<MemoryRegion> chain = new ArrayList<>(DEPTH);
        sys.transaction(() -> {
            chain.add(sys.container("c0", -1));
            long steps = 0;
            for (int i = 1; i < DEPTH; i++) {
                MemoryRegion next = sys.container("c" + i, 0x1000);
                long s = countedAdd(chain.getLast(), next);
                assertTrue(s <= 2, "steps=" + s + " at depth=" + i);
                steps += s;
                chain.add(next);
            }
            assertTrue(steps <= 2L * DEPTH, "steps=" + steps);
        });
        assertSame(chain.get(DEPTH - 2), chain.getLast().container());

        // Closing the cycle at the bottom is refused with the usual message, the tree unchanged; the check walks
        // the chain once (down from c0 and up from the bottom, in lock step: an edge and an end of list per level
        // and direction), not once per level.
        CycleSearch s = new CycleSearch();
        assertTrue(s.closesCycle(chain.getLast(), chain.getFirst()));
        assertTrue(s.steps() <= 4L * DEPTH, "steps=" + s.steps());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> chain.getLast().addSubregion(0, chain.getFirst()));
        assertEquals("container=c" + (DEPTH - 1) + " subregion=c0: adding it would make a cycle (the subregion "
                + "contains or aliases the container)", e.getMessage());
        assertTrue(chain.getLast().subregions().isEmpty());
        assertEquals(null, chain.getFirst().container());
    }

    @Test
    void chainBuiltBottomUpCostsAFewStepsPerLevel() {
        sys.transaction(() -> {
            MemoryRegion below = sys.container("c" + (DEPTH - 1), 0x1000);
            long steps = 0;
            for (int i = DEPTH - 2; i >= 0; i--) {
                MemoryRegion c = sys.container("c" + i, i == 0 ? -1 : 0x1000);
                long s = countedAdd(c, below);
                assertTrue(s <= 2, "steps=" + s + " at depth=" + i);
                steps += s;
                below = c;
            }
            assertTrue(steps <= 2L * DEPTH, "steps=" + steps);
        });
    }

    /**
     * The chain ends in RAM under an address space: the view renders it (the renderer keeps its own stack) and a
     * cycle through an alias is refused.
     */
    @Test
    void deepChainRendersAndRefusesACycleThroughAnAlias() {
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("memory", root);
        MemoryRegion[] bottom = new MemoryRegion[1];
        sys.transaction(() -> {
            MemoryRegion c = root;
            for (int i = 1; i < DEPTH; i++) {
                MemoryRegion next = sys.container("c" + i, 0x1000);
                c.addSubregion(0, next);
                c = next;
            }
            MemoryRegion ram = sys.ram("ram", 0x1000);
            c.addSubregion(0, ram);
            bottom[0] = c;
        });
        assertEquals("ram", as.flatView().lookup(0x10).region().name());
        MemoryRegion top = root.subregions().getFirst();
        MemoryRegion alias = sys.alias("a", top, 0, 0x1000);
        CycleSearch s = new CycleSearch();
        assertTrue(s.closesCycle(bottom[0], alias));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> bottom[0].addSubregion(0x800, alias));
        assertTrue(e.getMessage().endsWith("subregion=a: adding it would make a cycle (the subregion contains or "
                + "aliases the container)"), e.getMessage());
        // The same alias fits beside the chain.
        root.addSubregionOverlap(0x10000, alias, 1);
        assertEquals("ram", as.flatView().lookup(0x10010).region().name());
    }

    /**
     * Random merges of single regions into trees, in any order: every check costs at most twice the smaller side
     * plus two, so the total stays within n log2 n (plus aliases of random regions, which add up edges).
     */
    @Test
    void randomMergesStayWithinNLogN() {
        int n = 20_000;
        SplittableRandom r = new SplittableRandom(11);
        MemoryRegion[] regions = new MemoryRegion[n];
        long[] total = {0};
        int[] refused = {0};
        sys.transaction(() -> {
            for (int i = 0; i < n; i++) {
                regions[i] = sys.container("r" + i, 0x1000);
            }
            for (int i = 0; i < n / 10; i++) {
                sys.alias("a" + i, regions[r.nextInt(n)], 0, 0x10);
            }
            for (int k = 0; k < 4 * n; k++) {
                MemoryRegion sub = regions[r.nextInt(n)];
                MemoryRegion c = regions[r.nextInt(n)];
                if (sub.container() != null) {
                    continue;
                }
                CycleSearch s = new CycleSearch();
                boolean cycle = s.closesCycle(c, sub);
                total[0] += s.steps();
                assertEquals(top(c) == sub, cycle, () -> sub.name() + " into " + c.name());
                if (cycle) {
                    refused[0]++;
                    assertThrows(IllegalArgumentException.class, () -> c.addSubregion(0, sub));
                } else {
                    c.addSubregion(0, sub);
                }
            }
        });
        assertTrue(refused[0] > 0, "the random adds tried some cycles");
        double bound = 4.0 * n * (Math.log(n) / Math.log(2)) + 4.0 * 4 * n;
        assertTrue(total[0] <= bound, "steps=" + total[0] + " bound=" + bound);
    }

    private static MemoryRegion top(MemoryRegion r) {
        while (r.container() != null) {
            r = r.container();
        }
        return r;
    }
}
