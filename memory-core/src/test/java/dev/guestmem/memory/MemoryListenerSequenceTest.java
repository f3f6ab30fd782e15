package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

/**
 * Proves the exact sequence of {@link MemoryListener} callbacks that each kind of topology change produces: which
 * sections are deleted, kept ({@code nop}) and added, in which order, and how several listeners interleave.
 *
 * <p>Where the order comes from (QEMU 7.2, {@code softmmu/memory.c}):
 * <ul>
 *   <li>{@code memory_region_transaction_commit} calls {@code begin} on every listener, then updates each address
 *       space, then calls {@code commit} on every listener, both in the forward direction of the global listener
 *       list, whichever address space a listener watches.</li>
 *   <li>{@code address_space_set_flatview} runs {@code address_space_update_topology_pass} twice over the old and
 *       new ranges, both sorted by address: the first pass only deletes (a range in the old view that is not in
 *       the new one with the same {@code flatrange_equal} attributes), the second only reports what is kept
 *       ({@code region_nop}) and what is new ({@code region_add}). So every deletion comes before any addition, and
 *       within a pass sections come in ascending address order.</li>
 *   <li>{@code MEMORY_LISTENER_CALL}: {@code region_add}, {@code region_nop} and {@code log_start} go Forward
 *       (ascending priority), {@code region_del} and {@code log_stop} go Reverse.</li>
 *   <li>{@code memory_listener_register} inserts a listener after every listener of lower or equal priority, so
 *       equal priorities keep registration order.</li>
 * </ul>
 *
 * <p>guestmem differs from QEMU on purpose in one point, which these tests also pin down: an address space whose
 * ranges did not change keeps its view, and its listeners hear nothing but the global begin/commit (QEMU would send
 * {@code region_nop} for each of its ranges).
 */
class MemoryListenerSequenceTest {
    private MemorySystem sys;
    private MemoryRegion root;
    private AddressSpace as;
    private final List<String> log = new ArrayList<>();

    @BeforeEach
    void setUp() {
        sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        root = sys.container("root", 0x10000);
        as = sys.addressSpace("mem", root);
    }

    /** Registers a listener on {@link #as} writing to the shared log, and forgets its replay. */
    private RecordingListener listen(String name, int priority) {
        return listen(as, name, priority);
    }

    private RecordingListener listen(AddressSpace space, String name, int priority) {
        RecordingListener l = new RecordingListener(name, priority, log);
        space.registerListener(l);
        log.clear();
        return l;
    }

    /** What was logged since the last call. */
    private List<String> events() {
        List<String> copy = List.copyOf(log);
        log.clear();
        return copy;
    }

    /** What {@code L1} hears for one commit: its begin, then {@code calls} (each without the name), then its commit. */
    private static List<String> commitOfL1(String... calls) {
        List<String> heard = new ArrayList<>();
        heard.add("L1 begin");
        for (String c : calls) {
            heard.add("L1 " + c);
        }
        heard.add("L1 commit");
        return heard;
    }

    private MemoryRegion io(String name, long size) {
        return sys.io(name, size, MemoryRegionOps.UNASSIGNED);
    }

    @Test
    void addThenDeleteARegion() {
        listen("L1", 0);
        MemoryRegion ram0 = sys.ram("ram0", 0x1000);

        root.addSubregion(0x1000, ram0);
        assertEquals(commitOfL1(
                "add 0000000000001000-0000000000001fff ram0 @0"), events());

        root.delSubregion(ram0);
        assertEquals(commitOfL1(
                "del 0000000000001000-0000000000001fff ram0 @0"), events());
    }

    /** What L1 hears when RAM {@code b} moves from {@code from} to {@code to} past RAM {@code a} at 0x3000. */
    private List<String> moveB(long from, long to) {
        MemoryRegion b = sys.ram("b", 0x1000);
        MemoryRegion a = sys.ram("a", 0x1000);
        root.addSubregion(from, b);
        root.addSubregion(0x3000, a);
        listen("L1", 0);
        b.setAddress(to);
        return events();
    }

    @Test
    void moveUpDeletesOldKeepsNeighbourAddsNew() {
        assertEquals(commitOfL1(
                "del 0000000000001000-0000000000001fff b @0",
                "nop 0000000000003000-0000000000003fff a @0",
                "add 0000000000005000-0000000000005fff b @0"), moveB(0x1000, 0x5000));
    }

