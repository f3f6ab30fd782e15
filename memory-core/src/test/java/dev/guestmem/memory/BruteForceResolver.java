package dev.guestmem.memory;

import java.math.BigInteger;

/**
 * The rendering oracle: answers "what does the guest reach at this address?" for one address at a time by walking
 * the region tree the naive way, with none of the renderer's machinery (no clipping windows carried along, no
 * filled-interval map, no modular arithmetic). All arithmetic is exact {@link BigInteger}, so windows that end at
 * 2^64, and alias targets whose offset 0 lies "below" guest address 0, need no care.
 *
 * <p>The rules are QEMU 7.2's {@code render_memory_region}, restated per address:
 * <ul>
 *   <li>a disabled region hides itself and everything under it;</li>
 *   <li>a region whose offset 0 sits at guest address {@code origin} covers {@code [origin, origin + size)}; the
 *       address must lie in the window of every region on the path, which is the same as being clipped by every
 *       ancestor window;</li>
 *   <li>an alias continues at its target, whose offset 0 then sits at {@code origin - aliasOffset}, so the target
 *       offset is {@code aliasOffset + (a - aliasOrigin)}; both the alias's own window and the target's size limit
 *       it (the target's own {@code addr} plays no part, as in QEMU, where it is subtracted and added back);</li>
 *   <li>the subregions are tried in list order ({@link MemoryRegion#subregions()}: descending priority, the most
 *       recently added first among equals) and the first one that resolves the address wins;</li>
 *   <li>if none does, a terminating region (anything but a container or an alias) is itself the answer, at offset
 *       {@code a - origin}; a container is transparent;</li>
 *   <li>read-only, nonvolatile and unmergeable are OR-ed along the path, aliases included; a ROM is read-only by
 *       its kind.</li>
 * </ul>
 *
 * <p>The address space is rendered from {@link #flatViewRoot}, reimplemented here from QEMU's
 * {@code memory_region_get_flatview_root} rather than borrowed from the renderer. Two QEMU quirks follow from that
 * rule and are modelled on purpose: looking through a whole-target alias (or a container with one full-size child)
 * drops the flags of the skipped regions, so a read-only alias used as an address-space root gives a writable view;
 * and the region the rule lands on is placed at its own {@code addr} (QEMU's render starts with base 0 and adds
 * the root's {@code addr}), so an alias target that sits at 0x1000 in some container shows up at 0x1000.
 */
final class BruteForceResolver {
    static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);

    /** What one guest address resolves to. */
    record Hit(MemoryRegion region, long offset, boolean readonly, boolean nonvolatile, boolean unmergeable) {
        @Override
        public String toString() {
            return region.name() + "@" + U64.hex(offset) + (readonly ? " ro" : "") + (nonvolatile ? " nv" : "")
                    + (unmergeable ? " unmergeable" : "");
        }
    }

    private BruteForceResolver() {
    }

    /** What guest-physical {@code addr} resolves to in {@code as}, or null when nothing is mapped there. */
    static Hit resolve(AddressSpace as, long addr) {
        return resolveFromViewRoot(flatViewRoot(as.root()), addr);
    }

    /** What {@code addr} resolves to when {@code viewRoot} is rendered as a flat view root (null: nothing). */
    static Hit resolveFromViewRoot(MemoryRegion viewRoot, long addr) {
        if (viewRoot == null) {
            return null;
        }
        return walk(viewRoot, unsigned(viewRoot.addr()), unsigned(addr), false, false, false);
    }

    /**
     * @param origin guest address of {@code mr}'s offset 0 (may be negative or past 2^64 for alias targets)
     * @param a      the guest address, in {@code [0, 2^64)}
     */
    private static Hit walk(MemoryRegion mr, BigInteger origin, BigInteger a,
                            boolean readonly, boolean nonvolatile, boolean unmergeable) {
        if (!mr.isEnabled()) {
            return null;
        }
        BigInteger rel = a.subtract(origin);
        if (rel.signum() < 0 || rel.compareTo(size(mr.size())) >= 0) {
            return null;
        }
        readonly |= mr.isReadonly() || mr.kind() == MemoryRegion.Kind.ROM;
        nonvolatile |= mr.isNonvolatile();
        unmergeable |= mr.isUnmergeable();
        if (mr.alias() != null) {
            return walk(mr.alias(), origin.subtract(unsigned(mr.aliasOffset())), a, readonly, nonvolatile,
                    unmergeable);
        }
        for (MemoryRegion sub : mr.subregions()) {
            Hit h = walk(sub, origin.add(unsigned(sub.addr())), a, readonly, nonvolatile, unmergeable);
            if (h != null) {
                return h;
            }
        }
        if (mr.kind() != MemoryRegion.Kind.CONTAINER) {
            return new Hit(mr, rel.longValue(), readonly, nonvolatile, unmergeable);
        }
        return null;
    }

    /**
     * QEMU's flat-view root rule, written out again: while the region is enabled, step from an alias to its target
     * when the alias shows all of it from offset 0, and from a container to its only enabled child when that child
     * sits at offset 0 and fits; a container with no enabled child renders nothing (null), as does a disabled
     * region.
     */
    static MemoryRegion flatViewRoot(MemoryRegion mr) {
        while (mr != null && mr.isEnabled()) {
            if (mr.alias() != null) {
                if (mr.aliasOffset() == 0 && size(mr.size()).compareTo(size(mr.alias().size())) >= 0) {
                    mr = mr.alias();
                    continue;
                }
                return mr;
            }
            if (mr.kind() == MemoryRegion.Kind.CONTAINER) {
                MemoryRegion only = null;
                int enabled = 0;
                for (MemoryRegion child : mr.subregions()) {
                    if (child.isEnabled()) {
                        enabled++;
                        only = child;
                    }
                }
                if (enabled == 0) {
                    return null;
                }
                if (enabled == 1 && only.addr() == 0 && size(mr.size()).compareTo(size(only.size())) >= 0) {
                    mr = only;
                    continue;
                }
            }
            return mr;
        }
        return null;
    }

    /** An unsigned 64-bit value. */
    static BigInteger unsigned(long v) {
        return v >= 0 ? BigInteger.valueOf(v) : BigInteger.valueOf(v).add(TWO_64);
    }

    /** A region size under QEMU's rule: -1 is 2^64. */
    static BigInteger size(long size) {
        return size == U64.SIZE_2_64 ? TWO_64 : unsigned(size);
    }
}
