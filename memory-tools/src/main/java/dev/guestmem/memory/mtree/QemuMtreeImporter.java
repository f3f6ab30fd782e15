package dev.guestmem.memory.mtree;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.map.MachineMap;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
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
            "^((?:  )+)(\\[DETECTED OVERFLOW!] )?([0-9a-f]{16})-([0-9a-f]{16}) \\(prio (-?\\d+), (nv-)?(ram|rom|romd|ramd|i/o)\\): (.*)$");
    private static final Pattern ALIAS = Pattern.compile(
            "^alias (.*) @(.*) ([0-9a-f]{16})-([0-9a-f]{16})( \\[disabled])?$");
    private static final String DISABLED = " [disabled]";

    private QemuMtreeImporter() {
    }

    /** The map JSON for a QEMU {@code info mtree -D} dump. */
    public static String importDump(String dumpText) {
        return MachineMap.write(importToSystem(dumpText));
    }

    /** The dump rebuilt as a layout-only memory system (RAM has a size but no memory). */
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
        String signature;

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

        /** Everything printed about this region and its subtree, independent of where it is printed. */
        String signature() {
            if (signature == null) {
                StringBuilder sb = new StringBuilder();
                sb.append(name).append('|').append(type).append('|').append(priority).append('|').append(nonvolatile)
                        .append('|').append(end - start).append('|').append(disabled);
                if (aliasTarget != null) {
                    sb.append("|@").append(aliasTarget).append(':').append(aliasStart).append('-').append(aliasEnd);
                }
                sb.append('[');
                for (Node c : children) {
                    sb.append(c.start - start).append('=').append(c.signature()).append(';');
                }
                sb.append(']');
                signature = sb.toString();
            }
            return signature;
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
        int depth = m.group(1).length() / 2;
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
        if (U64.lt(end, start)) {
            throw new IllegalArgumentException("line " + lineNo + ": range " + m.group(3) + "-" + m.group(4)
                    + " ends before it starts");
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
            ArrayList<Node> mapped = new ArrayList<>();
            for (Block b : blocks) {
                if (b.isAddressSpace()) {
                    collect(b.root(), mapped);
                }
            }
            // Address-space roots stand for themselves, unless one is also mapped inside another tree.
            for (Block b : blocks) {
                if (b.isAddressSpace()) {
                    unify(b.root(), find(b.root(), mapped, null));
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
                    Node same = find(b.root(), mapped, blocks);
                    unify(b.root(), same);
                    if (same == null || same == b.root()) {
                        collect(b.root(), mapped);
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

        private static void collect(Node n, List<Node> out) {
            out.add(n);
            for (Node c : n.children) {
                collect(c, out);
            }
        }

        /** Another printed node that is the same region as {@code root}, or null. */
        private Node find(Node root, List<Node> mapped, List<Block> addressSpaceRootsToo) {
            for (Node n : mapped) {
                if (n != root && n.parent != null && n.name.equals(root.name) && n.ownAddr() == root.start
                        && n.signature().equals(root.signature())) {
                    return n;
                }
            }
            if (addressSpaceRootsToo != null) {
                for (Block b : addressSpaceRootsToo) {
                    Node n = b.root();
                    if (b.isAddressSpace() && n != root && n.name.equals(root.name) && n.start == root.start
                            && n.signature().equals(root.signature())) {
                        return canonical.getOrDefault(n, n);
                    }
                }
            }
            return null;
        }

        /** Records that {@code copy} (and its subtree) is the region printed at {@code original}, or itself. */
        private void unify(Node copy, Node original) {
            Node target = original == null ? copy : canonical.getOrDefault(original, original);
            canonical.put(copy, target);
            if (target != copy) {
                for (int i = 0; i < copy.children.size(); i++) {
                    unify(copy.children.get(i), target.children.get(i));
                }
            } else {
                for (Node c : copy.children) {
                    if (!canonical.containsKey(c)) {
                        unify(c, null);
                    }
                }
            }
        }

        /** Makes the region of {@code node} (and its subtree) once, with its subregions in insertion order. */
        private MemoryRegion buildTree(Node node) {
            Node c = canonical.getOrDefault(node, node);
            MemoryRegion r = regions.get(c);
            if (r != null) {
                return r;
            }
            r = create(c);
            regions.put(c, r);
            // Reverse print order reproduces QEMU's list order for ties (see the class comment).
            for (int i = c.children.size() - 1; i >= 0; i--) {
                Node child = c.children.get(i);
                MemoryRegion cr = buildTree(child);
                if (cr.container() == null) {
                    r.addSubregionOverlap(child.start - c.start, cr, child.priority);
                }
            }
            if (c.disabled) {
                r.setEnabled(false);
            }
            if (c.nonvolatile) {
                r.setNonvolatile(true);
            }
            return r;
        }

        private MemoryRegion create(Node n) {
            try {
                if (n.aliasTarget != null) {
                    Node section = sectionByName.get(n.aliasTarget);
                    if (section == null) {
                        throw new IllegalArgumentException("line " + n.lineNo + ": alias \"" + n.name + "\" points at \""
                                + n.aliasTarget + "\", which has no memory-region: section in the dump");
                    }
                    MemoryRegion target = buildTree(section);
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
            } catch (IllegalArgumentException e) {
                if (e.getMessage() != null && e.getMessage().startsWith("line ")) {
                    throw e;
                }
                throw new IllegalArgumentException("line " + n.lineNo + ": " + e.getMessage(), e);
            }
        }

        private static dev.guestmem.memory.MemoryRegionOps unimplemented(Node n) {
            return MachineMap.UNIMPLEMENTED_DEVICES.ops(n.name, n.name, MachineMap.OpsSpec.DEFAULT);
        }
    }
}