    @Test
    void moveDownStillDeletesBeforeAddingAtALowerAddress() {
        assertEquals(commitOfL1(
                "del 0000000000005000-0000000000005fff b @0",
                "add 0000000000001000-0000000000001fff b @0",
                "nop 0000000000003000-0000000000003fff a @0"), moveB(0x5000, 0x1000));
    }

    @Test
    void resizeSplitsMovesAndMergesALowerPriorityRegion() {
        MemoryRegion low = sys.ram("low", 0x4000);
        MemoryRegion dev = io("dev", 0);
        root.addSubregion(0, low);
        root.addSubregionOverlap(0x1000, dev, 1);
        listen("L1", 0);

        // Growing from nothing cuts the RAM below in two.
        dev.setSize(0x1000);
        assertEquals(commitOfL1(
                "del 0000000000000000-0000000000003fff low @0",
                "add 0000000000000000-0000000000000fff low @0",
                "add 0000000000001000-0000000000001fff dev @0",
                "add 0000000000002000-0000000000003fff low @2000"), events());

        // Growing further moves the boundary: the first piece of RAM is untouched.
        dev.setSize(0x2000);
        assertEquals(commitOfL1(
                "del 0000000000001000-0000000000001fff dev @0",
                "del 0000000000002000-0000000000003fff low @2000",
                "nop 0000000000000000-0000000000000fff low @0",
                "add 0000000000001000-0000000000002fff dev @0",
                "add 0000000000003000-0000000000003fff low @3000"), events());

        // Shrinking back to nothing merges the RAM into one range again.
        dev.setSize(0);
        assertEquals(commitOfL1(
                "del 0000000000000000-0000000000000fff low @0",
                "del 0000000000001000-0000000000002fff dev @0",
                "del 0000000000003000-0000000000003fff low @3000",
                "add 0000000000000000-0000000000003fff low @0"), events());
    }

    @Test
    void disableDeletesEnableAddsAndRepeatingIsSilent() {
        MemoryRegion r = sys.ram("r", 0x1000);
        MemoryRegion n = sys.ram("n", 0x1000);
        root.addSubregion(0x2000, r);
        root.addSubregion(0x4000, n);
        listen("L1", 0);

        r.setEnabled(false);
        assertEquals(commitOfL1(
                "del 0000000000002000-0000000000002fff r @0",
                "nop 0000000000004000-0000000000004fff n @0"), events());

        r.setEnabled(false);
        assertEquals(List.of(), events(), "disabling a disabled region must not render");

        r.setEnabled(true);
        assertEquals(commitOfL1(
                "add 0000000000002000-0000000000002fff r @0",
                "nop 0000000000004000-0000000000004fff n @0"), events());
    }

    @Test
    void disablingAContainerDeletesEverythingInIt() {
        MemoryRegion bus = sys.container("bus", 0x4000);
        bus.addSubregion(0, sys.ram("x", 0x1000));
        bus.addSubregion(0x2000, sys.ram("y", 0x1000));
        root.addSubregion(0x8000, bus);
        listen("L1", 0);

        bus.setEnabled(false);
        assertEquals(commitOfL1(
                "del 0000000000008000-0000000000008fff x @0",
                "del 000000000000a000-000000000000afff y @0"), events());
    }

    @Test
    void aliasOffsetChangeAtTheSameAddressIsDelThenAdd() {
        MemoryRegion backing = sys.ram("backing", 0x4000);
        MemoryRegion win = sys.alias("win", backing, 0x1000, 0x1000);
        root.addSubregion(0x8000, win);
        listen("L1", 0);

        win.setAliasOffset(0x2000);
        assertEquals(commitOfL1(
                "del 0000000000008000-0000000000008fff backing @1000",
                "add 0000000000008000-0000000000008fff backing @2000"), events());

        win.setAliasOffset(0x2000);
        assertEquals(List.of(), events(), "the same alias offset must not render");
    }

    @Test
    void priorityChangeInOneTransactionFlipsTheOwnerOfAnOverlap() {
        MemoryRegion a = sys.ram("a", 0x2000);
        MemoryRegion b = sys.ram("b", 0x2000);
        root.addSubregionOverlap(0, a, 1);
        root.addSubregionOverlap(0x1000, b, 0);
        listen("L1", 0);

        sys.transaction(() -> {
            root.delSubregion(b);
            root.addSubregionOverlap(0x1000, b, 2);
        });
        // One begin/commit pair: the del and re-add rendered once, at the commit.
        assertEquals(commitOfL1(
                "del 0000000000000000-0000000000001fff a @0",
                "del 0000000000002000-0000000000002fff b @1000",
                "add 0000000000000000-0000000000000fff a @0",
                "add 0000000000001000-0000000000002fff b @0"), events());
    }

