package dev.guestmem.memory.mtree;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionSection;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.util.ArrayList;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Comparator;
import java.util.IdentityHashMap;
import java.util.List;

/**
 * QEMU 7.2's {@code info mtree} text: the region tree ({@code info mtree}, {@code -D}), the flat views
 * ({@code -f}) and their dispatch trees ({@code -f -d}), character for character, so that guestmem's output and QEMU's can be diffed.
 *
 * <p>Where QEMU's order comes from a hash table keyed by pointers (the order of address-space groups, and of flat
 * views with their {@code FlatView #n} numbers), guestmem uses the order in which the address spaces were created;
 * everything inside a block is in QEMU's order.
 *
 * <p>Threading: takes the topology lock of the system while printing, so the text is one consistent snapshot.
 */
public final class MtreePrinter {
    private static final String INDENT = "  ";

    /**
     * The deepest tree {@link #mtree} prints: deeper ones are refused with an {@link IllegalArgumentException}
     * naming the region at this depth, since the text of a tree grows with the square of its depth (10,000 levels
     * are 100 MB of indentation). The flat views have no such limit.
     */
    public static final int MAX_DEPTH = 10_000;

    private MtreePrinter() {
    }

    /**
     * {@code info mtree} (with {@code showDisabled}, {@code info mtree -D}): each group of address spaces that share
     * a root, then every region reached through an alias, in the order the aliases were met.
     *
     * @throws IllegalArgumentException if a tree is deeper than {@link #MAX_DEPTH}, naming the region and depth
     */
    public static String mtree(MemorySystem system, boolean showDisabled) {
        Text text = new Text(null);
        mtree(system, showDisabled, text);
        return text.sb.toString();
    }

    /**
     * Writes {@link #mtree(MemorySystem, boolean)} to {@code out} (which stays open) as it is printed, 64 KiB at a
     * time. A tree too deep is refused before anything is written.
     *
     * @throws IllegalArgumentException if a tree is deeper than {@link #MAX_DEPTH}, naming the region and depth
     * @throws IOException if {@code out} cannot be written
     */
    public static void mtree(MemorySystem system, boolean showDisabled, Writer out) throws IOException {
        system.begin();
        try {
            if (!withinMaxDepth(system)) {
                mtree(system, showDisabled); // throws, naming the first region too deep in print order
            }
            Text text = new Text(out);
            mtree(system, showDisabled, text);
            text.flush();
        } catch (UncheckedIOException e) {
            throw e.getCause();
        } finally {
            system.commit();
        }
    }

    private static void mtree(MemorySystem system, boolean showDisabled, Text text) {
        StringBuilder sb = text.sb;
        system.begin();
        try {
            // Address spaces grouped by root; within a group the names sort as strcmp does.
            IdentityHashMap<MemoryRegion, List<AddressSpace>> byRoot = new IdentityHashMap<>();
            for (AddressSpace as : system.addressSpaces()) {
                List<AddressSpace> g = byRoot.get(as.root());
                if (g == null) {
                    g = new ArrayList<>();
                    byRoot.put(as.root(), g);
                }
                g.add(as);
            }
            AliasQueue aliasQueue = new AliasQueue();
            TypeWords types = new TypeWords();
            for (MemoryRegion root : orderedRoots(system)) {
                List<AddressSpace> g = new ArrayList<>(byRoot.get(root));
                g.sort((a, b) -> a.name().compareTo(b.name()));
                for (AddressSpace as : g) {
                    sb.append("address-space: ").append(as.name()).append('\n');
                }
                printRegion(text, root, aliasQueue, types, showDisabled);
                sb.append('\n');
            }
            for (int i = 0; i < aliasQueue.order.size(); i++) {
                MemoryRegion mr = aliasQueue.order.get(i);
                sb.append("memory-region: ").append(mr.name()).append('\n');
                printRegion(text, mr, aliasQueue, types, showDisabled);
                sb.append('\n');
            }
        } finally {
            system.commit();
        }
    }

