package dev.guestmem.memory.map;

import com.fasterxml.jackson.databind.JsonNode;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;

import static dev.guestmem.memory.map.MapStream.where;

/**
 * Builds a map's regions from what {@link MapStream} read, in one transaction: every id the specs name is resolved
 * before anything is made, and every region is made before any is nested.
 *
 * <p>Threading: confined to the loading thread.
 */
final class MapLoader {
    private final LinkedHashMap<String, RegionSpec> specs;
    private final JsonNode addressSpaces;
    private final MemorySystem system;
    private final MachineMap.DeviceFactory devices;
    private final int defaultPageBits;

    MapLoader(MapStream.Read read, MemorySystem system, MachineMap.DeviceFactory devices, int defaultPageBits) {
        this.specs = read.regions();
        this.addressSpaces = read.addressSpaces();
        this.system = system;
        this.devices = devices;
        this.defaultPageBits = defaultPageBits;
    }

    /** The regions made, by id in the map's order. */
    LinkedHashMap<String, MemoryRegion> load() {
        checkContainment();
        system.begin();
        try {
            for (RegionSpec spec : specs.values()) {
                create(spec);
            }
            for (RegionSpec c : containersDeepestFirst()) {
                addSubregions(c);
            }
            addAddressSpaces();
        } finally {
            system.commit();
        }
        LinkedHashMap<String, MemoryRegion> made = LinkedHashMap.newLinkedHashMap(specs.size());
        for (RegionSpec spec : specs.values()) {
            made.put(spec.id, spec.made);
        }
        return made;
    }

    /**
     * Resolves every subregion id into {@link RegionSpec#children}, refusing unknown ids and regions listed in two
     * containers (or twice), before anything is built.
     */
    private void checkContainment() {
        for (RegionSpec spec : specs.values()) {
            RegionSpec.Subregions subs = spec.subregions;
            if (subs == null) {
                continue;
            }
            RegionSpec[] children = new RegionSpec[subs.size()];
            for (int i = 0; i < subs.size(); i++) {
                RegionSpec child = specs.get(subs.id(i));
                if (child == null) {
                    throw new MapFormatException(where(spec.id, "subregions[" + i + "].region") + "unknown id \""
                            + subs.id(i) + "\"");
                }
                if (child.parent != null) {
                    throw new MapFormatException(where(spec.id, "subregions[" + i + "].region") + "region \""
                            + child.id + "\" is already a subregion of \"" + child.parent.id + "\"");
                }
                child.parent = spec;
                children[i] = child;
            }
            spec.children = children;
        }
    }

    /**
     * Makes the region of {@code spec} unless it is made, and first the regions its alias target chain leads to, the
     * far end first (in a loop: a chain may be as long as the map).
     */
    private void create(RegionSpec spec) {
        if (spec.made != null) {
            return;
        }
        if (spec.aliasTarget == null) {
            createOne(spec);
            return;
        }
        ArrayList<RegionSpec> chain = new ArrayList<>();
        for (RegionSpec at = spec; at != null && at.made == null; at = aliasTarget(at)) {
            if (at.walk == 1) {
                List<String> ids = new ArrayList<>();
                for (RegionSpec c : chain.subList(chain.indexOf(at), chain.size())) {
                    ids.add(c.id);
                }
                throw new MapFormatException(where(at.id, "alias.target") + "alias cycle " + String.join(" -> ", ids)
                        + " -> " + at.id);
            }
            at.walk = 1; // on this chain; every spec of it is made below, or the load fails
            chain.add(at);
        }
        for (int i = chain.size() - 1; i >= 0; i--) {
            chain.get(i).walk = 0;
            createOne(chain.get(i));
        }
    }

    /** The spec an alias targets (checked to exist), or null for any other kind of region. */
    private RegionSpec aliasTarget(RegionSpec spec) {
        if (spec.aliasTarget == null) {
            return null;
        }
        RegionSpec target = specs.get(spec.aliasTarget);
        if (target == null) {
            throw new MapFormatException(where(spec.id, "alias.target") + "unknown id \"" + spec.aliasTarget + "\"");
        }
        return target;
    }

    /** Makes the region of {@code spec}, whose alias target, if it has one, is made. */
    private void createOne(RegionSpec spec) {
        String id = spec.id;
        String name = spec.name;
        long size = spec.size;
        MemoryRegion r;
        try {
            r = switch (spec.kind) {
                case CONTAINER -> system.container(name, size);
                case RAM -> system.ram(name, size);
                case ROM -> system.rom(name, size);
                case RAM_DEVICE -> system.ramDevice(name, size);
                case ROM_DEVICE -> system.romDevice(name, size, devices.ops(id, name, spec.ops));
                case IO -> system.io(name, size, devices.ops(id, name, spec.ops));
                case IOMMU -> system.iommu(name, size, devices.iommu(id, name));
                case RESERVATION -> system.reservation(name, size);
                case ALIAS -> system.alias(name, specs.get(spec.aliasTarget).made, spec.aliasOffset, size);
            };
            if (spec.has(RegionSpec.READONLY)) {
                r.setReadonly(true);
            }
            if (spec.has(RegionSpec.NONVOLATILE)) {
                r.setNonvolatile(true);
            }
            if (spec.has(RegionSpec.UNMERGEABLE)) {
                r.setUnmergeable(true);
            }
            if (spec.has(RegionSpec.DISABLED)) {
                r.setEnabled(false);
            }
            if (spec.has(RegionSpec.NOT_ROMD)) {
                r.setRomd(false);
            }
        } catch (IllegalArgumentException | IllegalStateException e) {
            if (e instanceof MapFormatException) {
                throw e;
            }
            throw new MapFormatException(where(id, null) + e.getMessage(), e);
        }
        spec.made = r;
    }

