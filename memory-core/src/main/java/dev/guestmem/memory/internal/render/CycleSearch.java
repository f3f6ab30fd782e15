package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;

/**
 * The cycle check of {@code addSubregion}: whether putting {@code subregion} inside {@code container} would close a
 * cycle, that is whether {@code container} can already be reached from {@code subregion} along subregion edges
 * (container to child) and alias edges (alias to target). QEMU does not check; guestmem refuses such an add.
 *
 * <p>Cost: two searches run in lock step, one edge at a time each: down from the subregion (its subregions and alias
 * target, transitively) and up from the container (its container and the aliases of it, transitively). The first
 * to find the other's start proves a cycle; the first to run out of edges proves there is none. A step follows one
 * edge or meets the end of one region's edges, so a check costs at most twice the smaller side's edges and regions,
 * plus two: adding a leaf, or adding anything to a region that
 * nothing contains or aliases, is O(1), and building a chain of any depth, top down or bottom up, is linear in it.
 * Merging trees costs the smaller side, so any order of adds builds a tree of n regions in O(n log n) steps.
 *
 * <p>Threading: writer only (the topology lock held); one instance per check. {@link #steps()} is what a test can
 * count.
 */
public final class CycleSearch {
    private long steps;

    /** Whether adding {@code subregion} to {@code container} would make a cycle (including the two being one). */
    public boolean closesCycle(MemoryRegion container, MemoryRegion subregion) {
        if (container == subregion) {
            return true;
        }
        Walk down = new Walk(subregion, container, true);
        Walk up = new Walk(container, subregion, false);
        while (true) {
            steps++;
            int d = down.step();
            if (d != Walk.MORE) {
                return d == Walk.FOUND;
            }
            steps++;
            int u = up.step();
            if (u != Walk.MORE) {
                return u == Walk.FOUND;
            }
        }
    }

    /** The edges followed (and ends of edge lists met) so far by this instance's checks. */
    public long steps() {
        return steps;
    }

    /** One direction of the search: a depth-first walk that follows one edge per {@link #step()}. */
    private static final class Walk {
        static final int MORE = 0;
        static final int FOUND = 1;
        static final int EXHAUSTED = 2;

        private final MemoryRegion target;
        private final boolean down;
        /** Regions reached but not yet expanded; allocated at the first edge that leads somewhere. */
        private ArrayList<MemoryRegion> pending;
        private IdentityHashMap<MemoryRegion, Boolean> seen;
        private MemoryRegion current;
        /** The next edge of {@link #current} to follow: its index in the current region's edge list. */
        private int edge;

        Walk(MemoryRegion start, MemoryRegion target, boolean down) {
            this.current = start;
            this.target = target;
            this.down = down;
        }

        /** Follows one edge of the current region, or moves to the next pending region. */
        int step() {
            MemoryRegion next = edge(current, edge++);
            if (next == null) {
                if (pending == null || pending.isEmpty()) {
                    return EXHAUSTED;
                }
                current = pending.removeLast();
                edge = 0;
                return MORE;
            }
            if (next == target) {
                return FOUND;
            }
            if (seen == null) {
                seen = new IdentityHashMap<>();
                pending = new ArrayList<>();
                seen.put(current, Boolean.TRUE);
            }
            if (seen.put(next, Boolean.TRUE) == null) {
                pending.add(next);
            }
            return MORE;
        }

        /** Edge {@code i} of {@code r} in this walk's direction, or null past the last. */
        private MemoryRegion edge(MemoryRegion r, int i) {
            if (down) {
                // Subregions, then the alias target (an alias has no subregions).
                List<MemoryRegion> subs = SharedSecrets.coreAccess().subregionsReversed(r);
                if (i < subs.size()) {
                    return subs.get(i);
                }
                return i == subs.size() ? r.alias() : null;
            }
            // The container, then the aliases of r.
            if (i == 0 && r.container() != null) {
                return r.container();
            }
            List<MemoryRegion> aliases = SharedSecrets.coreAccess().aliasedBy(r);
            int j = r.container() != null ? i - 1 : i;
            return j < aliases.size() ? aliases.get(j) : null;
        }
    }
}