    @Test
    void readonlyChangeIsDelThenAddWithTheNewAttribute() {
        MemoryRegion r = sys.ram("r", 0x1000);
        MemoryRegion n = sys.ram("n", 0x1000);
        root.addSubregion(0x1000, r);
        root.addSubregion(0x3000, n);
        listen("L1", 0);

        r.setReadonly(true);
        assertEquals(commitOfL1(
                "del 0000000000001000-0000000000001fff r @0",
                "add 0000000000001000-0000000000001fff r @0 ro",
                "nop 0000000000003000-0000000000003fff n @0"), events());

        r.setReadonly(false);
        assertEquals(commitOfL1(
                "del 0000000000001000-0000000000001fff r @0 ro",
                "add 0000000000001000-0000000000001fff r @0",
                "nop 0000000000003000-0000000000003fff n @0"), events());
    }

    @Test
    void readonlyOfAContainerReachesTheSectionsBelowIt() {
        MemoryRegion bus = sys.container("bus", 0x2000);
        bus.addSubregion(0x1000, sys.ram("r", 0x1000));
        root.addSubregion(0x4000, bus);
        listen("L1", 0);

        bus.setReadonly(true);
        assertEquals(commitOfL1(
                "del 0000000000005000-0000000000005fff r @0",
                "add 0000000000005000-0000000000005fff r @0 ro"), events());
    }

    @Test
    void romdToggleOfARomDeviceIsDelThenAdd() {
        MemoryRegion flash = sys.romDevice("flash", 0x2000, MemoryRegionOps.UNASSIGNED);
        root.addSubregion(0x2000, flash);
        listen("L1", 0);

        flash.setRomd(false);
        assertEquals(commitOfL1(
                "del 0000000000002000-0000000000003fff flash @0",
                "add 0000000000002000-0000000000003fff flash @0 !romd"), events());

        flash.setRomd(false);
        assertEquals(List.of(), events(), "the same romd mode must not render");

        flash.setRomd(true);
        assertEquals(commitOfL1(
                "del 0000000000002000-0000000000003fff flash @0 !romd",
                "add 0000000000002000-0000000000003fff flash @0"), events());
    }

    @Test
    void aChangeThatLeavesTheRangesAloneSendsOnlyBeginAndCommit() {
        // guestmem's documented difference from QEMU: no region_nop when the view did not change.
        MemoryRegion top = sys.ram("top", 0x4000);
        root.addSubregionOverlap(0, top, 1);
        // A second visible region keeps root as the flatview root, so only the ranges can tell the views apart.
        root.addSubregion(0x8000, sys.ram("n", 0x1000));
        MemoryRegion hidden = sys.ram("hidden", 0x1000);
        listen("L1", 0);
        FlatView before = as.flatView();

        root.addSubregion(0x1000, hidden);
        assertEquals(List.of("L1 begin", "L1 commit"), events());
        assertSame(before, as.flatView());
    }

    @Nested
    class SeveralListeners {
        private AddressSpace io;
        private MemoryRegion b;

        @BeforeEach
        void setUpSpaces() {
            b = sys.ram("b", 0x1000);
            root.addSubregion(0x1000, b);
            root.addSubregion(0x3000, sys.ram("a", 0x1000));
            MemoryRegion ioRoot = sys.container("ioroot", 0x10000);
            ioRoot.addSubregion(0x60, io("kbd", 0x10));
            ioRoot.addSubregion(0x3f8, io("serial", 0x8));
            io = sys.addressSpace("io", ioRoot);
        }

        @Test
        void twoListenersAddAndKeepAscendingDeleteDescending() {
            listen("HI", 10);
            listen("LO", -5);

            b.setAddress(0x5000);
            assertEquals(List.of(
                    "LO begin",
                    "HI begin",
                    "HI del 0000000000001000-0000000000001fff b @0",
                    "LO del 0000000000001000-0000000000001fff b @0",
                    "LO nop 0000000000003000-0000000000003fff a @0",
                    "HI nop 0000000000003000-0000000000003fff a @0",
                    "LO add 0000000000005000-0000000000005fff b @0",
                    "HI add 0000000000005000-0000000000005fff b @0",
                    "LO commit",
                    "HI commit"), events());
        }

