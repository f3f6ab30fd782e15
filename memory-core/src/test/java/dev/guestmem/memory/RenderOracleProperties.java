package dev.guestmem.memory;

import org.junit.jupiter.api.Test;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * Proves that rendering is right: random region trees, mutated at random inside and outside transactions, give flat
 * views that agree with {@link BruteForceResolver} at every address where anything could change, and that are
 * sorted, non-overlapping, simplified and within their regions.
 *
 * <p>Why boundary addresses suffice: between two consecutive window edges of the tree (the start and end of every
 * region along every path from the view root, aliases included) the oracle's answer is one region at offsets that
 * grow by one per address; a flat range is the same inside itself. Checking both sides of every such edge and of
 * every flat range's start and last therefore checks every address of the 2^64 space. (Edges are enumerated along
 * at most a few thousand paths per view; the summary line counts the views that hit that cap, normally none.)
 *
 * <p>System properties: {@code guestmem.oracle.trees} (default {@value #DEFAULT_TREES}) sets how many trees to try,
 * e.g. {@code -Dguestmem.oracle.trees=200000} for a long run; {@code guestmem.oracle.seed} fixes the seed. Every
 * failure names the seed of its tree: rerun it alone with {@code -Dguestmem.oracle.seed=<that seed>
 * -Dguestmem.oracle.trees=1}.
 */
class RenderOracleProperties {
    static final int DEFAULT_TREES = 10000;
    private static final long SEED_STEP = 0x9E3779B97F4A7C15L;
    private static final MemoryRegionOps OPS = MemoryRegionOps.builder().build();
    private static final BigInteger MAX_OFFSET = BruteForceResolver.TWO_64.subtract(BigInteger.ONE);

    @Test
    void flatViewsMatchTheBruteForceResolver() {
        int trees = Integer.getInteger("guestmem.oracle.trees", DEFAULT_TREES);
        long seed = Long.getLong("guestmem.oracle.seed", new Random().nextLong());
        System.out.println("RenderOracleProperties: trees=" + trees + " seed=" + seed);
        long points = 0;
        long regions = 0;
        long ranges = 0;
        long views = 0;
        long capped = 0;
        long t0 = System.nanoTime();
        for (int i = 0; i < trees; i++) {
            Case c = new Case(seed + i * SEED_STEP);
            c.run();
            points += c.points;
            regions += c.all.size();
            ranges += c.ranges;
            views += c.views;
            capped += c.capped;
        }
        System.out.printf("RenderOracleProperties: %d trees of %.1f regions on average, %d views of %.1f flat ranges"
                + " on average (%d with edges capped), %d address checks, %.1f s%n", trees,
                (double) regions / Math.max(1, trees), views, (double) ranges / Math.max(1, views), capped, points,
                (System.nanoTime() - t0) / 1e9);
    }

    /**
     * A region of 2^64 bytes seen through two aliases, its last byte and then its first byte at consecutive guest
     * addresses: the offsets do not continue each other (2^64 - 1 is followed by 0), so QEMU keeps two ranges.
     */
    @Test
    void rangesDoNotMergeAcrossTheRegionOffsetWrap() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = sys.container("root", U64.SIZE_2_64);
        MemoryRegion top = sys.io("top", U64.SIZE_2_64, OPS);
        root.addSubregion(0x100, sys.alias("last-byte", top, -1L, 1));
        root.addSubregion(0x101, sys.alias("first-bytes", top, 0, 0x10));
        AddressSpace as = sys.addressSpace("as", root);
        List<FlatRange> r = as.flatView().ranges();
        assertEquals(2, r.size(), () -> r.toString());
        assertEquals(new FlatRange(0x100, 0x100, top, -1L, 0, true, false, false, false), r.get(0));
        assertEquals(new FlatRange(0x101, 0x110, top, 0, 0, true, false, false, false), r.get(1));
        new Case(0).checkView(as, "fixed tree");
    }

    /** The flat-view root rule's quirks, which the oracle models: a read-only trivial alias root loses its flag. */
    @Test
    void readonlyWholeAliasRootGivesAWritableViewAsInQemu() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = sys.container("root", 0x1000);
        MemoryRegion ram = sys.ram("ram", 0x1000);
        root.addSubregion(0, ram);
        MemoryRegion ro = sys.alias("ro-root", root, 0, 0x1000);
        ro.setReadonly(true);
        AddressSpace as = sys.addressSpace("as", ro);
        // root -> its single full-size child: the view is ram's, and writable.
        assertSame(ram, as.flatView().root());
        assertEquals(List.of(new FlatRange(0, 0xfff, ram, 0, 0, true, false, false, false)),
                as.flatView().ranges());
        // A second child stops the container step; the alias step still drops the read-only flag.
        root.addSubregion(0x800, sys.io("io", 0x10, OPS));
        assertSame(root, as.flatView().root());
        assertEquals(false, as.flatView().lookup(0).readonly());
        // An alias that shows only part of its target is rendered itself, flag included.
        ro.setSize(0x800);
        assertSame(ro, as.flatView().root());
        assertEquals(true, as.flatView().lookup(0).readonly());
        new Case(0).checkView(as, "fixed tree");
    }

    /** The root a view is rendered from keeps its own address: an alias target mapped at 0x1000 shows up there. */
    @Test
    void viewRootKeepsItsOwnAddressAsInQemu() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion sysmem = sys.container("sysmem", U64.SIZE_2_64);
        MemoryRegion ram = sys.ram("ram", 0x100);
        sysmem.addSubregion(0x1000, ram);
        AddressSpace as = sys.addressSpace("dma", sys.alias("dma-root", ram, 0, 0x100));
        assertSame(ram, as.flatView().root());
        assertEquals(List.of(new FlatRange(0x1000, 0x10ff, ram, 0, 0, true, false, false, false)),
                as.flatView().ranges());
        new Case(0).checkView(as, "fixed tree");
    }

    /** A check that a test adds to every view check of a {@link Case}. */
    @FunctionalInterface
    interface ViewCheck {
        /**
         * @param viewRoot  the region the view is rendered from (QEMU's rule, as the oracle applies it), or null
         * @param addresses the addresses at which the view was just checked against the oracle
         */
        void check(AddressSpace as, MemoryRegion viewRoot, long[] addresses, String step);
    }

    /**
     * One random tree, its address spaces, and a series of mutations, each followed by a full check. Other
     * properties reuse it through {@link #Case(long, int[], long, ViewCheck)}.
     */
    static final class Case {
        final long seed;
        final Random rnd;
        /** Page size of each of the two address spaces. */
        final int[] pageBits;
        /**
         * Small addresses and sizes are multiples of this (give or take a byte), so that with a grain near a page
         * size the regions start, end and span pages at and around page edges. 1: plain bytes.
         */
        final long grain;
        final ViewCheck extraCheck;
        final MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        final ArrayList<MemoryRegion> all = new ArrayList<>();
        final ArrayList<AddressSpace> spaces = new ArrayList<>();
        /** When each region was last added to a container: equal priorities render the latest first. */
        final IdentityHashMap<MemoryRegion, Long> addedAt = new IdentityHashMap<>();
        final StringBuilder log = new StringBuilder();
        /** A region mapped nowhere: toggling it changes no view but makes the next commit render. */
        final MemoryRegion renderTrigger = sys.container("render-trigger", 1);
        /** A region was moved without its container being enabled (QEMU does not re-render for that). */
        boolean silentMove;
        long clock;
        int names;
        /** Bytes of the ram_addr space still free for RAM-backed regions: one machine's RAM must fit in it. */
        long ramRoom = Long.MAX_VALUE;
        long points;
        /** Flat ranges seen over all checks, and the number of views checked, for the summary. */
        long ranges;
        long views;
        /** Views whose edge enumeration hit its cap. */
        long capped;

        Case(long seed) {
            this(seed, new int[] {MemorySystem.DEFAULT_PAGE_BITS, MemorySystem.DEFAULT_PAGE_BITS}, 1, null);
        }

        /**
         * @param pageBits   the page size of address space 0 and of address space 1
         * @param grain      see {@link #grain}; with 1 the trees are exactly those of {@link #Case(long)}
         * @param extraCheck run after each view passed the oracle, or null
         */
        Case(long seed, int[] pageBits, long grain, ViewCheck extraCheck) {
            this.seed = seed;
            this.rnd = new Random(seed);
            this.pageBits = pageBits.clone();
            this.grain = grain;
            this.extraCheck = extraCheck;
        }

        void run() {
            try {
                MemoryRegion root = sys.container("root", pickRootSize());
                all.add(root);
                boolean oneTransaction = rnd.nextInt(4) == 0;
                if (oneTransaction) {
                    sys.begin();
                }
                fill(root, 0, 3 + rnd.nextInt(8));
                int aliases = rnd.nextInt(7);
                for (int i = 0; i < aliases; i++) {
                    addNewAlias();
                }
                if (rnd.nextInt(3) == 0) {
                    addSplitMapping();
                }
                if (oneTransaction) {
                    sys.commit();
                }
                MemoryRegion second = pickSecondRoot(root);
                spaces.add(sys.addressSpace("as0", root, pageBits[0]));
                spaces.add(sys.addressSpace("as1", second, pageBits[1]));
                checkAll("built");
                int rounds = 1 + rnd.nextInt(4);
                for (int r = 0; r < rounds; r++) {
                    if (rnd.nextBoolean()) {
                        FlatView[] before = currentViews();
                        sys.begin();
                        log.append("begin\n");
                        int n = 1 + rnd.nextInt(4);
                        for (int k = 0; k < n; k++) {
                            mutate();
                        }
                        FlatView[] during = currentViews();
                        for (int k = 0; k < before.length; k++) {
                            // Nothing is published before the outermost commit.
                            assertSame(before[k], during[k], "view published inside a transaction");
                        }
                        sys.commit();
                        log.append("commit\n");
                    } else {
                        mutate();
                    }
                    if (silentMove) {
                        // QEMU re-renders after a move only when the region sits in an enabled container, yet a
                        // moved flat-view root shifts its view; any real update then re-renders everything.
                        silentMove = false;
                        log.append("force a render\n");
                        sys.transaction(() -> renderTrigger.setEnabled(!renderTrigger.isEnabled()));
                    }
                    checkAll("round " + r);
                }
            } catch (AssertionError | RuntimeException e) {
                throw new AssertionError("tree seed=" + seed + " (rerun: -Dguestmem.oracle.seed=" + seed
                        + " -Dguestmem.oracle.trees=1)\n" + e.getMessage() + "\noperations:\n" + log
                        + "tree:\n" + safeTreeText(), e);
            }
        }

        private String safeTreeText() {
            try {
                StringBuilder sb = new StringBuilder(TreeText.of(sys));
                for (AddressSpace as : spaces) {
                    sb.append("view of ").append(as.name()).append(":\n");
                    as.flatView().ranges().forEach(r -> sb.append("  ").append(r).append('\n'));
                }
                return sb.toString();
            } catch (RuntimeException e) {
                return "(tree text failed: " + e + ")";
            }
        }

        private FlatView[] currentViews() {
            FlatView[] v = new FlatView[spaces.size()];
            for (int i = 0; i < v.length; i++) {
                v[i] = spaces.get(i).flatView();
            }
            return v;
        }

        // ------------------------------------------------------------ generation

        private String name(String kind) {
            return kind + (names++);
        }

        /** Offsets and sizes are small most of the time (so regions overlap and touch), else near 2^63 or 2^64. */
        private long pickAddr(long parentSize) {
            int k = rnd.nextInt(20);
            if (k < 16) {
                BigInteger ps = BruteForceResolver.size(parentSize);
                long bound = ps.compareTo(BigInteger.valueOf(0x100)) < 0 ? Math.max(1, ps.longValue()) : 0x100;
                if (grain > 1) {
                    BigInteger units = ps.divide(BigInteger.valueOf(grain));
                    return scaled(rnd.nextLong(units.compareTo(BigInteger.valueOf(0x100)) < 0
                            ? Math.max(1, units.longValue()) : 0x100));
                }
                return rnd.nextLong(bound);
            } else if (k < 18) {
                // at or just before the end of the parent (of the whole space for a 2^64 parent), or past it
                return parentSize + 1 - rnd.nextInt(0x20);
            } else if (k < 19) {
                return Long.MIN_VALUE - 0x10 + rnd.nextInt(0x20);
            }
            return rnd.nextLong();
        }

        private long pickSize(boolean ramBacked) {
            int k = rnd.nextInt(24);
            if (k < 19) {
                return scaled(1 + rnd.nextInt(rnd.nextBoolean() ? 0x10 : 0x40));
            } else if (k < 20) {
                return ramBacked ? Long.MAX_VALUE - rnd.nextInt(4) : U64.SIZE_2_64;
            } else if (k < 21) {
                return ramBacked ? 1L << 62 : -rnd.nextInt(0x20) - 1; // 2^64 - small (or 2^64 itself)
            } else if (k < 23) {
                return ramBacked ? scaled(0x40 + rnd.nextInt(0x100)) : Long.MIN_VALUE + rnd.nextInt(3) - 1;
            }
            return ramBacked ? 1 + (rnd.nextLong() >>> 1) % Long.MAX_VALUE : rnd.nextLong();
        }

        /**
         * A RAM-backed size as {@link #pickSize} draws it, made small (without drawing more, so trees that fit stay as
         * they were) once the regions near 2^63 have taken the ram_addr space.
         */
        private long pickRamSize() {
            long size = pickSize(true);
            if (size > ramRoom) {
                size = grain * (1 + (size & 0xf));
            }
            ramRoom -= size;
            return size;
        }

        /** {@code units} grains, one byte more or less a quarter of the time each; {@code units} itself for grain 1. */
        private long scaled(long units) {
            if (grain == 1) {
                return units; // draws nothing, so grain 1 gives the same trees as ever
            }
            long v = units * grain;
            return switch (rnd.nextInt(4)) {
                case 0 -> v == 0 ? v : v - 1;
                case 1 -> v + 1;
                default -> v;
            };
        }

        private long pickRootSize() {
            return switch (rnd.nextInt(10)) {
                case 0, 1, 2, 3, 4, 5 -> U64.SIZE_2_64;
                case 6, 7 -> scaled(0x40 + rnd.nextInt(0x80));
                case 8 -> 0;
                default -> pickSize(false);
            };
        }

        private int pickPriority() {
            int k = rnd.nextInt(10);
            if (k < 7) {
                return rnd.nextInt(3) - 1; // many equal priorities
            }
            return k < 9 ? rnd.nextInt(11) - 5 : (rnd.nextBoolean() ? Integer.MIN_VALUE : Integer.MAX_VALUE);
        }

        private void randomFlags(MemoryRegion mr) {
            if (rnd.nextInt(10) == 0) {
                mr.setReadonly(true);
            }
            if (rnd.nextInt(10) == 0) {
                mr.setNonvolatile(true);
            }
            if (rnd.nextInt(14) == 0) {
                mr.setUnmergeable(true);
            }
            if (rnd.nextInt(10) == 0) {
                mr.setEnabled(false);
            }
        }

        /** A new region that is not an alias; containers and (sometimes) leaves get children. */
        private MemoryRegion newRegion(int depth) {
            int k = rnd.nextInt(depth < 3 ? 10 : 7);
            MemoryRegion mr = switch (k) {
                case 0, 1 -> sys.ram(name("ram"), pickRamSize());
                case 2 -> sys.rom(name("rom"), pickRamSize());
                case 3, 4 -> sys.io(name("io"), pickSize(false), OPS);
                case 5 -> sys.romDevice(name("romd"), pickRamSize(), OPS);
                case 6 -> sys.reservation(name("resv"), pickSize(false));
                default -> sys.container(name("c"), rnd.nextInt(8) == 0 ? 0 : pickSize(false));
            };
            all.add(mr);
            randomFlags(mr);
            if (mr.kind() == MemoryRegion.Kind.ROM_DEVICE && rnd.nextInt(3) == 0) {
                mr.setRomd(false);
            }
            if (depth < 3 && (mr.kind() == MemoryRegion.Kind.CONTAINER || rnd.nextInt(8) == 0)) {
                fill(mr, depth + 1, 1 + rnd.nextInt(4));
            }
            return mr;
        }

        private void fill(MemoryRegion parent, int depth, int children) {
            for (int i = 0; i < children; i++) {
                MemoryRegion child = rnd.nextInt(6) == 0 && all.size() > 1 ? newAlias(depth) : newRegion(depth);
                tryAdd(parent, pickAddr(parent.size()), child, pickPriority());
            }
        }

        /** An alias of a random region (mapped or not), or of a new subtree mapped nowhere else. */
        private MemoryRegion newAlias(int depth) {
            MemoryRegion target = rnd.nextInt(3) == 0 || all.isEmpty() ? newRegion(Math.max(depth, 1))
                    : all.get(rnd.nextInt(all.size()));
            BigInteger ts = BruteForceResolver.size(target.size());
            BigInteger offset = rnd.nextInt(4) == 0 ? BigInteger.ZERO : pickUpTo(ts).min(MAX_OFFSET);
            BigInteger room = ts.subtract(offset);
            BigInteger size = rnd.nextInt(3) == 0 ? room : pickUpTo(room);
            MemoryRegion a = sys.alias(name("a"), target, offset.longValue(), toSize(size));
            log.append("alias ").append(a.name()).append(" -> ").append(target.name()).append(" off=")
                    .append(U64.hex(a.aliasOffset())).append(" size=").append(U64.sizeHex(a.size())).append('\n');
            all.add(a);
            randomFlags(a);
            return a;
        }

        private void addNewAlias() {
            MemoryRegion a = newAlias(1);
            MemoryRegion parent = pickParent();
            tryAdd(parent, pickAddr(parent.size()), a, pickPriority());
        }

        /**
         * One region shown through consecutive aliases of consecutive windows (as a PC's RAM through lomem and
         * himem, or a BAR in pieces): the pieces continue each other, so the view must merge them unless a flag
         * differs or one is unmergeable.
         */
        private void addSplitMapping() {
            MemoryRegion target = rnd.nextBoolean() ? newRegion(1) : all.get(rnd.nextInt(all.size()));
            MemoryRegion parent = pickParent();
            BigInteger ts = BruteForceResolver.size(target.size());
            BigInteger offset = rnd.nextBoolean() ? BigInteger.ZERO : pickUpTo(ts).min(MAX_OFFSET);
            long at = pickAddr(parent.size());
            int pieces = 2 + rnd.nextInt(3);
            log.append("split mapping of ").append(target.name()).append('\n');
            for (int i = 0; i < pieces; i++) {
                BigInteger room = ts.subtract(offset);
                BigInteger size = room.min(BigInteger.valueOf(1 + rnd.nextInt(0x10)));
                if (i == pieces - 1 && rnd.nextInt(4) == 0) {
                    size = room;
                }
                MemoryRegion a = sys.alias(name("piece"), target, offset.min(MAX_OFFSET).longValue(), toSize(size));
                all.add(a);
                if (rnd.nextInt(5) == 0) {
                    a.setUnmergeable(true);
                }
                if (rnd.nextInt(6) == 0) {
                    a.setReadonly(true);
                }
                if (rnd.nextInt(6) == 0) {
                    a.setNonvolatile(true);
                }
                tryAdd(parent, at, a, pickPriority());
                offset = offset.add(size);
                BigInteger next = BruteForceResolver.unsigned(at).add(size);
                if (offset.compareTo(ts) >= 0 || next.compareTo(MAX_OFFSET) > 0) {
                    return;
                }
                at = next.longValue();
            }
        }

        /** A value in {@code [0, bound]}, often 0-ish or at the bound. */
        private BigInteger pickUpTo(BigInteger bound) {
            if (bound.signum() <= 0) {
                return BigInteger.ZERO;
            }
            int k = rnd.nextInt(6);
            if (k < 3 && bound.compareTo(BigInteger.valueOf(0x40)) > 0) {
                return BigInteger.valueOf(rnd.nextInt(0x40));
            } else if (k < 4) {
                return bound.subtract(BigInteger.valueOf(rnd.nextInt(4))).max(BigInteger.ZERO);
            }
            return new BigInteger(66, rnd).mod(bound.add(BigInteger.ONE));
        }

        /**
         * A byte count as a size value: 2^64 is -1, and 2^64 - 1, which QEMU's rule cannot express (-1 means
         * 2^64), becomes 2^64 - 2.
         */
        private static long toSize(BigInteger v) {
            if (v.equals(BruteForceResolver.TWO_64)) {
                return U64.SIZE_2_64;
            }
            return v.equals(MAX_OFFSET) ? -2L : v.longValue();
        }

        private MemoryRegion pickParent() {
            while (true) {
                MemoryRegion p = all.get(rnd.nextInt(all.size()));
                if (p.alias() == null && (p.kind() == MemoryRegion.Kind.CONTAINER || rnd.nextInt(4) == 0)) {
                    return p;
                }
            }
        }

        /** The second address space's root: a trivial alias, a wrapping container, or any region. */
        private MemoryRegion pickSecondRoot(MemoryRegion root) {
            int k = rnd.nextInt(10);
            MemoryRegion r;
            if (k < 3) {
                r = sys.alias(name("asroot"), root, 0, root.size());
                all.add(r);
                randomFlags(r);
                if (rnd.nextBoolean()) {
                    MemoryRegion wrap = sys.container(name("wrap"), rnd.nextBoolean() ? U64.SIZE_2_64 : root.size());
                    all.add(wrap);
                    randomFlags(wrap);
                    tryAdd(wrap, 0, r, pickPriority());
                    r = wrap;
                }
            } else {
                r = all.get(rnd.nextInt(all.size()));
            }
            if (r.container() == null && rnd.nextInt(3) == 0) {
                r.setAddress(pickAddr(U64.SIZE_2_64));
            }
            log.append("as1 root=").append(r.name()).append('\n');
            return r;
        }

        // ------------------------------------------------------------ mutation

        /** Adds {@code child} to {@code parent} and checks that the add was refused exactly when it had to be. */
        private boolean tryAdd(MemoryRegion parent, long addr, MemoryRegion child, int priority) {
            boolean mustRefuse = child.container() != null || parent.alias() != null || reaches(child, parent);
            List<MemoryRegion> subsBefore = parent.subregions();
            MemoryRegion containerBefore = child.container();
            log.append("add ").append(child.name()).append(" to ").append(parent.name()).append(" at ")
                    .append(U64.hex(addr)).append(" prio ").append(priority);
            try {
                parent.addSubregionOverlap(addr, child, priority);
            } catch (IllegalArgumentException e) {
                log.append(" refused\n");
                if (!mustRefuse) {
                    throw new AssertionError("refused a valid add: " + e.getMessage(), e);
                }
                assertEquals(subsBefore, parent.subregions(), "a refused add changed the container");
                assertSame(containerBefore, child.container(), "a refused add moved the child");
                return false;
            }
            log.append('\n');
            if (mustRefuse) {
                throw new AssertionError("accepted an add that makes a cycle or maps a region twice: "
                        + child.name() + " into " + parent.name());
            }
            addedAt.put(child, ++clock);
            return true;
        }

        /** Whether {@code to} can be reached from {@code from} along subregion and alias edges (or is it). */
        private static boolean reaches(MemoryRegion from, MemoryRegion to) {
            return reaches(from, to, new IdentityHashMap<>());
        }

        private static boolean reaches(MemoryRegion from, MemoryRegion to,
                                       IdentityHashMap<MemoryRegion, Boolean> seen) {
            if (from == to) {
                return true;
            }
            if (seen.put(from, Boolean.TRUE) != null) {
                return false;
            }
            if (from.alias() != null && reaches(from.alias(), to, seen)) {
                return true;
            }
            for (MemoryRegion s : from.subregions()) {
                if (reaches(s, to, seen)) {
                    return true;
                }
            }
            return false;
        }

        private MemoryRegion pick() {
            return all.get(rnd.nextInt(all.size()));
        }

        private MemoryRegion pickMapped() {
            for (int i = 0; i < 8; i++) {
                MemoryRegion r = pick();
                if (r.container() != null) {
                    return r;
                }
            }
            return null;
        }

        private void mutate() {
            MemoryRegion r = pick();
            switch (rnd.nextInt(13)) {
                case 0, 1 -> {
                    MemoryRegion m = pickMapped();
                    if (m != null) {
                        r = m;
                    }
                    long addr = r.container() == null ? 0 : pickAddr(r.container().size());
                    log.append("setAddress ").append(r.name()).append(' ').append(U64.hex(addr)).append('\n');
                    if (r.container() == null) {
                        return; // see silentMove: not re-rendered by QEMU, and nothing to re-add
                    }
                    boolean readd = r.addr() != addr;
                    noteMove(r, r.container());
                    r.setAddress(addr);
                    assertEquals(addr, r.addr());
                    if (readd) {
                        addedAt.put(r, ++clock); // moved regions are re-added, as in QEMU
                    }
                }
                case 2, 3 -> {
                    log.append("setEnabled ").append(r.name()).append(' ').append(!r.isEnabled()).append('\n');
                    r.setEnabled(!r.isEnabled());
                }
                case 4 -> mutateSize(r);
                case 5 -> mutateAliasOffset();
                case 6, 7 -> {
                    MemoryRegion m = pickMapped();
                    if (m == null) {
                        return;
                    }
                    MemoryRegion c = m.container();
                    log.append("del ").append(m.name()).append(" from ").append(c.name()).append('\n');
                    noteMove(m, c);
                    c.delSubregion(m);
                    if (rnd.nextInt(5) > 0) {
                        MemoryRegion p = rnd.nextBoolean() ? c : pickParent();
                        long addr = rnd.nextBoolean() ? m.addr() : pickAddr(p.size());
                        noteMove(m, p);
                        tryAdd(p, addr, m, pickPriority());
                    }
                }
                case 8 -> {
                    if (r.container() == null) {
                        MemoryRegion p = pickParent();
                        noteMove(r, p);
                        tryAdd(p, pickAddr(p.size()), r, pickPriority());
                    }
                }
                case 9 -> {
                    int f = rnd.nextInt(3);
                    log.append("flag").append(f).append(' ').append(r.name()).append('\n');
                    switch (f) {
                        case 0 -> r.setReadonly(!r.isReadonly());
                        case 1 -> r.setNonvolatile(!r.isNonvolatile());
                        default -> r.setUnmergeable(!r.isUnmergeable());
                    }
                }
                case 10 -> {
                    if (r.kind() == MemoryRegion.Kind.ROM_DEVICE) {
                        log.append("setRomd ").append(r.name()).append(' ').append(!r.isRomdMode()).append('\n');
                        r.setRomd(!r.isRomdMode());
                    }
                }
                case 11 -> addNewAlias();
                default -> {
                    MemoryRegion p = pickParent();
                    tryAdd(p, pickAddr(p.size()), newRegion(1), pickPriority());
                }
            }
        }

        /** Records a move of {@code r} in or out of {@code container} that QEMU would not re-render. */
        private void noteMove(MemoryRegion r, MemoryRegion container) {
            if (!container.isEnabled() || !r.isEnabled()) {
                silentMove = true;
            }
        }

        private void mutateSize(MemoryRegion r) {
            long size;
            boolean valid;
            if (r.alias() != null) {
                BigInteger room = BruteForceResolver.size(r.alias().size())
                        .subtract(BruteForceResolver.unsigned(r.aliasOffset()));
                if (room.signum() < 0) {
                    return; // the target shrank under the alias; QEMU allows that and clips
                }
                size = toSize(rnd.nextInt(4) == 0 ? room.add(BigInteger.ONE).min(BruteForceResolver.TWO_64)
                        : pickUpTo(room));
                valid = BruteForceResolver.size(size).compareTo(room) <= 0;
            } else if (r.ramBlock() != null) {
                long max = r.ramBlock().maxLength();
                int k = rnd.nextInt(5);
                size = k == 0 ? max + 1 : k == 1 ? 0 : 1 + rnd.nextLong(max);
                valid = k > 1;
            } else {
                size = rnd.nextInt(8) == 0 ? 0 : pickSize(false);
                valid = true;
            }
            long before = r.size();
            log.append("setSize ").append(r.name()).append(' ').append(U64.sizeHex(size)).append('\n');
            try {
                r.setSize(size);
            } catch (IllegalArgumentException e) {
                log.append(" refused\n");
                if (valid) {
                    throw new AssertionError("refused a valid setSize: " + e.getMessage(), e);
                }
                assertEquals(before, r.size(), "a refused setSize changed the size");
                return;
            }
            if (!valid && before != size) {
                throw new AssertionError("accepted setSize " + U64.sizeHex(size) + " of " + r);
            }
            assertEquals(size, r.size());
        }

        private void mutateAliasOffset() {
            MemoryRegion a = null;
            for (int i = 0; i < 8 && a == null; i++) {
                MemoryRegion r = pick();
                if (r.alias() != null) {
                    a = r;
                }
            }
            if (a == null) {
                return;
            }
            BigInteger room = BruteForceResolver.size(a.alias().size()).subtract(BruteForceResolver.size(a.size()));
            long offset = pickUpTo(room.add(BigInteger.valueOf(rnd.nextInt(3)))).min(MAX_OFFSET).longValue();
            boolean valid = BruteForceResolver.unsigned(offset).compareTo(room) <= 0;
            long before = a.aliasOffset();
            log.append("setAliasOffset ").append(a.name()).append(' ').append(U64.hex(offset)).append('\n');
            try {
                a.setAliasOffset(offset);
            } catch (IllegalArgumentException e) {
                log.append(" refused\n");
                if (valid) {
                    throw new AssertionError("refused a valid setAliasOffset: " + e.getMessage(), e);
                }
                assertEquals(before, a.aliasOffset(), "a refused setAliasOffset changed the offset");
                return;
            }
            if (!valid && before != offset) {
                throw new AssertionError("accepted setAliasOffset " + U64.hex(offset) + " of " + a);
            }
        }

        // ------------------------------------------------------------ checking

        void checkAll(String step) {
            for (MemoryRegion mr : all) {
                checkSubregionOrder(mr);
            }
            for (AddressSpace as : spaces) {
                checkView(as, step);
            }
        }

        /** Descending priority, and among equal priorities the most recently added first. */
        private void checkSubregionOrder(MemoryRegion mr) {
            List<MemoryRegion> subs = mr.subregions();
            for (int i = 1; i < subs.size(); i++) {
                MemoryRegion x = subs.get(i - 1);
                MemoryRegion y = subs.get(i);
                boolean ok = x.priority() > y.priority()
                        || (x.priority() == y.priority() && addedAt.get(x) > addedAt.get(y));
                if (!ok) {
                    throw new AssertionError("subregions of " + mr.name() + " out of order: " + x + " prio "
                            + x.priority() + " before " + y + " prio " + y.priority());
                }
            }
        }

        void checkView(AddressSpace as, String step) {
            FlatView view = as.flatView();
            MemoryRegion viewRoot = BruteForceResolver.flatViewRoot(as.root());
            if (view.root() != viewRoot) {
                throw new AssertionError(step + " " + as.name() + ": view root " + view.root() + ", QEMU's rule gives "
                        + viewRoot);
            }
            List<FlatRange> ranges = view.ranges();
            checkInvariants(as, step, ranges);

            long[] addrs = boundaryAddresses(viewRoot, ranges);
            for (long a : addrs) {
                BruteForceResolver.Hit want = BruteForceResolver.resolveFromViewRoot(viewRoot, a);
                FlatRange got = view.lookup(a);
                if (!agrees(want, got, a)) {
                    throw new AssertionError(step + " " + as.name() + " addr=" + U64.hex(a) + ": oracle says "
                            + want + ", view has " + got + "\nview: " + ranges);
                }
            }
            if (extraCheck != null) {
                extraCheck.check(as, viewRoot, addrs, step);
            }
            points += addrs.length;
            this.ranges += ranges.size();
            views++;
        }

        private static boolean agrees(BruteForceResolver.Hit want, FlatRange got, long a) {
            if (want == null || got == null) {
                return want == null && got == null;
            }
            MemoryRegion mr = want.region();
            return got.region() == mr
                    && got.offsetInRegion() + (a - got.start()) == want.offset()
                    && got.readonly() == want.readonly()
                    && got.nonvolatile() == want.nonvolatile()
                    && got.unmergeable() == want.unmergeable()
                    && got.romdMode() == mr.isRomdMode()
                    && got.dirtyLogMask() == mr.dirtyLogMask();
        }

        private static void checkInvariants(AddressSpace as, String step, List<FlatRange> ranges) {
            for (int i = 0; i < ranges.size(); i++) {
                FlatRange r = ranges.get(i);
                String where = step + " " + as.name() + " range " + i + " " + r + ": ";
                if (U64.lt(r.last(), r.start())) {
                    throw new AssertionError(where + "last before start");
                }
                MemoryRegion mr = r.region();
                if (mr.kind() == MemoryRegion.Kind.CONTAINER || mr.kind() == MemoryRegion.Kind.ALIAS) {
                    throw new AssertionError(where + "a range of a non-terminating region");
                }
                // The range maps consecutive offsets of its region, all inside it.
                BigInteger lastOffset = BruteForceResolver.unsigned(r.offsetInRegion())
                        .add(BruteForceResolver.unsigned(r.last() - r.start()));
                if (lastOffset.compareTo(BruteForceResolver.size(mr.size())) >= 0) {
                    throw new AssertionError(where + "offsets run past the region (last offset 0x"
                            + lastOffset.toString(16) + ", size " + U64.sizeHex(mr.size()) + ")");
                }
                if (i > 0) {
                    FlatRange p = ranges.get(i - 1);
                    if (!U64.lt(p.last(), r.start())) {
                        throw new AssertionError(where + "overlaps or precedes range " + (i - 1) + " " + p);
                    }
                    if (qemuCanMerge(p, r)) {
                        throw new AssertionError(where + "not simplified: QEMU merges it with " + p);
                    }
                }
            }
        }

        /** QEMU's {@code can_merge}, in exact arithmetic. */
        private static boolean qemuCanMerge(FlatRange a, FlatRange b) {
            BigInteger aEnd = BruteForceResolver.unsigned(a.last()).add(BigInteger.ONE);
            BigInteger aOffEnd = BruteForceResolver.unsigned(a.offsetInRegion())
                    .add(BruteForceResolver.unsigned(a.last() - a.start())).add(BigInteger.ONE);
            return aEnd.equals(BruteForceResolver.unsigned(b.start()))
                    && a.region() == b.region()
                    && aOffEnd.equals(BruteForceResolver.unsigned(b.offsetInRegion()))
                    && a.dirtyLogMask() == b.dirtyLogMask()
                    && a.romdMode() == b.romdMode()
                    && a.readonly() == b.readonly()
                    && a.nonvolatile() == b.nonvolatile()
                    && !a.unmergeable() && !b.unmergeable();
        }

        /**
         * 0, 2^64 - 1, both sides of every window edge met on a walk from the view root (through aliases too), and
         * of every flat range's start and end, plus a few random addresses.
         */
        private long[] boundaryAddresses(MemoryRegion viewRoot, List<FlatRange> ranges) {
            LongSet s = new LongSet();
            s.add(0);
            s.add(-1L);
            for (FlatRange r : ranges) {
                s.around(BruteForceResolver.unsigned(r.start()));
                s.around(BruteForceResolver.unsigned(r.last()).add(BigInteger.ONE));
            }
            if (viewRoot != null) {
                int[] budget = {4000};
                collectEdges(viewRoot, BruteForceResolver.unsigned(viewRoot.addr()), s, budget);
                if (budget[0] < 0) {
                    capped++;
                }
            }
            for (int i = 0; i < 4; i++) {
                s.add(rnd.nextInt(3) == 0 ? rnd.nextLong() : rnd.nextInt(0x100));
            }
            return s.toArray();
        }

        private static void collectEdges(MemoryRegion mr, BigInteger origin, LongSet s, int[] budget) {
            if (!mr.isEnabled() || --budget[0] < 0) {
                return;
            }
            BigInteger end = origin.add(BruteForceResolver.size(mr.size()));
            if (end.signum() <= 0 || origin.compareTo(BruteForceResolver.TWO_64) >= 0) {
                return; // the window misses the address space entirely
            }
            s.around(origin);
            s.around(end);
            if (mr.alias() != null) {
                collectEdges(mr.alias(), origin.subtract(BruteForceResolver.unsigned(mr.aliasOffset())), s, budget);
                return;
            }
            for (MemoryRegion sub : mr.subregions()) {
                collectEdges(sub, origin.add(BruteForceResolver.unsigned(sub.addr())), s, budget);
            }
        }
    }

    /** A small set of unsigned 64-bit addresses. */
    private static final class LongSet {
        private long[] a = new long[64];
        private int n;

        void add(long v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, n * 2);
            }
            a[n++] = v;
        }

        /** Adds {@code edge - 1}, {@code edge} and {@code edge + 1}, those of them inside {@code [0, 2^64)}. */
        void around(BigInteger edge) {
            for (int d = -1; d <= 1; d++) {
                BigInteger v = edge.add(BigInteger.valueOf(d));
                if (v.signum() >= 0 && v.compareTo(BruteForceResolver.TWO_64) < 0) {
                    add(v.longValue());
                }
            }
        }

        long[] toArray() {
            long[] r = Arrays.copyOf(a, n);
            Arrays.sort(r);
            int m = 0;
            for (int i = 0; i < r.length; i++) {
                if (i == 0 || r[i] != r[i - 1]) {
                    r[m++] = r[i];
                }
            }
            return Arrays.copyOf(r, m);
        }
    }
}
