package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * {@link VirtioMemDiscardManager}, and through it the {@link RamDiscardManager} and {@link RamDiscardListener}
 * contract: realize and close with discard coordination, QEMU's notification order, rollback of a refused populate,
 * unplug giving memory back, refused requests, listeners on parts of the region, double discards, replay.
 *
 * <p>The region {@code mem} has 0x10000 bytes in eight blocks of 0x2000 (the page size is 0x1000, so sections can
 * cover half a block); it is mapped at guest-physical 0x100000 once the manager is realized.
 */
class VirtioMemDiscardManagerTest {
    private static final long BASE = 0x10_0000;
    private static final long BLOCK = 0x2000;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    private final MemorySystem sys = new MemorySystem();
    private final MemoryRegion root = sys.container("system", U64.SIZE_2_64);
    private final AddressSpace as = sys.addressSpace("memory", root);
    private final MemoryRegion mem = sys.ram("mem", 0x10000);
    private final List<String> log = new ArrayList<>();

    /** The section of {@code mem} at region-relative {@code offset}, as mapped at {@link #BASE}. */
    private MemoryRegionSection sec(long offset, long size) {
        return new MemoryRegionSection(mem, as.flatView(), offset, BASE + offset, BASE + offset + size - 1, false,
                false, false);
    }

    private VirtioMemDiscardManager realizeAndMap() {
        VirtioMemDiscardManager m = VirtioMemDiscardManager.realize(mem, BLOCK);
        root.addSubregion(BASE, mem);
        return m;
    }

    private static void plugBlocksAt(VirtioMemDiscardManager m, long... offsets) {
        for (long offset : offsets) {
            m.plug(offset, BLOCK);
        }
    }

    private RecordingDiscardListener listener(String name) {
        return new RecordingDiscardListener(name, log);
    }