        @Test
        void equalPrioritiesKeepRegistrationOrderAndAnotherSpaceHearsOnlyBeginAndCommit() {
            // Registered out of order; equal priorities (B before A) must stay in registration order.
            listen("B", 5);
            listen("A", 5);
            listen("C", -1);
            listen(io, "X", 3);
            FlatView ioView = io.flatView();
            long ioGeneration = io.generation();

            b.setAddress(0x5000);
            assertEquals(List.of(
                    "C begin",
                    "X begin",
                    "B begin",
                    "A begin",
                    "A del 0000000000001000-0000000000001fff b @0",
                    "B del 0000000000001000-0000000000001fff b @0",
                    "C del 0000000000001000-0000000000001fff b @0",
                    "C nop 0000000000003000-0000000000003fff a @0",
                    "B nop 0000000000003000-0000000000003fff a @0",
                    "A nop 0000000000003000-0000000000003fff a @0",
                    "C add 0000000000005000-0000000000005fff b @0",
                    "B add 0000000000005000-0000000000005fff b @0",
                    "A add 0000000000005000-0000000000005fff b @0",
                    "C commit",
                    "X commit",
                    "B commit",
                    "A commit"), events());
            assertSame(ioView, io.flatView(), "the unchanged io space keeps its view");
            assertEquals(ioGeneration, io.generation());
            assertEquals(List.of("C", "B", "A"), as.listeners().stream().map(MemoryListener::name).toList());
            assertEquals(List.of("X"), io.listeners().stream().map(MemoryListener::name).toList());
        }

        @Test
        void changesInTwoSpacesInOneTransactionAreDeliveredSpaceBySpace() {
            listen("M2", 2);
            listen(io, "I1", 1);
            listen("M0", 0);

            sys.transaction(() -> {
                io.root().subregions().getFirst().setEnabled(false); // serial at 0x3f8 (added last, listed first)
                b.setEnabled(false);
            });
            // Address spaces are updated in creation order: mem first, then io.
            assertEquals(List.of(
                    "M0 begin",
                    "I1 begin",
                    "M2 begin",
                    "M2 del 0000000000001000-0000000000001fff b @0",
                    "M0 del 0000000000001000-0000000000001fff b @0",
                    "M0 nop 0000000000003000-0000000000003fff a @0",
                    "M2 nop 0000000000003000-0000000000003fff a @0",
                    "I1 del 00000000000003f8-00000000000003ff serial @0",
                    "I1 nop 0000000000000060-000000000000006f kbd @0",
                    "M0 commit",
                    "I1 commit",
                    "M2 commit"), events());
        }
    }

    @Nested
    class Registration {
        @BeforeEach
        void populate() {
            // Added out of address order; replay must still come in address order.
            root.addSubregion(0x8000, sys.ram("c", 0x1000));
            root.addSubregion(0x1000, sys.rom("a", 0x1000));
            root.addSubregion(0x4000, sys.ram("b", 0x2000));
        }

        @Test
        void registeringReplaysTheCurrentViewToTheNewListenerOnly() {
            listen("OLD", 0);
            RecordingListener fresh = new RecordingListener("NEW", 0, log);

            as.registerListener(fresh);
            assertEquals(List.of(
                    "NEW begin",
                    "NEW add 0000000000001000-0000000000001fff a @0 ro",
                    "NEW add 0000000000004000-0000000000005fff b @0",
                    "NEW add 0000000000008000-0000000000008fff c @0",
                    "NEW commit"), events());
        }

        @Test
        void unregisteringDeletesEverySectionForThatListenerOnlyAndDetachesIt() {
            listen("OLD", 0);
            RecordingListener leaving = listen("GONE", 1);

            as.unregisterListener(leaving);
            assertEquals(List.of(
                    "GONE begin",
                    "GONE del 0000000000001000-0000000000001fff a @0 ro",
                    "GONE del 0000000000004000-0000000000005fff b @0",
                    "GONE del 0000000000008000-0000000000008fff c @0",
                    "GONE commit"), events());

            root.addSubregion(0xa000, sys.ram("d", 0x1000));
            assertEquals(List.of(
                    "OLD begin",
                    "OLD nop 0000000000001000-0000000000001fff a @0 ro",
                    "OLD nop 0000000000004000-0000000000005fff b @0",
                    "OLD nop 0000000000008000-0000000000008fff c @0",
                    "OLD add 000000000000a000-000000000000afff d @0",
                    "OLD commit"), events());
        }

