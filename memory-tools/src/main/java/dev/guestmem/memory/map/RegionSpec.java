package dev.guestmem.memory.map;

import dev.guestmem.memory.MemoryRegion;

import java.util.Arrays;

/**
 * One region of a {@code guestmem-map/1} map as read, its fields checked one by one, the ids it names not yet
 * resolved: what {@link MapLoader} builds the region from. Compact on purpose (a map may hold a million of them):
 * numbers as {@code long}s, flags in one byte, subregions in parallel arrays.
 *
 * <p>Threading: confined to the thread that reads the map.
 */
final class RegionSpec {
    static final int READONLY = 1;
    static final int NONVOLATILE = 2;
    static final int UNMERGEABLE = 4;
    static final int DISABLED = 8;
    static final int NOT_ROMD = 16;

    final String id;
    final String name;
    final MemoryRegion.Kind kind;
    /** Bytes; {@link dev.guestmem.memory.U64#SIZE_2_64} is 2^64. */
    final long size;
    /** {@link #READONLY} and the other flag bits. */
    final int flags;
    /** The id of an alias's target (checked to be text, not yet to exist), or null for any other kind. */
    final String aliasTarget;
    /** An alias's offset into its target, in bytes. */
    final long aliasOffset;
    /** The access rules of an {@code io} or {@code rom-device} region, else null. */
    final MachineMap.OpsSpec ops;
    /** The subregions in the order the map lists them, or null when it lists none. */
    final Subregions subregions;

    /** Set while loading: the region made from this spec. */
    MemoryRegion made;
    /** Set while loading: the specs of {@link #subregions}, in the same order. */
    RegionSpec[] children;
    /** Set while loading: the container whose subregions list this one. */
    RegionSpec parent;
    /** Set while loading: 0 not reached yet, 1 on the current walk (of
     * containers, or of an alias chain), 2 done by the walk of containers. */
    byte walk;

    RegionSpec(String id, String name, MemoryRegion.Kind kind, long size, int flags, String aliasTarget,
               long aliasOffset, MachineMap.OpsSpec ops, Subregions subregions) {
        this.id = id;
        this.name = name;
        this.kind = kind;
        this.size = size;
        this.flags = flags;
        this.aliasTarget = aliasTarget;
        this.aliasOffset = aliasOffset;
        this.ops = ops;
        this.subregions = subregions;
    }

    boolean has(int flag) {
        return (flags & flag) != 0;
    }

    /**
     * A container's subregion list as read: the id each entry names, its address and its priority, in the map's
     * order (which decides ties between equal priorities).
     */
    static final class Subregions {
        private String[] ids = new String[4];
        private long[] addrs = new long[4];
        private int[] priorities = new int[4];
        private int size;

        void add(String id, long addr, int priority) {
            if (size == ids.length) {
                int n = size * 2;
                ids = Arrays.copyOf(ids, n);
                addrs = Arrays.copyOf(addrs, n);
                priorities = Arrays.copyOf(priorities, n);
            }
            ids[size] = id;
            addrs[size] = addr;
            priorities[size] = priority;
            size++;
        }

        int size() {
            return size;
        }

        String id(int i) {
            return ids[i];
        }

        /** Container-relative address, in bytes. */
        long addr(int i) {
            return addrs[i];
        }

        int priority(int i) {
            return priorities[i];
        }
    }
}
