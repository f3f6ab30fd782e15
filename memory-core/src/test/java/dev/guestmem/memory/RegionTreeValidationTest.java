package dev.guestmem.memory;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the region tree refuses, and how it answers queries.
 *
 * <p>Refusals: every bad argument (an alias window outside its target, at construction or through
 * {@code setAliasOffset}/{@code setSize}; a region mapped twice; a region added to itself; a cycle through
 * containers or through an alias; RAM of size 0; romd mode on something that is not a ROM device; removing a region
 * that is not a subregion; commit without begin) throws at once, inside a transaction too, with a {@code key=value}
 * message naming the bad value, and leaves the tree ({@link TreeText}: every region's place, flags and subregions)
 * and every published view exactly as they were.
 *
 * <p>Queries, as QEMU's: {@code find} takes an address relative to the region, walks up the containers to an
 * address-space root and returns the lowest-addressed intersecting section clipped to the range (null when the top
 * is not an address-space root or nothing intersects); {@code present} is true when something other than the region
 * itself is there; {@code isMapped} is true in a container or as the target (direct or through aliases of aliases)
 * of an alias that is; and {@code setAddress} re-adds the region, so among equal priorities it becomes the most
 * recently added.
 */
class RegionTreeValidationTest {
    private static final MemoryRegionOps OPS = MemoryRegionOps.builder().build();

    private MemorySystem sys;
    private MemoryRegion root;
    private MemoryRegion ram;
    private MemoryRegion dev;
    private AddressSpace as;

    @BeforeEach
    void setUp() {
        sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        root = sys.container("root", U64.SIZE_2_64);
        ram = sys.ram("ram", 0x1000);
        dev = sys.io("dev", 0x100, OPS);
        root.addSubregion(0, ram);
        root.addSubregion(0x2000, dev);
        as = sys.addressSpace("as", root);
    }

    /**
     * Runs {@code bad}, expects {@code type} with every fragment in its message, and checks that neither the tree nor
     * any published view changed.
     */
    private <T extends Throwable> T assertRefused(Class<T> type, Executable bad, String... fragments) {
        String treeBefore = TreeText.of(sys);
        List<FlatView> viewsBefore = sys.addressSpaces().stream().map(AddressSpace::flatView).toList();
        T e = assertThrows(type, bad);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), () -> "message lacks '" + f + "': " + e.getMessage());
        }
        assertEquals(treeBefore, TreeText.of(sys), "a refused call changed the tree");
        List<FlatView> viewsAfter = sys.addressSpaces().stream().map(AddressSpace::flatView).toList();
        assertEquals(viewsBefore.size(), viewsAfter.size());
        for (int i = 0; i < viewsBefore.size(); i++) {
            assertSame(viewsBefore.get(i), viewsAfter.get(i), "a refused call published a view");
        }
        assertFalse(sys.inTransaction(), "a refused call left a transaction open");
        return e;
    }

    // ---------------------------------------------------------------- alias windows

    @Test
    void aliasWindowMustLieInsideItsTarget() {
        assertRefused(IllegalArgumentException.class, () -> sys.alias("a", ram, 0x800, 0x801),
                "region=a", "offset=0x800", "size=0x801", "targetSize=0x1000");
        assertRefused(IllegalArgumentException.class, () -> sys.alias("a", ram, 0x1001, 0),
                "offset=0x1001");
        // At the 2^64 edge: a 2^64-byte target admits its last byte, and no window of 2^64 bytes but at offset 0.
        MemoryRegion whole = sys.io("whole", U64.SIZE_2_64, OPS);
        assertEquals(-1L, sys.alias("top-byte", whole, -1L, 1).aliasOffset());
        assertEquals(U64.SIZE_2_64, sys.alias("all", whole, 0, U64.SIZE_2_64).size());
        assertRefused(IllegalArgumentException.class, () -> sys.alias("a", whole, 1, U64.SIZE_2_64),
                "offset=0x1", "size=0x10000000000000000");
        assertRefused(IllegalArgumentException.class, () -> sys.alias("a", whole, -1L, 2),
                "offset=0xffffffffffffffff", "size=0x2");
    }

    @Test
    void setAliasOffsetAndSetSizeKeepTheWindowInside() {
        MemoryRegion a = sys.alias("a", ram, 0x100, 0x800);
        root.addSubregion(0x8000, a);
        assertRefused(IllegalArgumentException.class, () -> a.setAliasOffset(0x801),
                "region=a", "offset=0x801", "size=0x800", "targetSize=0x1000");
        assertEquals(0x100, a.aliasOffset());
        assertRefused(IllegalArgumentException.class, () -> a.setSize(0xf01),
                "region=a", "offset=0x100", "size=0xf01", "targetSize=0x1000");
        assertEquals(0x800, a.size());
        assertRefused(IllegalArgumentException.class, () -> dev.setAliasOffset(0), "region=dev", "kind=io");
        // The window may reach the target's end exactly.
        a.setAliasOffset(0x800);
        a.setSize(0x800);
        assertEquals(new FlatRange(0x8000, 0x87ff, ram, 0x800, 0, true, false, false, false),
                as.flatView().lookup(0x8000));
    }

    // ---------------------------------------------------------------- tree shape

    @Test
    void regionCannotBeInTwoContainers() {
        MemoryRegion other = sys.container("other", 0x10000);
        root.addSubregion(0x100000, other);
        assertRefused(IllegalArgumentException.class, () -> other.addSubregion(0, ram),
                "container=other", "subregion=ram", "container=root");
        assertSame(root, ram.container());
        assertTrue(other.subregions().isEmpty());
    }

    @Test
    void regionCannotBeAddedToItself() {
        assertRefused(IllegalArgumentException.class, () -> root.addSubregion(0, root),
                "container=root", "subregion=root", "cycle");
        MemoryRegion leaf = sys.io("leaf", 0x10, OPS);
        assertRefused(IllegalArgumentException.class, () -> leaf.addSubregionOverlap(0, leaf, 3),
                "container=leaf", "subregion=leaf");
    }

    @Test
    void cycleThroughContainersIsRefused() {
        MemoryRegion c1 = sys.container("c1", 0x1000);
        MemoryRegion c2 = sys.container("c2", 0x1000);
        MemoryRegion c3 = sys.container("c3", 0x1000);
        c1.addSubregion(0, c2);
        c2.addSubregion(0, c3);
        assertRefused(IllegalArgumentException.class, () -> c3.addSubregion(0x10, c1),
                "container=c3", "subregion=c1", "cycle");
        // Through the address-space root as well, once c1 is mapped in it.
        root.addSubregion(0x100000, c1);
        assertRefused(IllegalArgumentException.class, () -> c3.addSubregion(0, root),
                "container=c3", "subregion=root", "cycle");
    }

    @Test
    void cycleThroughAnAliasIsRefused() {
        MemoryRegion c = sys.container("c", 0x1000);
        MemoryRegion child = sys.container("child", 0x100);
        MemoryRegion leaf = sys.io("leaf", 0x10, OPS);
        child.addSubregion(0, leaf);
        c.addSubregion(0x100, child);
        root.addSubregion(0x10000, c);
        MemoryRegion a = sys.alias("a", c, 0, 0x1000);
        MemoryRegion aa = sys.alias("aa", a, 0x100, 0x10);
        assertRefused(IllegalArgumentException.class, () -> c.addSubregion(0x800, a),
                "container=c", "subregion=a", "cycle");
        assertRefused(IllegalArgumentException.class, () -> child.addSubregion(0, aa),
                "container=child", "subregion=aa", "cycle");
        // The same aliases are fine anywhere outside c.
        root.addSubregion(0x20000, a);
        root.addSubregion(0x30000, aa);
        assertSame(leaf, as.flatView().lookup(0x20100).region());
        assertSame(leaf, as.flatView().lookup(0x30000).region());
    }

    @Test
    void ramRegionsNeedAtLeastOneByte() {
        assertRefused(IllegalArgumentException.class, () -> sys.ram("r0", 0), "region=r0", "size=0");
        assertRefused(IllegalArgumentException.class, () -> sys.rom("rom0", 0), "region=rom0", "size=0");
        assertRefused(IllegalArgumentException.class, () -> sys.romDevice("rd0", 0, OPS), "region=rd0", "size=0");
        assertRefused(IllegalArgumentException.class, () -> ram.setSize(0), "region=ram", "size=0");
        assertRefused(IllegalArgumentException.class, () -> ram.setSize(0x1001), "region=ram", "size=0x1001");
        assertEquals(0x1000, ram.size());
        // Containers and I/O regions may be empty.
        assertEquals(0, sys.container("empty", 0).size());
        assertEquals(0, sys.io("empty-io", 0, OPS).size());
    }

    @Test
    void romdModeBelongsToRomDevicesOnly() {
        assertRefused(IllegalArgumentException.class, () -> ram.setRomd(false), "region=ram", "kind=ram");
        assertRefused(IllegalArgumentException.class, () -> dev.setRomd(false), "region=dev", "kind=io");
        MemoryRegion flash = sys.romDevice("flash", 0x100, OPS);
        root.addSubregion(0x4000, flash);
        flash.setRomd(false);
        assertFalse(as.flatView().lookup(0x4000).romdMode());
    }

    @Test
    void delSubregionOfANonChildIsRefused() {
        MemoryRegion loose = sys.io("loose", 0x10, OPS);
        assertRefused(IllegalArgumentException.class, () -> root.delSubregion(loose),
                "container=root", "subregion=loose");
        MemoryRegion other = sys.container("other", 0x100);
        assertRefused(IllegalArgumentException.class, () -> other.delSubregion(ram),
                "container=other", "subregion=ram", "container=root");
        assertSame(root, ram.container());
    }

    @Test
    void commitWithoutBeginIsRefused() {
        assertRefused(IllegalStateException.class, sys::commit, "commit without begin", "thread=");
        // Nested transactions: the extra commit is refused too, after the outermost one has published.
        sys.begin();
        sys.begin();
        root.delSubregion(dev);
        sys.commit();
        assertNotNull(as.flatView().lookup(0x2000), "published before the outermost commit");
        sys.commit();
        assertNull(as.flatView().lookup(0x2000));
        assertRefused(IllegalStateException.class, sys::commit, "commit without begin");
        // And the system still works.
        root.addSubregion(0x2000, dev);
        assertSame(dev, as.flatView().lookup(0x2000).region());
    }

    @Test
    void refusalsInsideATransactionAreImmediate() {
        sys.begin();
        try {
            root.delSubregion(dev);
            MemoryRegion other = sys.container("other", 0x100);
            // Thrown at the call, not deferred to commit; the transaction stays open and usable.
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> other.addSubregion(0, ram));
            assertTrue(e.getMessage().contains("subregion=ram"), e.getMessage());
            assertTrue(sys.inTransaction());
            assertSame(dev, as.flatView().lookup(0x2000).region(), "published inside the transaction");
        } finally {
            sys.commit();
        }
        assertNull(as.flatView().lookup(0x2000));
        assertSame(ram, as.flatView().lookup(0).region());
    }

    // ---------------------------------------------------------------- find, present, isMapped

    @Test
    void findTakesARegionRelativeAddressAndWalksUpToTheAddressSpaceRoot() {
        MemoryRegion bus = sys.container("bus", 0x10000);
        MemoryRegion reg = sys.io("reg", 0x100, OPS);
        bus.addSubregion(0x100, reg);
        root.addSubregion(0x100000, bus);

        MemoryRegionSection s = bus.find(0x100, 0x10);
        assertSame(reg, s.region());
        assertEquals(0, s.offsetWithinRegion());
        assertEquals(0x100100, s.offsetWithinAddressSpace());
        assertEquals(0x10010f, s.lastAddress());
        assertSame(as.flatView(), s.flatView());

        // Relative to reg itself: its own addr and every container's are added.
        s = reg.find(0x10, 1);
        assertSame(reg, s.region());
        assertEquals(0x10, s.offsetWithinRegion());
        assertEquals(0x100110, s.offsetWithinAddressSpace());
        assertEquals(0x100110, s.lastAddress());
    }

    @Test
    void findReturnsTheLowestIntersectingSectionClippedToTheRange() {
        MemoryRegion rom = sys.rom("rom", 0x1000);
        root.addSubregion(0x3000, rom); // ram [0, 0xfff], dev [0x2000, 0x20ff], rom [0x3000, 0x3fff]

        MemoryRegionSection s = root.find(0x800, 0x4000);
        assertSame(ram, s.region());
        assertEquals(0x800, s.offsetWithinRegion());
        assertEquals(0x800, s.offsetWithinAddressSpace());
        assertEquals(0xfff, s.lastAddress());

        // Starting in a hole: the next section, clipped at its start and at the range's end.
        s = root.find(0x1800, 0x880);
        assertSame(dev, s.region());
        assertEquals(0, s.offsetWithinRegion());
        assertEquals(0x2000, s.offsetWithinAddressSpace());
        assertEquals(0x207f, s.lastAddress());

        s = root.find(0x3f00, 0x1000);
        assertSame(rom, s.region());
        assertEquals(0xf00, s.offsetWithinRegion());
        assertTrue(s.readonly());
        assertEquals(0x3fff, s.lastAddress());

        assertNull(root.find(0x1000, 0x1000), "nothing in [0x1000, 0x1fff]");
        // A range reaching the top of the space stops there instead of wrapping.
        assertNull(root.find(0x10000, -1L));
        assertRefused(IllegalArgumentException.class, () -> root.find(0, 0), "size=0");
    }

    @Test
    void findOutsideAnyAddressSpaceIsNull() {
        MemoryRegion loose = sys.container("loose", 0x1000);
        MemoryRegion r = sys.io("r", 0x100, OPS);
        loose.addSubregion(0, r);
        assertNull(r.find(0, 1));
        assertFalse(loose.present(0));
    }

    @Test
    void presentMeansSomethingOtherThanTheRegionItself() {
        assertTrue(root.present(0));
        assertTrue(root.present(0x2000));
        assertFalse(root.present(0x1000), "a hole in a container");
        // An I/O region with a subregion: the region itself where the child is not, which does not count.
        MemoryRegion window = sys.io("window", 0x100, OPS);
        MemoryRegion inner = sys.io("inner", 0x10, OPS);
        window.addSubregion(0x20, inner);
        root.addSubregion(0x8000, window);
        assertFalse(window.present(0));
        assertTrue(window.present(0x20));
        assertTrue(root.present(0x8000));
        // Disabling hides it from present as well.
        window.setEnabled(false);
        assertFalse(root.present(0x8020));
    }

    @Test
    void isMappedCoversContainersAndAliasChains() {
        MemoryRegion target = sys.io("target", 0x100, OPS);
        MemoryRegion a1 = sys.alias("a1", target, 0, 0x100);
        MemoryRegion a2 = sys.alias("a2", a1, 0x10, 0x10);
        assertFalse(target.isMapped());
        assertFalse(a1.isMapped());
        root.addSubregion(0x9000, a2);
        assertTrue(a2.isMapped());
        assertTrue(a1.isMapped(), "target of a mapped alias");
        assertTrue(target.isMapped(), "target of an alias of a mapped alias");
        root.delSubregion(a2);
        assertFalse(a1.isMapped());
        assertFalse(target.isMapped());
        assertTrue(ram.isMapped());
        root.delSubregion(ram);
        assertFalse(ram.isMapped());
    }

    // ---------------------------------------------------------------- setAddress re-adds

    @Test
    void setAddressMakesTheRegionTheMostRecentlyAddedAmongEquals() {
        MemoryRegion a = sys.io("a", 0x100, OPS);
        MemoryRegion b = sys.io("b", 0x100, OPS);
        MemoryRegion high = sys.io("high", 0x10, OPS);
        root.addSubregionOverlap(0x10000, a, 0);
        root.addSubregionOverlap(0x10000, b, 0);
        root.addSubregionOverlap(0x20000, high, 5);
        assertSame(b, as.flatView().lookup(0x10000).region(), "later-added wins among equal priorities");
        assertEquals(List.of(high, b, a), root.subregions().subList(0, 3));

        a.setAddress(0x10080);
        assertEquals(List.of(high, a, b), root.subregions().subList(0, 3));
        assertSame(a, as.flatView().lookup(0x10080).region());
        assertSame(b, as.flatView().lookup(0x1007f).region());

        // Setting the same address is not a move: the order stays.
        b.setAddress(0x10000);
        assertEquals(List.of(high, a, b), root.subregions().subList(0, 3));
        assertSame(a, as.flatView().lookup(0x10080).region());

        // Re-adding keeps the priority: a higher priority stays ahead whatever moves.
        b.setAddress(0x10001);
        assertEquals(List.of(high, b, a), root.subregions().subList(0, 3));
        assertEquals(0, b.priority());
    }
}