    private void fill(long offset, long size, long value) {
        for (long a = offset; a < offset + size; a += 8) {
            mem.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, a, value);
        }
    }

    // ---------------------------------------------------------------- realize, close, setRamDiscardManager

    @Test
    void realizeUnplugsEverythingAndBecomesTheRegionsManager() {
        fill(0, 0x10000, 0x5a5a5a5a5a5a5a5aL);
        VirtioMemDiscardManager m = realizeAndMap();
        assertSame(m, mem.getRamDiscardManager());
        assertTrue(mem.hasRamDiscardManager());
        assertEquals(0, m.pluggedSize());
        assertEquals(BLOCK, m.getMinGranularity(mem));
        assertEquals(0, mem.ramSegment().get(ValueLayout.JAVA_LONG, 0x8000), "every block starts discarded");
        assertEquals(List.of(), RecordingDiscardListener.replayed(m, sec(0, 0x10000), true));
        assertEquals(List.of("0000000000100000-000000000010ffff mem @0"),
                RecordingDiscardListener.replayed(m, sec(0, 0x10000), false));

        RamBlockDiscard d = sys.ramBlockDiscard();
        assertTrue(d.isRequired());
        assertFalse(d.disable(true), "discards cannot be disabled while virtio-mem needs them");
        assertTrue(d.uncoordinatedDisable(true), "a device that maps only populated memory can coexist");
        assertTrue(d.uncoordinatedDisable(false));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> m.getMinGranularity(sys.ram("other", 0x1000)));
        assertEquals("region=other managerRegion=mem: not the manager's region", e.getMessage());
    }

    @Test
    void realizeRefusesWhatDoesNotFitWithOneLineAndChangesNothing() {
        fill(0, 0x10000, 0x5a5a5a5a5a5a5a5aL);
        String counters = sys.ramBlockDiscard().toString();
        MemoryRegion io = sys.io("io", 0x10000, MemoryRegionOps.builder().read((a, s) -> 0).build());
        MemoryRegion rom = sys.rom("rom", 0x10000);
        MemoryRegion odd = sys.ram("odd", 0x3000);
        MemoryRegion grows = sys.resizeableRam("grows", 0x4000, 0x8000, null);
        Map<String, Runnable> bad = Map.of(
                "region=io kind=io: virtio-mem needs a RAM region", () -> VirtioMemDiscardManager.realize(io, BLOCK),
                "region=rom kind=rom: virtio-mem needs a RAM region", () -> VirtioMemDiscardManager.realize(rom, BLOCK),
                "region=mem blockSize=0x3000 pageSize=0x1000: the block size must be a power of two, at least the page "
                        + "size", () -> VirtioMemDiscardManager.realize(mem, 0x3000),
                "region=mem blockSize=0x800 pageSize=0x1000: the block size must be a power of two, at least the page "
                        + "size", () -> VirtioMemDiscardManager.realize(mem, 0x800),
                "region=mem blockSize=0x0 pageSize=0x1000: the block size must be a power of two, at least the page "
                        + "size", () -> VirtioMemDiscardManager.realize(mem, 0),
                "region=odd size=0x3000 blockSize=0x2000: the region size must be a multiple of the block size",
                () -> VirtioMemDiscardManager.realize(odd, BLOCK),
                "region=grows block=grows: virtio-mem needs a RAM block of fixed size, not a RESIZEABLE one",
                () -> VirtioMemDiscardManager.realize(grows, BLOCK));
        bad.forEach((message, call) -> {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
            assertEquals(message, e.getMessage());
        });
        for (MemoryRegion r : List.of(io, rom, odd, grows, mem)) {
            assertFalse(r.hasRamDiscardManager(), r.name());
        }
        assertEquals(counters, sys.ramBlockDiscard().toString());
        assertEquals(0x5a5a5a5a5a5a5a5aL, mem.ramSegment().get(ValueLayout.JAVA_LONG, 0x8000));
    }

    @Test
    void realizeIsRefusedWhileDiscardIsDisabledOrTheRegionIsMappedOrManaged() {
        fill(0, 0x10000, 0x5a5a5a5a5a5a5a5aL);
        RamBlockDiscard d = sys.ramBlockDiscard();
        assertTrue(d.disable(true)); // say a device that pins all guest RAM
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> VirtioMemDiscardManager.realize(mem, BLOCK));
        assertEquals("region=mem discardDisabled=1 uncoordinatedDiscardDisabled=0 discardRequired=0 "
                + "coordinatedDiscardRequired=0: discarding RAM is disabled, and virtio-mem needs coordinated discards",
                e.getMessage());
        assertFalse(mem.hasRamDiscardManager());
        assertFalse(d.isRequired());
        assertTrue(d.disable(false));

        root.addSubregion(BASE, mem);
        e = assertThrows(IllegalStateException.class, () -> VirtioMemDiscardManager.realize(mem, BLOCK));
        assertEquals("region=mem container=system mappedViaAlias=0: a RamDiscardManager is set or cleared only while "
                + "the region is unmapped", e.getMessage());
        root.delSubregion(mem);

        VirtioMemDiscardManager first = VirtioMemDiscardManager.realize(mem, BLOCK);
        fill(0, 0x10000, 0x5a5a5a5a5a5a5a5aL);
        e = assertThrows(IllegalStateException.class, () -> VirtioMemDiscardManager.realize(mem, BLOCK));
        assertEquals("region=mem ramDiscardManager=VirtioMemDiscardManager[region=mem blockSize=0x2000]: the region "
                + "already has a RamDiscardManager; clear it (null) first", e.getMessage());
        assertSame(first, mem.getRamDiscardManager());
        assertEquals("discardDisabled=0 uncoordinatedDiscardDisabled=0 discardRequired=0 coordinatedDiscardRequired=1",
                d.toString(), "the refused second manager left no requirement behind");
        assertEquals(0x5a5a5a5a5a5a5a5aL, mem.ramSegment().get(ValueLayout.JAVA_LONG, 0x8000), "nothing discarded");
    }

    @Test
    void setRamDiscardManagerFollowsQemusRules() {
        // the region's own rules, with any manager object
        RamDiscardManager rdm = VirtioMemDiscardManager.realize(sys.ram("donor", 0x2000), BLOCK);
        MemoryRegion io = sys.io("io", 0x1000, MemoryRegionOps.builder().read((a, s) -> 0).build());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> io.setRamDiscardManager(rdm));
        assertEquals("region=io kind=io: only a RAM region can have a RamDiscardManager", e.getMessage());
        assertNull(io.getRamDiscardManager());

        MemoryRegion alias = sys.alias("mem-alias", mem, 0, 0x1000);
        root.addSubregion(0, alias);
        IllegalStateException s = assertThrows(IllegalStateException.class, () -> mem.setRamDiscardManager(rdm));
        assertEquals("region=mem mappedViaAlias=1: a RamDiscardManager is set or cleared only while the region is "
                + "unmapped", s.getMessage(), "an alias that maps the region counts as mapping it");
        root.delSubregion(alias);

        mem.setRamDiscardManager(rdm);
        assertSame(rdm, mem.getRamDiscardManager());
        assertThrows(IllegalStateException.class, () -> mem.setRamDiscardManager(rdm));
        mem.setRamDiscardManager(null);
        assertFalse(mem.hasRamDiscardManager());
        mem.setRamDiscardManager(null); // clearing twice is allowed, as in QEMU
    }

    @Test
    void closeEndsTheRequirementOnlyOnceUnmappedAndWithoutListeners() {
        VirtioMemDiscardManager m = realizeAndMap();
        m.plug(0, BLOCK);
        RecordingDiscardListener a = listener("A").registerWith(m, sec(0, 0x10000));
        IllegalStateException e = assertThrows(IllegalStateException.class, m::close);
        assertEquals("region=mem listeners=1: unregister every RamDiscardListener before closing its manager",
                e.getMessage());
        m.unregisterListener(a);
        e = assertThrows(IllegalStateException.class, m::close);
        assertEquals("region=mem container=system mappedViaAlias=0: a RamDiscardManager is set or cleared only while "
                + "the region is unmapped", e.getMessage());
        assertTrue(sys.ramBlockDiscard().isRequired());

        root.delSubregion(mem);
        e = assertThrows(IllegalStateException.class, mem::destroy);
        assertTrue(e.getMessage().startsWith("region=mem ramDiscardManager="), e.getMessage());
        assertFalse(mem.isDestroyed(), "a refused destroy changes nothing");
        m.close();
        m.close();
        assertFalse(mem.hasRamDiscardManager());
        assertFalse(sys.ramBlockDiscard().isRequired());
        assertTrue(sys.ramBlockDiscard().disable(true));
        e = assertThrows(IllegalStateException.class, () -> m.plug(BLOCK, BLOCK));
        assertEquals("region=mem: the manager is closed", e.getMessage());
        assertEquals(BLOCK, m.pluggedSize(), "plugged blocks keep their memory");
        mem.destroy(); // without its manager the region can go
        assertTrue(mem.isDestroyed());
    }

    // ---------------------------------------------------------------- notifications

    @Test
    void listenersHearInQemusOrderNewestRegistrationFirst() {
        VirtioMemDiscardManager m = realizeAndMap();
        for (String n : List.of("A", "B", "C")) {
            listener(n).registerWith(m, sec(0, 0x10000));
        }
        m.plug(0x2000, 0x4000);
        m.unplug(0x4000, 0x2000);
        assertEquals(List.of(
                "C populate 0000000000102000-0000000000105fff mem @2000",
                "B populate 0000000000102000-0000000000105fff mem @2000",
                "A populate 0000000000102000-0000000000105fff mem @2000",
                "C discard 0000000000104000-0000000000105fff mem @4000",
                "B discard 0000000000104000-0000000000105fff mem @4000",
                "A discard 0000000000104000-0000000000105fff mem @4000"), log);
        assertEquals(0x2000, m.pluggedSize());
        assertTrue(m.isPopulated(sec(0x2000, 0x2000)));
        assertFalse(m.isPopulated(sec(0x2000, 0x2001)), "a block the section touches counts whole");
        assertTrue(m.isPopulated(sec(0x3000, 0x800)), "the section need not be aligned");
    }

    @Test
    void aRefusedPopulateIsRolledBackAndTheRangeDiscardedAgain() {
        VirtioMemDiscardManager m = realizeAndMap();
        RecordingDiscardListener a = listener("A").registerWith(m, sec(0, 0x10000));
        RecordingDiscardListener b = listener("B").registerWith(m, sec(0, 0x10000));
        RecordingDiscardListener c = new RecordingDiscardListener("C", log) {
            @Override
            public boolean notifyPopulate(MemoryRegionSection section) {
                fill(section.offsetWithinRegion(), section.sizeMinusOne() + 1, -1L); // touches the memory it maps
                return super.notifyPopulate(section);
            }
        }.registerWith(m, sec(0, 0x10000));
        RecordingDiscardListener d = listener("D").registerWith(m, sec(0, 0x10000));
        m.plug(0, BLOCK);
        log.clear();
        b.refuse = s -> true;

        IllegalStateException e = assertThrows(IllegalStateException.class, () -> m.plug(0x4000, 0x4000));
        assertEquals("region=mem offset=0x4000 size=0x4000 listener=B section=0000000000104000-0000000000107fff mem "
                + "@0x4000: the listener refused to populate; the plug was rolled back", e.getMessage());
        assertEquals(List.of(
                "D populate 0000000000104000-0000000000107fff mem @4000",
                "C populate 0000000000104000-0000000000107fff mem @4000",
                "B populate 0000000000104000-0000000000107fff mem @4000",
                "D discard 0000000000104000-0000000000107fff mem @4000",
                "C discard 0000000000104000-0000000000107fff mem @4000"), log, "A was never told");
        assertEquals(BLOCK, m.pluggedSize());
        assertFalse(m.isPopulated(sec(0x4000, BLOCK)));
        for (RecordingDiscardListener l : List.of(a, b, c, d)) {
            assertEquals(RecordingDiscardListener.replayedPicture(m, sec(0, 0x10000)), l.populated(), l + "'s picture");
        }
        assertEquals(0, as.ldqLe(BASE + 0x6ff8, U, null), "what the listener touched was discarded again");
        assertEquals(-1L, as.ldqLe(BASE, U, null), "the plugged block keeps what C wrote when it was plugged");
    }

    @Test
    void aListenerThatThrowsIsRolledBackAndItsExceptionPropagates() {
        VirtioMemDiscardManager m = realizeAndMap();
        listener("A").registerWith(m, sec(0, 0x10000));
        RuntimeException boom = new UnsupportedOperationException("iommu full");
        RamDiscardListener thrower = new RamDiscardListener() {
            @Override
            public boolean notifyPopulate(MemoryRegionSection section) {
                throw boom;
            }

            @Override
            public void notifyDiscard(MemoryRegionSection section) {
                log.add("T discard");
            }
        };
        m.registerListener(thrower, sec(0x8000, 0x8000));
        listener("B").registerWith(m, sec(0, 0x10000));

        assertSame(boom, assertThrows(RuntimeException.class, () -> m.plug(0x6000, 0x4000)));
        assertEquals(List.of(
                "B populate 0000000000106000-0000000000109fff mem @6000",
                "B discard 0000000000106000-0000000000109fff mem @6000"), log);
        assertEquals(0, m.pluggedSize());
        m.plug(0, 0x4000); // outside the thrower's section: it is not asked
        assertEquals(0x4000, m.pluggedSize());
    }

    @Test
    void unplugGivesTheMemoryBackBeforeTellingListenersAndItReadsAsZeros() {
        VirtioMemDiscardManager m = realizeAndMap();
        List<Long> seenAtDiscard = new ArrayList<>();
        RecordingDiscardListener a = new RecordingDiscardListener("A", log) {
            @Override
            public void notifyDiscard(MemoryRegionSection section) {
                seenAtDiscard.add(as.ldqLe(section.offsetWithinAddressSpace(), U, null));
                super.notifyDiscard(section);
            }
        }.registerWith(m, sec(0, 0x10000));
        m.plug(0, 0x6000);
        for (long addr = BASE; addr < BASE + 0x6000; addr += 8) {
            as.stqLe(addr, 0x0102030405060708L, U);
        }
        m.unplug(0x2000, BLOCK);
        assertEquals(List.of(0L), seenAtDiscard, "QEMU discards first, then tells the listeners");
        assertEquals(0x0102030405060708L, as.ldqLe(BASE + 0x1ff8, U, null));
        for (long addr = BASE + 0x2000; addr < BASE + 0x4000; addr += 8) {
            assertEquals(0, as.ldqLe(addr, U, null), U64.hex(addr));
        }
        assertEquals(0x0102030405060708L, as.ldqLe(BASE + 0x4000, U, null));
        assertEquals(RecordingDiscardListener.replayedPicture(m, sec(0, 0x10000)), a.populated());
        assertEquals(List.of("0000000000100000-0000000000101fff mem @0", "0000000000104000-0000000000105fff mem @4000"),
                RecordingDiscardListener.replayed(m, sec(0, 0x10000), true));
    }

    /** A backend whose discard fails on request, as an madvise or fallocate can. */
    private static final class FragileBlock extends AbstractRamBlock {
        final MemorySegment memory;
        boolean failDiscards;

        FragileBlock(String idstr, long size) {
            super(idstr, size, Set.of());
            memory = Arena.ofAuto().allocate(size, 4096);
        }

        @Override
        public MemorySegment hostSegment() {
            return memory;
        }

        @Override
        protected void discardMemory(long start, long length) {
            if (failDiscards) {
                throw new IllegalStateException("discard(start=" + U64.hex(start) + ", length=" + U64.hex(length)
                        + ") failed");
            }
            super.discardMemory(start, length);
        }
    }

    @Test
    void aDiscardThatFailsTellsNobodyAndChangesNothing() {
        List<FragileBlock> made = new ArrayList<>();
        MemoryRegion fragile = sys.ram("fragile", 0x8000, (name, size) -> {
            FragileBlock b = new FragileBlock(name, size);
            made.add(b);
            return b;
        });
        FragileBlock b = made.get(0);
        b.failDiscards = true;
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> VirtioMemDiscardManager.realize(fragile, BLOCK));
        assertEquals("discard(start=0x0, length=0x8000) failed", e.getMessage());
        assertFalse(fragile.hasRamDiscardManager());
        assertFalse(sys.ramBlockDiscard().isRequired(), "the failed realize gave its requirement back");

        b.failDiscards = false;
        VirtioMemDiscardManager m = VirtioMemDiscardManager.realize(fragile, BLOCK);
        root.addSubregion(0, fragile);
        MemoryRegionSection whole = new MemoryRegionSection(fragile, as.flatView(), 0, 0, 0x7fff, false, false, false);
        RecordingDiscardListener a = listener("A").registerWith(m, whole);
        m.plug(0, 0x8000);
        log.clear();
        b.failDiscards = true;
        e = assertThrows(IllegalStateException.class, () -> m.unplug(0x2000, BLOCK));
        assertEquals("discard(start=0x2000, length=0x2000) failed", e.getMessage());
        e = assertThrows(IllegalStateException.class, m::unplugAll);
        assertEquals("discard(start=0x0, length=0x8000) failed", e.getMessage());
        assertEquals(List.of(), log, "QEMU discards before telling listeners: nobody heard of the failed unplugs");
        assertEquals(0x8000, m.pluggedSize());
        assertTrue(m.isPopulated(whole));
        assertEquals(RecordingDiscardListener.replayedPicture(m, whole), a.populated());
    }

    @Test
    void requestsThatAreUnalignedOutOfRangeOrInTheWrongStateAreRefusedAndChangeNothing() {
        VirtioMemDiscardManager m = realizeAndMap();
        listener("A").registerWith(m, sec(0, 0x10000));
        m.plug(0x4000, 0x4000);
        fill(0x4000, 0x4000, 0x77);
        log.clear();
        String layout = " blockSize=0x2000 regionSize=0x10000: a ";
        Map<String, Runnable> bad = Map.of(
                "region=mem offset=0x1000 size=0x2000" + layout + "plug must cover whole blocks inside the region",
                () -> m.plug(0x1000, 0x2000),
                "region=mem offset=0x0 size=0x1000" + layout + "plug must cover whole blocks inside the region",
                () -> m.plug(0, 0x1000),
                "region=mem offset=0x0 size=0x0" + layout + "plug must cover whole blocks inside the region",
                () -> m.plug(0, 0),
                "region=mem offset=0xc000 size=0x6000" + layout + "plug must cover whole blocks inside the region",
                () -> m.plug(0xc000, 0x6000),
                "region=mem offset=0x10000 size=0x2000" + layout + "plug must cover whole blocks inside the region",
                () -> m.plug(0x10000, 0x2000),
                "region=mem offset=0xffffffffffffe000 size=0x4000" + layout + "unplug must cover whole blocks inside "
                        + "the region", () -> m.unplug(-0x2000, 0x4000),
                "region=mem offset=0x4000 size=0xe000" + layout + "unplug must cover whole blocks inside the region",
                () -> m.unplug(0x4000, 0xe000));
        assertEquals(7, bad.size());
        bad.forEach((message, call) -> {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
            assertEquals(message, e.getMessage());
        });
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> m.plug(0x2000, 0x4000));
        assertEquals("region=mem offset=0x2000 size=0x4000 block=0x4000: the plug was refused, that block is plugged "
                + "already", e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> m.unplug(0x6000, 0x4000));
        assertEquals("region=mem offset=0x6000 size=0x4000 block=0x8000: the unplug was refused, that block is not "
                + "plugged", e.getMessage());

        assertEquals(List.of(), log, "no listener heard of a refused request");
        assertEquals(0x4000, m.pluggedSize());
        assertEquals(List.of("0000000000104000-0000000000107fff mem @4000"),
                RecordingDiscardListener.replayed(m, sec(0, 0x10000), true));
        assertEquals(0x77, mem.ramSegment().get(ValueLayout.JAVA_LONG, 0x7ff8), "nothing was discarded");
    }

    @Test
    void listenersOnPartialSectionsHearOnlyTheirPart() {
        VirtioMemDiscardManager m = realizeAndMap();
        RecordingDiscardListener low = listener("L").registerWith(m, sec(0x1000, 0x4000)); // half blocks at each end
        RecordingDiscardListener mid = listener("M").registerWith(m, sec(0x8000, 0x2000));
        RecordingDiscardListener high = listener("H").registerWith(m, sec(0xa000, 0x6000));
        m.plug(0, 0x4000);
        m.plug(0x4000, 0x6000);
        assertEquals(List.of(
                "L populate 0000000000101000-0000000000103fff mem @1000",
                "M populate 0000000000108000-0000000000109fff mem @8000",
                "L populate 0000000000104000-0000000000104fff mem @4000"), log);
        assertTrue(m.isPopulated(low.registered));
        assertFalse(m.isPopulated(high.registered));
        log.clear();

        RecordingDiscardListener late = listener("X").registerWith(m, sec(0x3000, 0x6000));
        assertEquals(List.of("X populate 0000000000103000-0000000000108fff mem @3000"), log,
                "registering replays the populated run, cropped to the section");
        for (RecordingDiscardListener l : List.of(low, mid, high, late)) {
            assertEquals(RecordingDiscardListener.replayedPicture(m, l.registered), l.populated(), l.toString());
        }
        assertEquals(List.of(), RecordingDiscardListener.replayed(m, low.registered, false));
        assertEquals(List.of("000000000010a000-000000000010ffff mem @a000"),
                RecordingDiscardListener.replayed(m, high.registered, false));
    }

    @Test
    void doubleDiscardListenersHearOneDiscardForTheirWholeSection() {
        VirtioMemDiscardManager m = realizeAndMap();
        RecordingDiscardListener dbl = new RecordingDiscardListener("D", log, true).registerWith(m, sec(0, 0x10000));
        RecordingDiscardListener one = listener("N").registerWith(m, sec(0x2000, 0xe000));
        m.plug(0, 0x4000);
        m.plug(0x8000, BLOCK);
        log.clear();
        m.unplugAll();
        assertEquals(List.of(
                "N discard 0000000000102000-0000000000103fff mem @2000",
                "N discard 0000000000108000-0000000000109fff mem @8000",
                "D discard 0000000000100000-000000000010ffff mem @0"), log);
        assertEquals(0, m.pluggedSize());
        log.clear();
        m.unplugAll();
        assertEquals(List.of(), log, "unplug-all with nothing plugged tells nobody");

        m.plug(0xc000, BLOCK);
        log.clear();
        m.unregisterListener(dbl);
        m.unregisterListener(one);
        assertEquals(List.of(
                "D discard 0000000000100000-000000000010ffff mem @0",
                "N discard 000000000010c000-000000000010dfff mem @c000"), log);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.unregisterListener(one));
        assertEquals("region=mem listener=N: not registered", e.getMessage());
        m.unplug(0xc000, BLOCK);
        log.clear();
        dbl.registerWith(m, sec(0, 0x10000));
        m.unregisterListener(dbl);
        assertEquals(List.of(), log, "nothing plugged: unregister tells nothing, even a double-discard listener");
    }

    @Test
    void aListenerThatRefusesItsReplayIsToldTheRestIsDiscardedAndNotRegistered() {
        VirtioMemDiscardManager m = realizeAndMap();
        plugBlocksAt(m, 0, 0x4000, 0x8000);
        RecordingDiscardListener r = listener("R");
        r.refuse = s -> s.offsetWithinRegion() == 0x8000;
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> r.registerWith(m, sec(0, 0x10000)));
        assertEquals("region=mem listener=R section=0000000000108000-0000000000109fff mem @0x8000: the listener "
                + "refused a populated part; it was not registered", e.getMessage());
        assertEquals(List.of(
                "R populate 0000000000100000-0000000000101fff mem @0",
                "R populate 0000000000104000-0000000000105fff mem @4000",
                "R populate 0000000000108000-0000000000109fff mem @8000",
                "R discard 0000000000100000-0000000000101fff mem @0",
                "R discard 0000000000104000-0000000000105fff mem @4000"), log);
        assertEquals(new BitSet(), r.populated());
        log.clear();
        m.plug(0x2000, BLOCK);
        assertEquals(List.of(), log, "R is not registered");
        assertThrows(IllegalArgumentException.class, () -> m.unregisterListener(r));

        RecordingDiscardListener twice = listener("T").registerWith(m, sec(0, 0x10000));
        IllegalArgumentException again = assertThrows(IllegalArgumentException.class,
                () -> m.registerListener(twice, sec(0, 0x1000)));
        assertEquals("region=mem listener=T: already registered", again.getMessage());
    }

    @Test
    void replayStopsAtTheFirstRefusalAndSectionsOfOtherRegionsAreRefused() {
        VirtioMemDiscardManager m = realizeAndMap();
        plugBlocksAt(m, 0, 0x4000, 0x8000);
        List<Long> seen = new ArrayList<>();
        assertFalse(m.replayPopulated(sec(0, 0x10000), s -> {
            seen.add(s.offsetWithinRegion());
            return seen.size() < 2;
        }));
        assertEquals(List.of(0L, 0x4000L), seen);
        assertEquals(List.of("0000000000102000-0000000000103fff mem @2000", "0000000000106000-0000000000107fff mem @6000",
                "000000000010a000-000000000010ffff mem @a000"), RecordingDiscardListener.replayed(m, sec(0, 0x10000), false));

        MemoryRegion other = sys.ram("other", 0x10000);
        MemoryRegionSection foreign = new MemoryRegionSection(other, null, 0, 0, 0xfff, false, false, false);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.isPopulated(foreign));
        assertEquals("section=0000000000000000-0000000000000fff other @0x0 managerRegion=mem regionSize=0x10000: not a "
                + "section of the manager's region", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> m.registerListener(listener("F"), sec(0x8000, 0x9000)));
        assertThrows(IllegalArgumentException.class, () -> m.replayDiscarded(sec(0xf000, 0x2000), s -> { }));
    }

    /**
     * How a device that maps guest RAM for DMA uses all this (QEMU's VFIO listener): a memory listener that, for a
     * section of a region with a manager, registers a discard listener and maps only what it hears is populated.
     */
    @Test
    void aMemoryListenerMapsOnlyPopulatedPartsOfManagedRegions() {
        VirtioMemDiscardManager m = VirtioMemDiscardManager.realize(mem, BLOCK);
        m.plug(0x2000, 0x4000);
        assertTrue(sys.ramBlockDiscard().uncoordinatedDisable(true), "such a device disables uncoordinated discards");
        BitSet dmaMapped = new BitSet(); // guest-physical pages from 0x100000 on, one bit per 0x1000
        Map<Long, RamDiscardListener> perSection = new HashMap<>(); // by guest-physical start, as VFIO finds them
        as.registerListener(new MemoryListener() {
            @Override
            public void regionAdd(MemoryRegionSection section) {
                RamDiscardManager rdm = section.region().getRamDiscardManager();
                if (rdm == null) {
                    return;
                }
                RamDiscardListener rdl = new RamDiscardListener() {
                    @Override
                    public boolean notifyPopulate(MemoryRegionSection s) {
                        dmaMapped.set(page(s.offsetWithinAddressSpace()), page(s.lastAddress()) + 1);
                        return true;
                    }

                    @Override
                    public void notifyDiscard(MemoryRegionSection s) {
                        dmaMapped.clear(page(s.offsetWithinAddressSpace()), page(s.lastAddress()) + 1);
                    }
                };
                perSection.put(section.offsetWithinAddressSpace(), rdl);
                rdm.registerListener(rdl, section);
            }

            @Override
            public void regionDel(MemoryRegionSection section) {
                RamDiscardListener rdl = perSection.remove(section.offsetWithinAddressSpace());
                if (rdl != null) {
                    section.region().getRamDiscardManager().unregisterListener(rdl);
                }
            }

            private static int page(long gpa) {
                return (int) ((gpa - BASE) >>> 12);
            }
        });
        root.addSubregion(BASE, mem);
        assertEquals(BitSet.valueOf(new long[] {0b0011_1100}), dmaMapped, "pages 2-5: the plugged blocks");
        m.plug(0xe000, BLOCK);
        m.unplug(0x2000, BLOCK);
        assertEquals(BitSet.valueOf(new long[] {0b1100_0000_0011_0000}), dmaMapped);
        root.delSubregion(mem);
        assertEquals(new BitSet(), dmaMapped, "unmapping the region unregistered the listener");
        m.close();
        assertTrue(sys.ramBlockDiscard().uncoordinatedDisable(false));
    }
}
