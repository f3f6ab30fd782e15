package dev.guestmem.memory;

import dev.guestmem.memory.internal.render.FlatViewRenderer;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Commits re-render only the windows where the tree changed and splice them into the old view. This test makes
 * random trees (nested containers, aliases and aliases of aliases, overlaps with equal and unequal priorities,
 * regions at the top of the 64-bit space) and applies random sequences of every mutator, one at a time and in
 * transactions; after each commit the published view must be exactly what a full render of the tree gives.
 *
 * <p>A jqwik property: the tree comes from a generated seed and the changes are a generated list of steps, each step
 * a number that decides its own change. When a view differs, jqwik shrinks the list to the fewest, simplest steps
 * that still fail, and reports the tree seed with them. {@code -Djqwik.tries.default=N} runs N trees instead of the
 * default (see {@code junit-platform.properties}).
 */
class IncrementalRenderProperties {
    private static final MemoryRegionOps OPS = MemoryRegionOps.builder().read((a, s) -> 0).write((a, d, s) -> { }).build();

    @Property
    void everyCommitEqualsAFullRender(@ForAll long treeSeed,
                                      @ForAll @Size(max = 120) List<@IntRange(min = 0) Integer> steps) {
        Random rnd = new Random(treeSeed);
        MemorySystem m = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        List<MemoryRegion> all = new ArrayList<>();
        List<MemoryRegion> containers = new ArrayList<>();
        MemoryRegion root = m.container("root", -1L);
        containers.add(root);
        all.add(root);
        int n = 10 + rnd.nextInt(40);
        for (int i = 0; i < n; i++) {
            MemoryRegion r = newRegion(m, rnd, all, i);
            all.add(r);
            if (r.kind() == MemoryRegion.Kind.CONTAINER || (r.kind() == MemoryRegion.Kind.RAM && rnd.nextInt(4) == 0)) {
                containers.add(r);
            }
            if (rnd.nextInt(5) > 0) {
                tryAdd(rnd, containers, r);
            }
        }
        AddressSpace as = m.addressSpace("as", root);
        check(as);
        for (int step : steps) {
            Random s = new Random(step);
            boolean tx = s.nextInt(4) == 0;
            if (tx) {
                m.begin();
            }
            int changes = tx ? 1 + s.nextInt(4) : 1;
            for (int c = 0; c < changes; c++) {
                mutate(s, all, containers);
            }
            if (tx) {
                m.commit();
            }
            check(as);
        }
    }

    private static void check(AddressSpace as) {
        FlatRange[] full = FlatViewRenderer.render(FlatViewRenderer.flatViewRoot(as.root()));
        assertEquals(List.of(full), as.flatView().ranges());
    }

    private static long addr(Random rnd) {
        return switch (rnd.nextInt(6)) {
            case 0 -> -0x1000L * (1 + rnd.nextInt(4));           // near the top of the space
            case 1 -> 0;
            default -> 0x1000L * rnd.nextInt(64);
        };
    }

    private static long size(Random rnd) {
        return switch (rnd.nextInt(8)) {
            case 0 -> -1L;                                       // 2^64
            case 1 -> 0x1000L * (1 + rnd.nextInt(1 << 12));
            default -> 0x800L * (1 + rnd.nextInt(16));
        };
    }

    private static MemoryRegion newRegion(MemorySystem m, Random rnd, List<MemoryRegion> all, int i) {
        int k = rnd.nextInt(10);
        if (k <= 2 && all.size() > 1) {
            MemoryRegion target = all.get(rnd.nextInt(all.size()));
            long ts = target.size();
            if (ts != 0) {
                long span = ts == -1L ? 0x100000L : ts;
                long off = (rnd.nextLong() & Long.MAX_VALUE) % span & ~0x7ffL;
                long len = Math.max(0x800L, (span - off) / (1 + rnd.nextInt(3)) & ~0x7ffL);
                if (Long.compareUnsigned(off + len, span) <= 0 || ts == -1L) {
                    return m.alias("alias" + i, target, off, len);
                }
            }
        }
        long size = size(rnd);
        if (k <= 4) {
            return m.container("c" + i, size);
        }
        long small = size == -1L || Long.compareUnsigned(size, 1L << 30) > 0 ? 0x10000L : size;
        return switch (k) {
            case 5 -> m.ram("ram" + i, small);
            case 6 -> m.rom("rom" + i, small);
            case 7 -> m.romDevice("romd" + i, small, OPS);
            case 8 -> m.reservation("res" + i, size);
            default -> m.io("io" + i, size, OPS);
        };
    }

    private static void tryAdd(Random rnd, List<MemoryRegion> containers, MemoryRegion r) {
        MemoryRegion c = containers.get(rnd.nextInt(containers.size()));
        try {
            c.addSubregionOverlap(addr(rnd), r, rnd.nextInt(3) == 0 ? rnd.nextInt(5) - 2 : 0);
        } catch (IllegalArgumentException cycleOrAlias) {
            // refused (cycle, alias container, already mapped): the tree is unchanged, which check() verifies
        }
    }

    private static void mutate(Random rnd, List<MemoryRegion> all, List<MemoryRegion> containers) {
        MemoryRegion r = all.get(1 + rnd.nextInt(all.size() - 1));
        switch (rnd.nextInt(9)) {
            case 0 -> r.setEnabled(!r.isEnabled());
            case 1 -> {
                if (r.container() != null) {
                    r.setAddress(addr(rnd));
                }
            }
            case 2 -> {
                if (r.container() != null) {
                    MemoryRegion c = r.container();
                    c.delSubregion(r);
                    if (rnd.nextBoolean()) {
                        c.addSubregionOverlap(addr(rnd), r, rnd.nextInt(5) - 2);
                    }
                } else {
                    tryAdd(rnd, containers, r);
                }
            }
            case 3 -> {
                if (r.ramBlock() == null && r.alias() == null) {
                    r.setSize(size(rnd));
                } else if (r.ramBlock() != null) {
                    r.setSize(0x800L * (1 + rnd.nextInt((int) (r.ramBlock().maxLength() / 0x800L))));
                }
            }
            case 4 -> {
                if (r.alias() != null) {
                    long ts = r.alias().size();
                    long span = ts == -1L ? Long.MAX_VALUE : ts;
                    long room = r.size() == -1L ? 0 : span - r.size();
                    if (r.size() != -1L && Long.compareUnsigned(r.size(), span) <= 0 && room >= 0) {
                        r.setAliasOffset((rnd.nextLong() & Long.MAX_VALUE) % (room / 0x800L + 1) * 0x800L);
                    }
                }
            }
            case 5 -> r.setReadonly(!r.isReadonly());
            case 6 -> r.setNonvolatile(!r.isNonvolatile());
            case 7 -> {
                if (r.kind() == MemoryRegion.Kind.ROM_DEVICE) {
                    r.setRomd(!r.isRomdMode());
                }
            }
            default -> {
                if (rnd.nextInt(8) == 0) {
                    r.setUnmergeable(!r.isUnmergeable());
                }
            }
        }
    }
}