        @Test
        void aListenerCanComeBackAfterLeaving() {
            RecordingListener l = listen("L", 0);
            as.unregisterListener(l);
            events();

            as.registerListener(l);
            assertEquals(List.of(
                    "L begin",
                    "L add 0000000000001000-0000000000001fff a @0 ro",
                    "L add 0000000000004000-0000000000005fff b @0",
                    "L add 0000000000008000-0000000000008fff c @0",
                    "L commit"), events());
        }

        @Test
        void registeringInsideATransactionReplaysTheOldViewThenTheCommitDeliversTheChange() {
            // As in QEMU, the replay shows what is published now; the pending change arrives with the commit.
            RecordingListener l = new RecordingListener("L", 0, log);
            sys.transaction(() -> {
                root.addSubregion(0x2000, sys.ram("mid", 0x1000));
                as.registerListener(l);
            });
            assertEquals(List.of(
                    "L begin",
                    "L add 0000000000001000-0000000000001fff a @0 ro",
                    "L add 0000000000004000-0000000000005fff b @0",
                    "L add 0000000000008000-0000000000008fff c @0",
                    "L commit",
                    "L begin",
                    "L nop 0000000000001000-0000000000001fff a @0 ro",
                    "L add 0000000000002000-0000000000002fff mid @0",
                    "L nop 0000000000004000-0000000000005fff b @0",
                    "L nop 0000000000008000-0000000000008fff c @0",
                    "L commit"), events());
        }

        @Test
        void registeringTheSameListenerTwiceThrowsAndChangesNothing() {
            RecordingListener l = listen("TWICE", 0);
            MemoryRegion other = sys.container("other", 0x1000);
            AddressSpace otherSpace = sys.addressSpace("other", other);

            IllegalArgumentException again = assertThrows(IllegalArgumentException.class, () -> as.registerListener(l));
            assertTrue(again.getMessage().contains("listener=TWICE"), again.getMessage());
            assertTrue(again.getMessage().contains("already registered on addressSpace=mem"), again.getMessage());

            IllegalArgumentException elsewhere = assertThrows(IllegalArgumentException.class,
                    () -> otherSpace.registerListener(l));
            assertTrue(elsewhere.getMessage().contains("already registered on addressSpace=mem"),
                    elsewhere.getMessage());

            assertEquals(List.of(), events(), "a refused registration must not call the listener");
            assertEquals(List.of(l), as.listeners());
            assertEquals(List.of(), otherSpace.listeners());
            assertEquals(false, sys.inTransaction(), "a refused registration must close its transaction");
        }

