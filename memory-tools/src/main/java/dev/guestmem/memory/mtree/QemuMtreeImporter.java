package dev.guestmem.memory.mtree;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.map.MachineMap;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the text of QEMU 7.2's {@code info mtree -D} (the whole monitor output: every {@code address-space:} and
 * {@code memory-region:} section) into a {@code guestmem-map/1} machine map.
 *
 * <h2>What the dump shows and what the importer decides</h2>
 * <ul>
 *   <li><b>Identity.</b> Names are not unique, and a region can be printed twice: mapped inside a tree, and again as a
 *   {@code memory-region:} section because an alias points at it. A section is the same region as a printed node
 *   when both have the same name, the same own address and priority, and identical subtrees; otherwise it is a
 *   region that is not mapped anywhere. Alias targets are found by name among the {@code memory-region:} sections
 *   (QEMU prints one section per distinct target), so those names must be unique; a dump where two different
 *   targets share a name is refused.</li>
 *   <li><b>{@code i/o} regions.</b> The type word {@code i/o} is printed for pure containers, MMIO regions,
 *   IOMMUs, reservations and ROM devices out of romd mode alike. The importer makes an {@code i/o} region with
 *   subregions a {@code container} and one without subregions an {@code io} region. That guess is wrong for an MMIO
 *   region that has subregions (it fills the gaps between them; a container does not) and for an empty container
 *   (it renders nothing; an MMIO region does). Compare the map's {@code ./guestmem mtree -f} with QEMU's
 *   {@code info mtree -f} and change {@code "kind"} where a range is missing or extra.</li>
 *   <li><b>Read-only aliases.</b> The dump prints an alias with its target's type and no read-only mark, so every
 *   alias is imported writable. Where QEMU's {@code info mtree -f} shows {@code rom} for a range of a {@code ram}
 *   region, add {@code "readonly": true} to the alias (or container) that makes it read-only.</li>
 *   <li><b>Types.</b> {@code ram} becomes {@code ram}, {@code rom} becomes {@code rom} (QEMU's RAM with the
 *   read-only flag renders the same), {@code romd} becomes a {@code rom-device} in romd mode, {@code ramd} a
 *   {@code ram-device}. {@code nv-} sets {@code nonvolatile}; {@code [disabled]} clears {@code enabled}.</li>
 *   <li><b>Sizes.</b> A line prints its first and last address, so a region of size 0 and one of size 1 look the
 *   same; the importer reads size 1, except for an alias whose one-byte window would lie past the end of its
 *   target, which can only be of size 0 (q35's {@code tseg-window}). Where a size-0 region is enabled, QEMU's
 *   {@code info mtree -f} shows no range for it: set {@code "size": "0x0"} in the map.</li>
 *   <li><b>Order.</b> Subregions are printed sorted by address, then by descending priority, then in QEMU's list
 *   order (most recently added first). The importer lists them in reverse print order, which reproduces QEMU's list
 *   wherever the order matters for regions at the same address and priority; for equal-priority regions that
 *   overlap at different addresses the dump does not say which was added last, and the one printed first (lower
 *   address) is taken to be the later one.</li>
 * </ul>
 *
 * <p>Lines the importer does not understand are an error naming the line number, never skipped. Output of
 * {@code info mtree -o} (owners) and of {@code -f} is not accepted here.
 */
public final class QemuMtreeImporter {
    private static final Pattern LINE = Pattern.compile(
            "^(\\[DETECTED OVERFLOW!] )?((?:  )+)([0-9a-f]{16})-([0-9a-f]{16}) \\(prio (-?\\d+), (nv-)?(ram|rom|romd|ramd|i/o)\\): (.*)$");
    private static final Pattern ALIAS = Pattern.compile(
            "^alias (.*) @(.*) ([0-9a-f]{16})-([0-9a-f]{16})( \\[disabled])?$");
    private static final String DISABLED = " [disabled]";

    private QemuMtreeImporter() {
    }

    /**
     * The map JSON for a QEMU {@code info mtree -D} dump.
     *
     * @throws IllegalArgumentException if the dump cannot be read as one, with a message naming the line
     */
    public static String importDump(String dumpText) {
        return MachineMap.write(importToSystem(dumpText));
    }

    /**
     * The dump rebuilt as a layout-only memory system (RAM has a size but no memory).
     *
     * @throws IllegalArgumentException if the dump cannot be read as one, with a message naming the line
     */
    public static MemorySystem importToSystem(String dumpText) {
        List<Block> blocks = parse(dumpText);
        return new Builder(blocks).build();
    }

    // ---------------------------------------------------------------- parsing

    /** One printed line of the tree. */
    static final class Node {
        final int lineNo;
        final int depth;
        final long start;
        final long end;
        final int priority;
        final boolean nonvolatile;
        final String type;
        final String name;
        final boolean disabled;
        final String aliasTarget;
        final long aliasStart;
        final long aliasEnd;
        final ArrayList<Node> children = new ArrayList<>();
        Node parent;
        /** A hash of everything printed about this region and its subtree (see {@link #sameAs}); set by parse. */
        int shape;

        Node(int lineNo, int depth, long start, long end, int priority, boolean nonvolatile, String type, String name,
             boolean disabled, String aliasTarget, long aliasStart, long aliasEnd) {
            this.lineNo = lineNo;
            this.depth = depth;
            this.start = start;
            this.end = end;
            this.priority = priority;
            this.nonvolatile = nonvolatile;
            this.type = type;
            this.name = name;
            this.disabled = disabled;
            this.aliasTarget = aliasTarget;
            this.aliasStart = aliasStart;
            this.aliasEnd = aliasEnd;
        }

        /** The region's addr inside its container (or the printed start of a section root, printed at base 0). */
        long ownAddr() {
            return parent == null ? start : start - parent.start;
        }

        /** The region's size under QEMU's 2^64 rule (a single-address line reads as size 1). */
        long size() {
            long last = end - start;
            return last == -1L ? U64.SIZE_2_64 : last + 1;
        }

        /** Whether the printed lines of this node alone (not its subtree) match {@code o}'s, wherever printed. */
        private boolean sameLine(Node o) {
            return name.equals(o.name) && type.equals(o.type) && priority == o.priority
                    && nonvolatile == o.nonvolatile && end - start == o.end - o.start && disabled == o.disabled
                    && Objects.equals(aliasTarget, o.aliasTarget) && aliasStart == o.aliasStart
                    && aliasEnd == o.aliasEnd && children.size() == o.children.size();
        }

        private int lineHash() {
            return Objects.hash(name, type, priority, nonvolatile, end - start, disabled, aliasTarget, aliasStart,
                    aliasEnd, children.size());
        }

        /**
         * Whether everything printed about this region and its subtree is what is printed about {@code o}'s,
         * independent of where each is printed (children compared by their offsets), walked without recursion.
         */
        boolean sameAs(Node o) {
            ArrayDeque<Node[]> work = new ArrayDeque<>();
            work.push(new Node[] {this, o});
            while (!work.isEmpty()) {
                Node[] pair = work.pop();
                Node a = pair[0];
                Node b = pair[1];
                if (a.shape != b.shape || !a.sameLine(b)) {
                    return false;
                }
                for (int i = 0; i < a.children.size(); i++) {
                    Node ca = a.children.get(i);
                    Node cb = b.children.get(i);
                    if (ca.start - a.start != cb.start - b.start) {
                        return false;
                    }
                    work.push(new Node[] {ca, cb});
                }
            }
            return true;
        }

        /** Sets {@link #shape} of every node under {@code root}, children before parents, without recursion. */
        static void hashShapes(Node root) {
            ArrayList<Node> preorder = preorder(root);
            for (int i = preorder.size() - 1; i >= 0; i--) {
                Node n = preorder.get(i);
                int h = n.lineHash();
                for (Node c : n.children) {
                    h = 31 * h + Long.hashCode(c.start - n.start);
                    h = 31 * h + c.shape;
                }
                n.shape = h;
            }
        }

        /** {@code root} and everything under it, parents before children, in print order. */
        static ArrayList<Node> preorder(Node root) {
            ArrayList<Node> out = new ArrayList<>();
            ArrayDeque<Node> work = new ArrayDeque<>();
            work.push(root);
            while (!work.isEmpty()) {
                Node n = work.pop();
                out.add(n);
                for (int i = n.children.size() - 1; i >= 0; i--) {
                    work.push(n.children.get(i));
                }
            }
            return out;
        }
    }

    /** An {@code address-space:} group (one or more names) or a {@code memory-region:} section. */
    record Block(List<String> addressSpaces, String regionName, Node root, int lineNo) {
        boolean isAddressSpace() {
            return regionName == null;
        }
    }

    static List<Block> parse(String text) {
        String[] lines = text.replace("\r\n", "\n").split("\n", -1);
        ArrayList<Block> blocks = new ArrayList<>();
        int i = 0;
        while (i < lines.length) {
            String line = lines[i];
            if (line.isEmpty()) {
                i++;
                continue;
            }
            int headerLine = i + 1;
            ArrayList<String> spaces = new ArrayList<>();
            String regionName = null;
            if (line.startsWith("address-space: ")) {
                while (i < lines.length && lines[i].startsWith("address-space: ")) {
                    spaces.add(lines[i].substring("address-space: ".length()));
                    i++;
                }
            } else if (line.startsWith("memory-region: ")) {
                regionName = line.substring("memory-region: ".length());
                i++;
            } else {
                throw new IllegalArgumentException("line " + (i + 1) + ": expected \"address-space: \" or "
                        + "\"memory-region: \", found: " + line);
            }
            ArrayList<Node> stack = new ArrayList<>();
            Node root = null;
            while (i < lines.length && !lines[i].isEmpty()) {
                Node n = parseLine(lines[i], i + 1);
                if (root == null) {
                    if (n.depth != 1) {
                        throw new IllegalArgumentException("line " + (i + 1) + ": the first region of a section must be"
                                + " indented by two spaces");
                    }
                    root = n;
                } else {
                    if (n.depth < 2 || n.depth > stack.size() + 1) {
                        throw new IllegalArgumentException("line " + (i + 1) + ": indentation depth " + n.depth
                                + " does not fit under the previous line");
                    }
                    Node parent = stack.get(n.depth - 2);
                    n.parent = parent;
                    parent.children.add(n);
                }
                while (stack.size() >= n.depth) {
                    stack.remove(stack.size() - 1);
                }
                stack.add(n);
                i++;
            }
            if (root == null) {
                throw new IllegalArgumentException("line " + headerLine + ": section has no regions");
            }
            if (regionName != null && !regionName.equals(root.name)) {
                throw new IllegalArgumentException("line " + (headerLine + 1) + ": section \"" + regionName
                        + "\" starts with region \"" + root.name + "\"");
            }
            Node.hashShapes(root);
            blocks.add(new Block(regionName == null ? List.copyOf(spaces) : List.of(), regionName, root, headerLine));
        }
        if (blocks.isEmpty()) {
            throw new IllegalArgumentException("line 1: no address-space sections in the dump");
        }
        return blocks;
    }

    private static Node parseLine(String line, int lineNo) {
        Matcher m = LINE.matcher(line);
        if (!m.matches()) {
            throw new IllegalArgumentException("line " + lineNo + ": not a region line of info mtree -D: " + line);
        }
        boolean overflow = m.group(1) != null;
        int depth = m.group(2).length() / 2;
        long start = Long.parseUnsignedLong(m.group(3), 16);
        long end = Long.parseUnsignedLong(m.group(4), 16);
        int priority;
        try {
            priority = Integer.parseInt(m.group(5));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("line " + lineNo + ": priority " + m.group(5) + " is not a 32-bit integer", e);
        }
        boolean nv = m.group(6) != null;
        String type = m.group(7);
        String rest = m.group(8);
        // QEMU marks a line whose range wrapped past 2^64 (a subregion running past the end of the space, or inside
        // one that does); its end is then below its start, and the size is still end - start + 1 modulo 2^64.
        if (U64.lt(end, start) && !overflow) {
            throw new IllegalArgumentException("line " + lineNo + ": range " + m.group(3) + "-" + m.group(4)
                    + " ends before it starts (and the line has no [DETECTED OVERFLOW!] mark)");
        }
        if (rest.startsWith("alias ")) {
            Matcher a = ALIAS.matcher(rest);
            if (!a.matches()) {
                throw new IllegalArgumentException("line " + lineNo + ": malformed alias: " + rest);
            }
            long aStart = Long.parseUnsignedLong(a.group(3), 16);
            long aEnd = Long.parseUnsignedLong(a.group(4), 16);
            if (aEnd - aStart != end - start) {
                throw new IllegalArgumentException("line " + lineNo + ": alias window " + a.group(3) + "-" + a.group(4)
                        + " is not as long as the alias " + m.group(3) + "-" + m.group(4));
            }
            return new Node(lineNo, depth, start, end, priority, nv, type, a.group(1), a.group(5) != null,
                    a.group(2), aStart, aEnd);
        }
        boolean disabled = rest.endsWith(DISABLED);
        String name = disabled ? rest.substring(0, rest.length() - DISABLED.length()) : rest;
        return new Node(lineNo, depth, start, end, priority, nv, type, name, disabled, null, 0, 0);
    }

    // ---------------------------------------------------------------- building

    private static final class Builder {
        private final List<Block> blocks;
        private final MemorySystem system = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        /** Printed node -> the node that stands for the same region (itself, or the mapped copy). */
        private final IdentityHashMap<Node, Node> canonical = new IdentityHashMap<>();
        private final IdentityHashMap<Node, MemoryRegion> regions = new IdentityHashMap<>();
        private final HashMap<String, Node> sectionByName = new HashMap<>();

        Builder(List<Block> blocks) {
            this.blocks = blocks;
        }

        MemorySystem build() {
            MappedIndex mapped = new MappedIndex();
            for (Block b : blocks) {
                if (b.isAddressSpace()) {
                    mapped.addTree(b.root());
                }
            }
            // Address-space roots stand for themselves, unless one is also mapped inside another tree.
            for (Block b : blocks) {
                if (b.isAddressSpace()) {
                    unify(b.root(), mapped.find(b.root()));
                }
            }
            // A memory-region section is the same region as a printed node with the same subtree, or unmapped.
            for (Block b : blocks) {
                if (!b.isAddressSpace()) {
                    Node prev = sectionByName.put(b.regionName(), b.root());
                    if (prev != null) {
                        throw new IllegalArgumentException("line " + b.lineNo() + ": a second \"memory-region: "
                                + b.regionName() + "\" section (first at line " + (prev.lineNo - 1)
                                + "): alias targets with the same name cannot be told apart");
                    }
                    Node same = mapped.find(b.root());
                    if (same == null) {
                        same = sameAddressSpaceRoot(b.root());
                    }
                    unify(b.root(), same);
                    if (same == null || same == b.root()) {
                        mapped.addTree(b.root());
                    }
                }
            }
            system.begin();
            try {
                for (Block b : blocks) {
                    buildTree(b.root());
                }
                for (Block b : blocks) {
                    if (b.isAddressSpace()) {
                        for (String name : b.addressSpaces()) {
                            system.addressSpace(name, regions.get(canonical.get(b.root())));
                        }
                    }
                }
            } finally {
                system.commit();
            }
            return system;
        }

        /**
         * The printed nodes that have a container, by name, own address and shape, so that finding the node a
         * section repeats costs a hash lookup (and a comparison of the candidates' subtrees), not a scan.
         */
        private static final class MappedIndex {
            private final HashMap<Key, List<Node>> byKey = new HashMap<>();

            private record Key(String name, long addr, int shape) {
            }

            void addTree(Node root) {
                for (Node n : Node.preorder(root)) {
                    if (n.parent != null) {
                        byKey.computeIfAbsent(new Key(n.name, n.ownAddr(), n.shape), k -> new ArrayList<>(1)).add(n);
                    }
                }
            }

            /** The first node (in the order added) other than {@code root} that is the same region, or null. */
            Node find(Node root) {
                for (Node n : byKey.getOrDefault(new Key(root.name, root.start, root.shape), List.of())) {
                    if (n != root && n.sameAs(root)) {
                        return n;
                    }
                }
                return null;
            }
        }

        /** An address-space root printed as the same region as section {@code root}, as unified, or null. */
        private Node sameAddressSpaceRoot(Node root) {
            for (Block b : blocks) {
                Node n = b.root();
                if (b.isAddressSpace() && n != root && n.name.equals(root.name) && n.start == root.start
                        && n.sameAs(root)) {
                    return canonical.getOrDefault(n, n);
                }
            }
            return null;
        }

        /** Records that {@code copy} (and its subtree) is the region printed at {@code original}, or itself. */
        private void unify(Node copy, Node original) {
            ArrayDeque<Node[]> work = new ArrayDeque<>();
            work.push(new Node[] {copy, original});
            while (!work.isEmpty()) {
                Node[] pair = work.pop();
                Node c = pair[0];
                Node target = pair[1] == null ? c : canonical.getOrDefault(pair[1], pair[1]);
                canonical.put(c, target);
                if (target != c) {
                    for (int i = c.children.size() - 1; i >= 0; i--) {
                        work.push(new Node[] {c.children.get(i), target.children.get(i)});
                    }
                } else {
                    for (int i = c.children.size() - 1; i >= 0; i--) {
                        if (!canonical.containsKey(c.children.get(i))) {
                            work.push(new Node[] {c.children.get(i), null});
                        }
                    }
                }
            }
        }

        /** A region being built: its node, and once made its region and the next child to add (last first). */
        private static final class Frame {
            final Node node;
            MemoryRegion region;
            int nextChild;

            Frame(Node node) {
                this.node = node;
            }
        }

        /**
         * Makes the region of {@code top} and everything it reaches (its subtree, alias targets and theirs) once,
         * with subregions in insertion order, walked with an explicit stack: a dump may be deeper than the thread's
         * stack. Each region's subregions are complete before it is added to its container.
         */
        private MemoryRegion buildTree(Node top) {
            ArrayDeque<Frame> work = new ArrayDeque<>();
            IdentityHashMap<Node, Boolean> waiting = new IdentityHashMap<>(); // aliases waiting for their target
            work.push(new Frame(canonical.getOrDefault(top, top)));
            while (!work.isEmpty()) {
                Frame f = work.peek();
                Node c = f.node;
                if (f.region == null) {
                    if (regions.containsKey(c)) {
                        work.pop();
                        continue;
                    }
                    if (c.aliasTarget != null) {
                        Node section = sectionByName.get(c.aliasTarget);
                        if (section == null) {
                            throw new IllegalArgumentException("line " + c.lineNo + ": alias \"" + c.name
                                    + "\" points at \"" + c.aliasTarget + "\", which has no memory-region: section in "
                                    + "the dump");
                        }
                        Node target = canonical.getOrDefault(section, section);
                        if (!regions.containsKey(target)) {
                            if (waiting.put(c, Boolean.TRUE) != null) {
                                throw new IllegalArgumentException("line " + c.lineNo + ": alias \"" + c.name
                                        + "\" reaches itself through its target \"" + c.aliasTarget + "\"");
                            }
                            work.push(new Frame(target));
                            continue;
                        }
                        waiting.remove(c);
                    }
                    f.region = create(c);
                    regions.put(c, f.region);
                    // Reverse print order reproduces QEMU's list order for ties (see the class comment).
                    f.nextChild = c.children.size() - 1;
                }
                if (f.nextChild >= 0) {
                    Node child = c.children.get(f.nextChild);
                    Node canon = canonical.getOrDefault(child, child);
                    MemoryRegion cr = regions.get(canon);
                    if (cr == null) {
                        work.push(new Frame(canon));
                        continue;
                    }
                    if (cr.container() == null) {
                        try {
                            f.region.addSubregionOverlap(child.start - c.start, cr, child.priority);
                        } catch (IllegalArgumentException | IllegalStateException e) {
                            throw new IllegalArgumentException("line " + child.lineNo + ": " + e.getMessage(), e);
                        }
                    }
                    f.nextChild--;
                    continue;
                }
                if (c.disabled) {
                    f.region.setEnabled(false);
                }
                if (c.nonvolatile) {
                    f.region.setNonvolatile(true);
                }
                work.pop();
            }
            return regions.get(canonical.getOrDefault(top, top));
        }

        private MemoryRegion create(Node n) {
            try {
                if (n.aliasTarget != null) {
                    Node section = sectionByName.get(n.aliasTarget); // built by now: see buildTree
                    MemoryRegion target = regions.get(canonical.getOrDefault(section, section));
                    long size = n.size();
                    if (n.start == n.end && target.size() != U64.SIZE_2_64 && U64.le(target.size(), n.aliasStart)) {
                        size = 0; // a one-byte window would lie past the target: QEMU can only have printed size 0
                    }
                    return system.alias(n.name, target, n.aliasStart, size);
                }
                long size = n.size();
                return switch (n.type) {
                    case "ram" -> system.ram(n.name, size);
                    case "rom" -> system.rom(n.name, size);
                    case "ramd" -> system.ramDevice(n.name, size);
                    case "romd" -> system.romDevice(n.name, size, unimplemented(n));
                    default -> n.children.isEmpty() ? system.io(n.name, size, unimplemented(n))
                            : system.container(n.name, size);
                };
            } catch (IllegalArgumentException | IllegalStateException e) {
                // The core refuses what it cannot hold (for one, RAM blocks larger than the ram_addr space left).
                throw new IllegalArgumentException("line " + n.lineNo + ": " + e.getMessage(), e);
            }
        }

        private static dev.guestmem.memory.MemoryRegionOps unimplemented(Node n) {
            return MachineMap.UNIMPLEMENTED_DEVICES.ops(n.name, n.name, MachineMap.OpsSpec.DEFAULT);
        }
    }
}