    /**
     * Every spec with subregions, each after every region it contains or aliases (a post-order of the map's graph,
     * walked without recursion). Filling containers in this order means no container is inside another yet when its
     * subregions are added, so each addition's cycle check has no ancestors to walk and loading stays linear in the
     * depth of the map. A cycle through subregions and aliases is refused here.
     */
    private List<RegionSpec> containersDeepestFirst() {
        ArrayList<RegionSpec> order = new ArrayList<>();
        ArrayDeque<RegionSpec> walk = new ArrayDeque<>();
        int[] nextEdge = new int[16]; // of each spec on the walk, innermost last
        for (RegionSpec start : specs.values()) {
            if (start.walk != 0) {
                continue;
            }
            start.walk = 1;
            walk.push(start);
            nextEdge[0] = 0;
            while (!walk.isEmpty()) {
                RegionSpec at = walk.peek();
                int depth = walk.size() - 1;
                RegionSpec to = edge(at, nextEdge[depth]++);
                if (to != null) {
                    if (to.walk == 0) {
                        to.walk = 1;
                        walk.push(to);
                        if (walk.size() > nextEdge.length) {
                            nextEdge = java.util.Arrays.copyOf(nextEdge, nextEdge.length * 2);
                        }
                        nextEdge[walk.size() - 1] = 0;
                    } else if (to.walk == 1) {
                        throw new MapFormatException(where(at.id, null) + "cycle " + cycle(walk, to));
                    }
                } else if (nextEdge[depth] > edgeCount(at)) {
                    walk.pop();
                    at.walk = 2;
                    if (at.children != null) {
                        order.add(at);
                    }
                }
            }
        }
        return order;
    }

    /** How many regions {@code spec} reaches directly: its subregions, then its alias target. */
    private static int edgeCount(RegionSpec spec) {
        return (spec.children == null ? 0 : spec.children.length) + (spec.aliasTarget == null ? 0 : 1);
    }

    /** The {@code i}th region {@code spec} reaches directly, or null past the last. */
    private RegionSpec edge(RegionSpec spec, int i) {
        int subs = spec.children == null ? 0 : spec.children.length;
        if (i < subs) {
            return spec.children[i];
        }
        return i == subs ? aliasTarget(spec) : null;
    }

    /** The ids of a cycle that {@code walk} (innermost first) closes by reaching {@code to} again. */
    private static String cycle(ArrayDeque<RegionSpec> walk, RegionSpec to) {
        ArrayList<String> ids = new ArrayList<>();
        for (RegionSpec spec : walk) {
            ids.add(spec.id);
            if (spec == to) {
                break;
            }
        }
        Collections.reverse(ids);
        return String.join(" -> ", ids) + " -> " + to.id;
    }

    private void addSubregions(RegionSpec spec) {
        RegionSpec.Subregions subs = spec.subregions;
        MemoryRegion container = spec.made;
        for (int i = 0; i < subs.size(); i++) {
            try {
                container.addSubregionOverlap(subs.addr(i), spec.children[i].made, subs.priority(i));
            } catch (IllegalArgumentException e) {
                throw new MapFormatException(where(spec.id, "subregions[" + i + "].region") + e.getMessage(), e);
            }
        }
    }

    private void addAddressSpaces() {
        JsonNode list = addressSpaces;
        if (list == null || !list.isArray()) {
            throw new MapFormatException("addressSpaces: expected an array of { \"name\": text, \"root\": id }");
        }
        for (int i = 0; i < list.size(); i++) {
            JsonNode as = list.get(i);
            String at = "addressSpaces[" + i + "]";
            if (!as.isObject()) {
                throw new MapFormatException(at + ": expected { \"name\": text, \"root\": id }");
            }
            MapStream.checkFields(at, as, "name", "root", "pageBits");
            JsonNode nameNode = as.get("name");
            if (nameNode == null || !nameNode.isTextual()) {
                throw new MapFormatException(at + ".name: expected a string, found " + nameNode);
            }
            JsonNode rootNode = as.get("root");
            RegionSpec root = rootNode == null || !rootNode.isTextual() ? null : specs.get(rootNode.asText());
            if (root == null) {
                throw new MapFormatException(at + ".root: unknown id " + rootNode);
            }
            int pageBits = defaultPageBits;
            JsonNode pb = as.get("pageBits");
            if (pb != null) {
                if (!pb.isIntegralNumber() || !pb.canConvertToInt()) {
                    throw new MapFormatException(at + ".pageBits: expected an integer, found " + pb);
                }
                pageBits = pb.intValue();
            }
            try {
                system.addressSpace(nameNode.asText(), root.made, pageBits);
            } catch (IllegalArgumentException e) {
                if (pb == null) {
                    // The caller's default, not the map, is at fault.
                    throw new IllegalArgumentException("defaultPageBits=" + defaultPageBits + " (for " + at
                            + ", which gives no pageBits): " + e.getMessage(), e);
                }
                throw new MapFormatException(at + ".pageBits: " + e.getMessage(), e);
            }
        }
    }
}