    /**
     * Whether no tree that {@code info mtree} prints (under an address space's root or an alias target it meets) is
     * deeper than {@link #MAX_DEPTH}: each reachable region's height is found once, bottom up without recursion.
     */
    private static boolean withinMaxDepth(MemorySystem system) {
        IdentityHashMap<MemoryRegion, Integer> height = new IdentityHashMap<>();
        ArrayList<MemoryRegion> tops = new ArrayList<>(orderedRoots(system));
        ArrayDeque<MemoryRegion> work = new ArrayDeque<>(tops);
        while (!work.isEmpty()) {
            MemoryRegion mr = work.peek();
            if (height.containsKey(mr)) {
                work.pop();
                continue;
            }
            boolean ready = true;
            int h = 1;
            for (MemoryRegion sub : mr.subregions()) {
                Integer hs = height.get(sub);
                if (hs == null) {
                    ready = false;
                    work.push(sub);
                } else {
                    h = Math.max(h, hs + 1);
                }
            }
            if (mr.alias() != null && !height.containsKey(mr.alias())) {
                tops.add(mr.alias());
                ready = false;
                work.push(mr.alias());
            }
            if (ready) {
                work.pop();
                height.put(mr, h);
            }
        }
        for (MemoryRegion top : tops) {
            if (height.get(top) > MAX_DEPTH) {
                return false;
            }
        }
        return true;
    }

    /** {@code info mtree -f}: every distinct flat view with the address spaces that use it. */
    public static String flatViews(MemorySystem system) {
        return flatViews(system, false);
    }

    /**
     * {@code info mtree -f}, and with {@code dispatchTree} {@code info mtree -f -d}: after the ranges of each view
     * that has a root, its dispatch (QEMU's {@code mtree_print_dispatch}): the sections, then every node of the
     * page tree. A view shared by address spaces of several page sizes has one dispatch per page size; QEMU never
     * has that, and its header then names the page size ({@code Dispatch (4096-byte pages)}).
     *
     * <p>The {@code [MRU]} mark follows QEMU's rule but depends on which lookups ran before, as in QEMU. guestmem
     * remembers the last section found after subpages are resolved and never marks section 0 (QEMU may mark a
     * subpage container, or section 0 after a miss).
     */
    public static String flatViews(MemorySystem system, boolean dispatchTree) {
        Text text = new Text(null);
        flatViews(system, dispatchTree, text);
        return text.sb.toString();
    }