        @Test
        void unregisteringAListenerThatIsNotThereThrows() {
            RecordingListener l = new RecordingListener("STRANGER", 0, log);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> as.unregisterListener(l));
            assertTrue(e.getMessage().contains("listener=STRANGER"), e.getMessage());
            assertEquals(List.of(), events());
        }
    }

    /**
     * Dirty logging in commits, from QEMU's {@code address_space_update_topology_pass}: in the adding pass a range
     * that is in both views with the same attributes hears {@code region_nop} (Forward), then {@code log_start}
     * (Forward) if its mask gained clients, then {@code log_stop} (Reverse) if it lost some, each call made for every
     * listener before the next; a range that is new, or whose attributes changed, hears only {@code region_del} and
     * {@code region_add}, whatever it logs. {@code listener_add_address_space} replays {@code region_add} then
     * {@code log_start} per logged range; {@code listener_del_address_space} sends {@code log_stop} then
     * {@code region_del}.
     */
    @Nested
    class DirtyLog {
        private MemoryRegion vram;

        @BeforeEach
        void map() {
            root.addSubregion(0x1000, sys.ram("a", 0x1000));
            vram = sys.ram("vram", 0x2000);
            root.addSubregion(0x4000, vram);
        }

        /**
         * What LO (priority -5) and HI (priority 10) hear from a commit that keeps both ranges and changes only
         * logging: begin, each range's nop (forward), the given log calls, commit.
         */
        private List<String> keepingBothRanges(String... logCalls) {
            List<String> expected = new ArrayList<>(List.of(
                    "LO begin",
                    "HI begin",
                    "LO nop 0000000000001000-0000000000001fff a @0",
                    "HI nop 0000000000001000-0000000000001fff a @0",
                    "LO nop 0000000000004000-0000000000005fff vram @0",
                    "HI nop 0000000000004000-0000000000005fff vram @0"));
            expected.addAll(List.of(logCalls));
            expected.addAll(List.of("LO commit", "HI commit"));
            return expected;
        }

        @Test
        void startsGoForwardAfterEveryNopAndStopsGoInReverse() {
            listen("HI", 10);
            listen("LO", -5);

            vram.setLog(true, DirtyMemoryClient.VGA);
            assertEquals(keepingBothRanges(
                    "LO log_start 0000000000004000-0000000000005fff vram @0 old=0 new=1",
                    "HI log_start 0000000000004000-0000000000005fff vram @0 old=0 new=1"), events());

            // VGA swapped for CODE in one commit: the range gains a client and loses one, and hears the start first.
            sys.transaction(() -> {
                vram.setLog(true, DirtyMemoryClient.CODE);
                vram.setLog(false, DirtyMemoryClient.VGA);
            });
            assertEquals(keepingBothRanges(
                    "LO log_start 0000000000004000-0000000000005fff vram @0 old=1 new=2",
                    "HI log_start 0000000000004000-0000000000005fff vram @0 old=1 new=2",
                    "HI log_stop 0000000000004000-0000000000005fff vram @0 old=1 new=2",
                    "LO log_stop 0000000000004000-0000000000005fff vram @0 old=1 new=2"), events());

            vram.setLog(false, DirtyMemoryClient.CODE);
            assertEquals(keepingBothRanges(
                    "HI log_stop 0000000000004000-0000000000005fff vram @0 old=2 new=0",
                    "LO log_stop 0000000000004000-0000000000005fff vram @0 old=2 new=0"), events());
        }

        @Test
        void aLoggedRangeThatMovesOrAppearsHearsOnlyDelAndAdd() {
            vram.setLog(true, DirtyMemoryClient.VGA);
            listen("L", 0);

            vram.setAddress(0x8000);
            assertEquals(List.of(
                    "L begin",
                    "L del 0000000000004000-0000000000005fff vram @0",
                    "L nop 0000000000001000-0000000000001fff a @0",
                    "L add 0000000000008000-0000000000009fff vram @0",
                    "L commit"), events());

            MemoryRegion fb = sys.ram("fb", 0x1000);
            fb.setLog(true, DirtyMemoryClient.VGA);
            assertEquals(List.of("L begin", "L commit"), events(), "not mapped: no range changes");
            root.addSubregion(0xa000, fb);
            assertEquals(List.of(
                    "L begin",
                    "L nop 0000000000001000-0000000000001fff a @0",
                    "L nop 0000000000008000-0000000000009fff vram @0",
                    "L add 000000000000a000-000000000000afff fb @0",
                    "L commit"), events());
        }

        @Test
        void registeringStartsLoggingAfterEachAddAndUnregisteringStopsItBeforeEachDel() {
            vram.setLog(true, DirtyMemoryClient.VGA);
            listen("OLD", 0);
            RecordingListener fresh = new RecordingListener("NEW", 1, log);

            as.registerListener(fresh);
            assertEquals(List.of(
                    "NEW begin",
                    "NEW add 0000000000001000-0000000000001fff a @0",
                    "NEW add 0000000000004000-0000000000005fff vram @0",
                    "NEW log_start 0000000000004000-0000000000005fff vram @0 old=0 new=1",
                    "NEW commit"), events());

            as.unregisterListener(fresh);
            assertEquals(List.of(
                    "NEW begin",
                    "NEW del 0000000000001000-0000000000001fff a @0",
                    "NEW log_stop 0000000000004000-0000000000005fff vram @0 old=1 new=0",
                    "NEW del 0000000000004000-0000000000005fff vram @0",
                    "NEW commit"), events());
        }

        @Test
        void aRegionLoggedInTwoSpacesIsStartedSpaceBySpace() {
            MemoryRegion gpuRoot = sys.container("gpu-root", 0x100000);
            gpuRoot.addSubregion(0x80000, sys.alias("gpu-vram", vram, 0x1000, 0x1000));
            AddressSpace gpu = sys.addressSpace("gpu", gpuRoot);
            listen("M", 0);
            listen(gpu, "G", -1);

            vram.setLog(true, DirtyMemoryClient.VGA);
            // begin and commit go to every listener in priority order; the spaces follow in creation order.
            assertEquals(List.of(
                    "G begin",
                    "M begin",
                    "M nop 0000000000001000-0000000000001fff a @0",
                    "M nop 0000000000004000-0000000000005fff vram @0",
                    "M log_start 0000000000004000-0000000000005fff vram @0 old=0 new=1",
                    "G nop 0000000000080000-0000000000080fff vram @1000",
                    "G log_start 0000000000080000-0000000000080fff vram @1000 old=0 new=1",
                    "G commit",
                    "M commit"), events());
        }
    }
}
