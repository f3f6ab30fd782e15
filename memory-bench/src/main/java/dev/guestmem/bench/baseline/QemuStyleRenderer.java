package dev.guestmem.bench.baseline;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.U64;

import java.util.IdentityHashMap;
import java.util.List;

/**
 * The baseline for rendering: QEMU's strategy ({@code render_memory_region} into a {@code FlatView} followed by
 * {@code flatview_simplify}), reimplemented from its documented behaviour. Each terminating region walks the sorted
 * array of ranges rendered so far from its start, and every gap it finds is inserted at its place by shifting the
 * rest of the array, as QEMU's {@code flatview_insert} does with {@code memmove}: O(regions x ranges) per render.
 *
 * <p>It renders a {@link Node} snapshot of a {@link MemoryRegion} tree rather than the tree itself, so that it pays
 * neither for the public getters' defensive copies nor for the transaction lock; a benchmark changes the snapshot
 * the way it changes the tree.
 *
 * <p>Arithmetic: addresses are unsigned 64-bit, ranges inclusive; the baseline assumes that every region's
 * guest-physical extent lies in {@code [0, 2^64)} (QEMU uses 128-bit integers for this), which the benchmark maps
 * and the default machine satisfy; the tests compare it against guestmem on them.
 *
 * <p>Threading: a render belongs to one thread; the snapshot must not change while it runs.
 */
public final class QemuStyleRenderer {

    /** What QEMU's renderer reads of one {@code MemoryRegion}. Mutable where a benchmark changes the map. */
    public static final class Node {
        final MemoryRegion region;
        final long addr;
        final long size;
        final boolean terminates;
        final boolean readonly;
        final boolean romdMode;
        public boolean enabled;
        Node alias;
        final long aliasOffset;
        Node[] subregions;

        Node(MemoryRegion mr) {
            this.region = mr;
            this.addr = mr.addr();
            this.size = mr.size();
            this.terminates = mr.terminates();
            this.readonly = mr.isReadonly() || mr.kind() == MemoryRegion.Kind.ROM;
            this.romdMode = mr.isRomdMode();
            this.enabled = mr.isEnabled();
            this.aliasOffset = mr.aliasOffset();
        }

        public MemoryRegion region() {
            return region;
        }
    }

    private QemuStyleRenderer() {
    }

    /** A snapshot of the tree under {@code root}; {@code nodes} receives the node of every region reached. */
    public static Node snapshot(MemoryRegion root, IdentityHashMap<MemoryRegion, Node> nodes) {
        Node n = nodes.get(root);
        if (n != null) {
            return n;
        }
        n = new Node(root);
        nodes.put(root, n);
        if (root.alias() != null) {
            n.alias = snapshot(root.alias(), nodes);
        }
        List<MemoryRegion> subs = root.subregions();
        n.subregions = new Node[subs.size()];
        for (int i = 0; i < n.subregions.length; i++) {
            n.subregions[i] = snapshot(subs.get(i), nodes);
        }
        return n;
    }

    /** Renders the tree under {@code root} as the root of an address space, then merges neighbours. */
    public static QemuStyleFlatView render(Node root) {
        QemuStyleFlatView view = new QemuStyleFlatView();
        if (root.enabled && root.size != 0) {
            renderRegion(view, root, 0, 0, -1L, false);
        }
        view.simplify();
        return view;
    }

    /**
     * QEMU's {@code render_memory_region}: {@code base} is the guest-physical address of offset 0 of {@code mr}'s
     * container, {@code [clipFirst, clipLast]} the guest-physical window still visible.
     */
    private static void renderRegion(QemuStyleFlatView view, Node mr, long base, long clipFirst, long clipLast,
                                     boolean readonly) {
        if (!mr.enabled || mr.size == 0) {
            return;
        }
        long first = base + mr.addr;
        long last = U64.saturatingAdd(first, U64.lastOffset(mr.size));
        clipFirst = U64.max(clipFirst, first);
        clipLast = U64.min(clipLast, last);
        if (U64.lt(clipLast, clipFirst)) {
            return;
        }
        base = first;
        readonly |= mr.readonly;

        if (mr.alias != null) {
            // The target adds its own addr back when it is rendered.
            renderRegion(view, mr.alias, base - mr.alias.addr - mr.aliasOffset, clipFirst, clipLast, readonly);
            return;
        }
        for (Node sub : mr.subregions) {
            renderRegion(view, sub, base, clipFirst, clipLast, readonly);
        }
        if (!mr.terminates) {
            return;
        }

        // Fill every gap of [clipFirst, clipLast] left by what was rendered before, scanning from the start.
        long offsetInRegion = clipFirst - base;
        long pos = clipFirst;
        int i = 0;
        for (; i < view.count; i++) {
            if (U64.lt(view.last[i], pos)) {
                continue;
            }
            if (U64.lt(pos, view.start[i])) {
                long gapLast = U64.min(clipLast, view.start[i] - 1);
                view.insert(i, pos, gapLast, mr, offsetInRegion, readonly);
                i++;
                if (gapLast == clipLast) {
                    return;
                }
                offsetInRegion += gapLast - pos + 1;
                pos = gapLast + 1;
            }
            long coveredLast = U64.min(clipLast, view.last[i]);
            if (coveredLast == clipLast) {
                return;
            }
            offsetInRegion += coveredLast - pos + 1;
            pos = coveredLast + 1;
        }
        view.insert(i, pos, clipLast, mr, offsetInRegion, readonly);
    }
}