    /**
     * Writes {@link #flatViews(MemorySystem, boolean)} to {@code out} (which stays open) as it is printed, 64 KiB at
     * a time: the text of a map of a million regions is never held whole.
     *
     * @throws IOException if {@code out} cannot be written
     */
    public static void flatViews(MemorySystem system, boolean dispatchTree, Writer out) throws IOException {
        Text text = new Text(out);
        try {
            flatViews(system, dispatchTree, text);
            text.flush();
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    private static void flatViews(MemorySystem system, boolean dispatchTree, Text text) {
        StringBuilder sb = text.sb;
        system.begin();
        try {
            IdentityHashMap<FlatView, List<AddressSpace>> byView = new IdentityHashMap<>();
            ArrayList<FlatView> order = new ArrayList<>();
            for (AddressSpace as : system.addressSpaces()) {
                FlatView v = as.flatView();
                List<AddressSpace> l = byView.get(v);
                if (l == null) {
                    l = new ArrayList<>();
                    byView.put(v, l);
                    order.add(v);
                }
                l.add(as);
            }
            int counter = 0;
            TypeWords types = new TypeWords();
            for (FlatView v : order) {
                sb.append("FlatView #").append(counter++).append('\n');
                for (AddressSpace as : byView.get(v)) {
                    sb.append(" AS \"").append(as.name()).append("\", root: ").append(as.root().name());
                    if (as.root().alias() != null) {
                        sb.append(", alias ").append(as.root().alias().name());
                    }
                    sb.append('\n');
                }
                sb.append(" Root memory region: ").append(v.root() == null ? "(none)" : v.root().name()).append('\n');
                if (v.rangeCount() == 0) {
                    sb.append(INDENT).append("No rendered FlatView\n\n");
                    continue;
                }
                for (FlatRange r : v.ranges()) {
                    MemoryRegion mr = r.region();
                    sb.append(INDENT).append(U64.hex16(r.start())).append('-').append(U64.hex16(r.last()))
                            .append(" (prio ").append(mr.priority()).append(", ")
                            .append(r.nonvolatile() ? "nv-" : "")
                            .append(r.readonly() ? "rom" : types.of(mr))
                            .append("): ").append(mr.name());
                    if (r.offsetInRegion() != 0) {
                        sb.append(" @").append(U64.hex16(r.offsetInRegion()));
                    }
                    sb.append('\n');
                    text.lineDone();
                }
                if (dispatchTree && v.root() != null) {
                    int[] pageSizes = dispatchPageBits(v, byView.get(v));
                    for (int pageBits : pageSizes) {
                        printDispatch(text, AddressSpaceDispatch.of(v, pageBits), v.root(), system.unassignedRegion(),
                                pageSizes.length > 1 ? " (" + (1L << pageBits) + "-byte pages)" : "");
                    }
                }
                sb.append('\n');
            }
        } finally {
            system.commit();
        }
    }

    /** Text being printed: kept whole for a {@code String}, or passed on to a {@code Writer} each 64 KiB. */
    private static final class Text {
        final StringBuilder sb;
        private final Writer out;

        Text(Writer out) {
            this.out = out;
            this.sb = new StringBuilder(out == null ? 256 : (1 << 16) + 4096);
        }

        /** Called after each line: passes what is held on once it reaches 64 KiB. */
        void lineDone() {
            if (out != null && sb.length() >= 1 << 16) {
                flush();
            }
        }

        void flush() {
            try {
                out.append(sb);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            sb.setLength(0);
        }
    }

    /** The page sizes of the address spaces using {@code v}, in the order the address spaces were made. */
    private static int[] dispatchPageBits(FlatView v, List<AddressSpace> spaces) {
        int[] out = new int[spaces.size()];
        int n = 0;
        for (AddressSpace as : spaces) {
            boolean seen = false;
            for (int i = 0; i < n; i++) {
                seen |= out[i] == as.pageBits();
            }
            if (!seen) {
                out[n++] = as.pageBits();
            }
        }
        return Arrays.copyOf(out, n);
    }

    /** QEMU's {@code mtree_print_dispatch}. */
    private static void printDispatch(Text text, AddressSpaceDispatch live, MemoryRegion root,
                                      MemoryRegion unassigned, String pageSizeNote) {
        StringBuilder sb = text.sb;
        // A dispatch derived from an older one numbers its sections its own way: print what QEMU would have built,
        // with the MRU mark on the section that covers the same bytes.
        AddressSpaceDispatch d = live.qemuLayout();
        int mru = live.mruSection();
        if (d != live && mru != AddressSpaceDispatch.UNASSIGNED) {
            int same = AddressSpaceDispatch.UNASSIGNED;
            for (int i = 1; i < d.sectionCount(); i++) {
                if (!d.isSubpage(i) && d.sectionFirst(i) == live.sectionFirst(mru)
                        && d.sectionLast(i) == live.sectionLast(mru)) {
                    same = i;
                    break;
                }
            }
            mru = same;
        }
        sb.append("  Dispatch").append(pageSizeNote).append('\n');
        sb.append("    Physical sections\n");
        for (int i = 0; i < d.sectionCount(); i++) {
            MemoryRegionSection s = d.section(i);
            MemoryRegion mr = s == null ? null : s.region();
            // QEMU's unassigned region and its subpage containers have no name.
            String name = mr == null || mr == unassigned ? "(noname)" : mr.name();
            sb.append("      #").append(i).append(" @").append(U64.hex16(d.sectionFirst(i))).append("..")
                    .append(U64.hex16(d.sectionLast(i))).append(' ').append(name)
                    .append(i < SECTION_LABELS.length ? SECTION_LABELS[i] : "")
                    .append(mr != null && mr == root ? " [ROOT]" : "")
                    .append(i == mru && mru != AddressSpaceDispatch.UNASSIGNED ? " [MRU]" : "")
                    .append(mr != null && mr.isIommu() ? " [iommu]" : "")
                    .append('\n');
            text.lineDone();
        }
        sb.append("    Nodes (").append(AddressSpaceDispatch.BITS_PER_LEVEL).append(" bits per level, ")
                .append(d.levels()).append(" levels) ptr=[").append(d.rootPtr()).append("] skip=")
                .append(d.rootSkip()).append('\n');
        for (int n = 0; n < d.nodeCount(); n++) {
            sb.append("      [").append(n).append("]\n");
            int from = 0;
            for (int j = 1; j <= AddressSpaceDispatch.NODE_SIZE; j++) {
                if (j < AddressSpaceDispatch.NODE_SIZE && d.entryPtr(n, j) == d.entryPtr(n, from)
                        && d.entrySkip(n, j) == d.entrySkip(n, from)) {
                    continue;
                }
                printEntries(sb, from, j, d.entrySkip(n, from), d.entryPtr(n, from));
                text.lineDone();
                from = j;
            }
        }
    }

    /**
     * QEMU's labels for sections 0 to 3, from when those were fixed dummy sections; QEMU 7.2 still prints them by
     * index, whatever sections 1 to 3 now are.
     */
    private static final String[] SECTION_LABELS = {" [unassigned]", " [not dirty]", " [ROM]", " [watch]"};

    /** QEMU's {@code mtree_print_phys_entries}: entries {@code [start, end)} that are all alike. */
    private static void printEntries(StringBuilder sb, int start, int end, int skip, int ptr) {
        if (start == end - 1) {
            sb.append(String.format("\t%3d      ", start));
        } else {
            sb.append(String.format("\t%3d..%-3d ", start, end - 1));
        }
        sb.append(" skip=").append(skip).append(' ');
        if (ptr == AddressSpaceDispatch.PRINTED_NIL) {
            sb.append(" ptr=NIL");
        } else if (skip == 0) {
            sb.append(" ptr=#").append(ptr);
        } else {
            sb.append(" ptr=[").append(ptr).append(']');
        }
        sb.append('\n');
    }

    private static List<MemoryRegion> orderedRoots(MemorySystem system) {
        ArrayList<MemoryRegion> roots = new ArrayList<>();
        IdentityHashMap<MemoryRegion, Boolean> seen = new IdentityHashMap<>();
        for (AddressSpace as : system.addressSpaces()) {
            if (seen.put(as.root(), Boolean.TRUE) == null) {
                roots.add(as.root());
            }
        }
        return roots;
    }

    /**
     * QEMU's {@code mtree_print_mr}, walked with an explicit stack (a tree may be deeper than the thread's stack),
     * for trees up to {@link #MAX_DEPTH} levels.
     */
    private static void printRegion(Text text, MemoryRegion top, AliasQueue aliasQueue, TypeWords types,
                                    boolean showDisabled) {
        checkDepth(top);
        StringBuilder sb = text.sb;
        ArrayDeque<Frame> work = new ArrayDeque<>();
        work.push(new Frame(top, 1, 0));
        while (!work.isEmpty()) {
            Frame f = work.pop();
            MemoryRegion mr = f.region;
            int level = f.level;
            long curStart = f.base + mr.addr();
            long curEnd = curStart + mrSize(mr.size());
            if (U64.lt(curStart, f.base) || U64.lt(curEnd, curStart)) {
                sb.append("[DETECTED OVERFLOW!] ");
            }
            boolean shown = mr.isEnabled() || showDisabled;
            if (mr.alias() != null) {
                // Queued even when the alias itself is disabled and hidden, as QEMU does.
                aliasQueue.add(mr.alias());
                if (shown) {
                    indent(sb, level);
                    sb.append(U64.hex16(curStart)).append('-').append(U64.hex16(curEnd))
                            .append(" (prio ").append(mr.priority()).append(", ")
                            .append(mr.isNonvolatile() ? "nv-" : "").append(types.of(mr))
                            .append("): alias ").append(mr.name()).append(" @").append(mr.alias().name()).append(' ')
                            .append(U64.hex16(mr.aliasOffset())).append('-')
                            .append(U64.hex16(mr.aliasOffset() + mrSize(mr.size())))
                            .append(mr.isEnabled() ? "" : " [disabled]").append('\n');
                }
            } else if (shown) {
                indent(sb, level);
                sb.append(U64.hex16(curStart)).append('-').append(U64.hex16(curEnd))
                        .append(" (prio ").append(mr.priority()).append(", ")
                        .append(mr.isNonvolatile() ? "nv-" : "").append(types.of(mr))
                        .append("): ").append(mr.name())
                        .append(mr.isEnabled() ? "" : " [disabled]").append('\n');
            }
            text.lineDone();
            // Children by ascending address, higher priority first at the same address; otherwise in list order
            // (a stable sort). Subregions of a hidden disabled region are still printed, one level deeper, as in
            // QEMU. Pushed last to first, so that the first is printed next.
            List<MemoryRegion> subs = mr.subregions();
            if (subs.isEmpty()) {
                continue;
            }
            ArrayList<MemoryRegion> queue = new ArrayList<>(subs);
            queue.sort(PRINT_ORDER);
            for (int i = queue.size() - 1; i >= 0; i--) {
                work.push(new Frame(queue.get(i), level + 1, curStart));
            }
        }
    }

    /** Refuses, before printing anything, a tree with a region deeper than {@link #MAX_DEPTH}. */
    private static void checkDepth(MemoryRegion top) {
        ArrayDeque<MemoryRegion> level = new ArrayDeque<>();
        level.add(top);
        for (int depth = 1; !level.isEmpty(); depth++) {
            if (depth > MAX_DEPTH) {
                throw new IllegalArgumentException("region=" + level.peek().name() + " depth=" + depth
                        + ": info mtree prints trees up to " + MAX_DEPTH + " levels deep (its text grows with the"
                        + " square of the depth); info mtree -f prints any depth");
            }
            ArrayDeque<MemoryRegion> next = new ArrayDeque<>();
            for (MemoryRegion r : level) {
                next.addAll(r.subregions());
            }
            level = next;
        }
    }

    /** Siblings as QEMU prints them: ascending address, then descending priority. */
    private static final Comparator<MemoryRegion> PRINT_ORDER = (a, b) -> {
        int byAddr = Long.compareUnsigned(a.addr(), b.addr());
        return byAddr != 0 ? byAddr : Integer.compare(b.priority(), a.priority());
    };

    /** A region still to print, at its indentation level, inside a container that starts at {@code base}. */
    private record Frame(MemoryRegion region, int level, long base) {
    }

    private static void indent(StringBuilder sb, int level) {
        for (int i = 0; i < level; i++) {
            sb.append(INDENT);
        }
    }

    /** The alias targets to print as {@code memory-region:} sections, each once, in the order they were met. */
    private static final class AliasQueue {
        final ArrayList<MemoryRegion> order = new ArrayList<>();
        private final IdentityHashMap<MemoryRegion, Boolean> seen = new IdentityHashMap<>();

        void add(MemoryRegion target) {
            if (seen.put(target, Boolean.TRUE) == null) {
                order.add(target);
            }
        }
    }

    /** QEMU's {@code MR_SIZE}: size - 1, and 0 for an empty region. */
    private static long mrSize(long size) {
        return size == 0 ? 0 : U64.lastOffset(size);
    }

    /**
     * The type word of {@code info mtree} ({@code ram}, {@code rom}, {@code romd}, {@code ramd}, {@code i/o}); an
     * alias shows its target's. Remembered per region, so a chain of aliases is walked once, not once per alias.
     */
    private static final class TypeWords {
        private final IdentityHashMap<MemoryRegion, String> known = new IdentityHashMap<>();

        String of(MemoryRegion region) {
            if (region.alias() == null) {
                return typeWord(region);
            }
            String word = known.get(region);
            if (word != null) {
                return word;
            }
            ArrayList<MemoryRegion> chain = new ArrayList<>();
            MemoryRegion mr = region;
            while (mr.alias() != null && (word = known.get(mr)) == null) {
                chain.add(mr);
                mr = mr.alias();
            }
            if (word == null) {
                word = typeWord(mr);
                known.put(mr, word);
            }
            for (MemoryRegion alias : chain) {
                known.put(alias, word);
            }
            return word;
        }
    }

    private static String typeWord(MemoryRegion mr) {
        if (mr.isRamDevice()) {
            return "ramd";
        } else if (mr.isRomd()) {
            return "romd";
        } else if (mr.isRom()) {
            return "rom";
        } else if (mr.isRam()) {
            return "ram";
        }
        return "i/o";
    }
}
