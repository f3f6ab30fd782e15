package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Proves when a transaction publishes: only the outermost commit renders, a transaction whose changes cancel out
 * publishes nothing, an address space is republished only when its own ranges change, address spaces whose roots
 * render the same tree share one {@link FlatView} object, and a published view never changes under a reader.
 *
 * <p>Where this comes from (QEMU 7.2, {@code softmmu/memory.c}): {@code memory_region_transaction_begin} only counts
 * depth; {@code memory_region_transaction_commit} does the work when the depth returns to zero and an update is
 * pending, calling every listener's {@code begin}, setting each address space's flat view, then every listener's
 * {@code commit}. Views are shared through {@code flat_views}, keyed by {@code memory_region_get_flatview_root},
 * which looks through aliases of a whole region at offset 0 and containers whose single enabled child covers them
 * from offset 0. A published view is immutable and freed through RCU, so a reader keeps a consistent snapshot.
 *
 * <p>guestmem's documented difference: where QEMU renders a fresh view for every address space on every commit,
 * guestmem keeps the view object when its ranges are identical and then tells that address space's listeners
 * nothing; begin/commit still reach every listener, as in QEMU.
 */
class TransactionTest {
    private MemorySystem sys;
    private MemoryRegion root;
    private AddressSpace as;
    private RecordingListener l1;

    @BeforeEach
    void setUp() {
        sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        root = sys.container("root", 0x10000);
        root.addSubregion(0, sys.ram("low", 0x1000));
        root.addSubregion(0x8000, sys.ram("high", 0x1000));
        as = sys.addressSpace("mem", root);
        l1 = new RecordingListener("L1");
        as.registerListener(l1);
        l1.take();
    }

    @Test
    void nestedTransactionsRenderOnlyAtTheOutermostCommit() {
        FlatView before = as.flatView();
        long generation = as.generation();
        MemoryRegion a = sys.ram("a", 0x1000);
        MemoryRegion b = sys.ram("b", 0x1000);

        sys.begin();
        root.addSubregion(0x2000, a);            // a mutator is a transaction of its own, nested here
        sys.begin();
        root.addSubregion(0x4000, b);
        sys.commit();                            // inner commit: nothing may happen yet
        assertEquals(List.of(), l1.take());
        assertSame(before, as.flatView());
        assertEquals(generation, as.generation());
        assertNull(before.lookup(0x2000));
        assertTrue(sys.inTransaction());

        sys.commit();                            // outermost commit renders both changes at once
        assertFalse(sys.inTransaction());
        assertEquals(List.of(
                "L1 begin",
                "L1 nop 0000000000000000-0000000000000fff low @0",
                "L1 add 0000000000002000-0000000000002fff a @0",
                "L1 add 0000000000004000-0000000000004fff b @0",
                "L1 nop 0000000000008000-0000000000008fff high @0",
                "L1 commit"), l1.take());
        FlatView after = as.flatView();
        assertNotSame(before, after);
        assertNotEquals(generation, as.generation());
        assertSame(a, after.lookup(0x2000).region());
        assertSame(b, after.lookup(0x4000).region());
    }

    @Test
    void aReaderOnAnotherThreadSeesTheOldViewWhileATransactionIsOpen() throws Exception {
        FlatView before = as.flatView();
        sys.begin();
        try {
            root.addSubregion(0x2000, sys.ram("a", 0x1000));
            // Readers take no lock: this must return at once, with the view published before the transaction.
            FlatView seen = CompletableFuture.supplyAsync(as::flatView).get(10, TimeUnit.SECONDS);
            assertSame(before, seen);
        } finally {
            sys.commit();
        }
        assertNotSame(before, as.flatView());
    }

    @Test
    void changesThatCancelOutPublishNothingNew() {
        MemoryRegion high = root.subregions().stream().filter(r -> r.name().equals("high")).findFirst().orElseThrow();
        FlatView before = as.flatView();
        long generation = as.generation();

        sys.transaction(() -> {
            high.setEnabled(false);
            high.setEnabled(true);
            high.setAddress(0x9000);
            high.setAddress(0x8000);
        });
        // An update was pending, so begin/commit go out as in QEMU, but no region callback and no new view.
        assertEquals(List.of("L1 begin", "L1 commit"), l1.take());
        assertSame(before, as.flatView());
        assertEquals(generation, as.generation());
    }

    @Test
    void mutatorsThatChangeNothingDoNotRender() {
        MemoryRegion backing = sys.ram("backing", 0x2000);
        MemoryRegion win = sys.alias("win", backing, 0x1000, 0x1000);
        MemoryRegion flash = sys.romDevice("flash", 0x1000, MemoryRegionOps.UNASSIGNED);
        root.addSubregion(0x2000, win);
        root.addSubregion(0x4000, flash);
        l1.take();
        FlatView before = as.flatView();
        long generation = as.generation();

        win.setEnabled(true);
        win.setAddress(0x2000);
        win.setSize(0x1000);
        win.setAliasOffset(0x1000);
        win.setReadonly(false);
        win.setNonvolatile(false);
        win.setUnmergeable(false);
        flash.setRomd(true);
        sys.transaction(() -> { });

        assertEquals(List.of(), l1.take(), "no begin/commit without a pending update");
        assertSame(before, as.flatView());
        assertEquals(generation, as.generation());
    }

    @Test
    void aChangeInOneSpaceDoesNotRepublishAnUnrelatedSpace() {
        MemoryRegion ioRoot = sys.container("ioroot", 0x10000);
        ioRoot.addSubregion(0x60, sys.io("kbd", 0x10, MemoryRegionOps.UNASSIGNED));
        ioRoot.addSubregion(0x3f8, sys.io("serial", 0x8, MemoryRegionOps.UNASSIGNED));
        AddressSpace io = sys.addressSpace("io", ioRoot);
        RecordingListener x = new RecordingListener("X");
        io.registerListener(x);
        x.take();
        FlatView ioBefore = io.flatView();
        long ioGeneration = io.generation();
        FlatView memBefore = as.flatView();

        root.addSubregion(0x2000, sys.ram("a", 0x1000));
        root.addSubregion(0x4000, sys.ram("b", 0x1000));

        assertNotSame(memBefore, as.flatView());
        assertSame(ioBefore, io.flatView(), "the io space's ranges did not change");
        assertEquals(ioGeneration, io.generation());
        assertEquals(List.of("X begin", "X commit", "X begin", "X commit"), x.take());
    }

    @Test
    void spacesWithTheSameRootShareOneView() {
        AddressSpace twin = sys.addressSpace("twin", root);
        assertSame(as.flatView(), twin.flatView(), "a new space over an existing root joins its view");

        root.addSubregion(0x2000, sys.ram("a", 0x1000));
        assertSame(as.flatView(), twin.flatView(), "both get the one view rendered at commit");
        assertSame(root, as.flatView().root());
    }

    @Test
    void twoNewSpacesOverAFreshRootShareOneView() {
        MemoryRegion pci = sys.container("pci", 0x100000);
        pci.addSubregion(0x1000, sys.ram("bar0", 0x1000));
        pci.addSubregion(0x4000, sys.ram("bar1", 0x1000));
        AddressSpace first = sys.addressSpace("pci-a", pci);
        AddressSpace second = sys.addressSpace("pci-b", pci);
        assertSame(first.flatView(), second.flatView());
    }

    @Test
    void trivialAliasesOfOneRegionShareItsView() {
        // QEMU's flatview-root rule: an alias showing all of its target from offset 0 renders as the target.
        MemoryRegion whole1 = sys.alias("whole1", root, 0, 0x10000);
        MemoryRegion whole2 = sys.alias("whole2", root, 0, 0x10000);
        MemoryRegion shifted = sys.alias("shifted", root, 0x1000, 0xf000);
        AddressSpace viaAlias1 = sys.addressSpace("alias1", whole1);
        AddressSpace viaAlias2 = sys.addressSpace("alias2", whole2);
        AddressSpace viaShift = sys.addressSpace("shift", shifted);

        assertSame(as.flatView(), viaAlias1.flatView());
        assertSame(as.flatView(), viaAlias2.flatView());
        assertNotSame(as.flatView(), viaShift.flatView(), "an alias at another offset renders differently");
        assertSame(root, viaAlias2.flatView().root());

        root.addSubregion(0x2000, sys.ram("a", 0x1000));
        assertSame(as.flatView(), viaAlias1.flatView());
        assertSame(as.flatView(), viaAlias2.flatView());
        assertNotSame(as.flatView(), viaShift.flatView());
    }

    @Test
    void aContainerWhoseOnlyChildCoversItSharesTheChildsView() {
        MemoryRegion wrapper = sys.container("wrapper", 0x10000);
        wrapper.addSubregion(0, sys.alias("sysmem", root, 0, 0x10000));
        AddressSpace wrapped = sys.addressSpace("wrapped", wrapper);
        assertSame(as.flatView(), wrapped.flatView());
    }

    @Test
    void commitWithoutBeginThrows() {
        IllegalStateException e = assertThrows(IllegalStateException.class, sys::commit);
        assertTrue(e.getMessage().contains("commit without begin"), e.getMessage());
        assertFalse(sys.inTransaction());
        // The system still works afterwards.
        root.addSubregion(0x2000, sys.ram("a", 0x1000));
        assertSame("a", as.flatView().lookup(0x2000).region().name());
    }

    @Test
    void commitFromAnotherThreadThanTheOneThatBeganThrows() throws Exception {
        sys.begin();
        try {
            Throwable thrown = CompletableFuture.supplyAsync(() -> {
                try {
                    sys.commit();
                    return null;
                } catch (Throwable t) {
                    return t;
                }
            }).get(10, TimeUnit.SECONDS);
            assertTrue(thrown instanceof IllegalStateException, String.valueOf(thrown));
            assertTrue(sys.inTransaction(), "the owner's transaction is still open");
        } finally {
            sys.commit();
        }
    }

    @Test
    void aReaderHoldingAnOldViewKeepsAnUnchangedSnapshot() throws Exception {
        MemoryRegion low = as.flatView().lookup(0).region();
        CountDownLatch loaded = new CountDownLatch(1);
        CountDownLatch committed = new CountDownLatch(1);

        CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> {
            FlatView held = as.flatView();
            List<FlatRange> snapshot = List.copyOf(held.ranges());
            loaded.countDown();
            await(committed);
            // The writer has moved, added and disabled regions; the held view must be exactly as loaded.
            assertEquals(snapshot, held.ranges());
            assertSame(low, held.lookup(0).region());
            assertNull(held.lookup(0x2000));
            assertEquals("high", held.lookup(0x8000).region().name());
            // A fresh load sees the writer's commit.
            FlatView now = as.flatView();
            assertNotSame(held, now);
            assertNull(now.lookup(0));
            assertEquals("a", now.lookup(0x2000).region().name());
            assertEquals("low", now.lookup(0xc000).region().name());
        });

        await(loaded);
        sys.transaction(() -> {
            low.setAddress(0xc000);
            root.addSubregion(0x2000, sys.ram("a", 0x1000));
        });
        root.subregions().stream().filter(r -> r.name().equals("high")).findFirst().orElseThrow().setEnabled(false);
        committed.countDown();
        reader.get(10, TimeUnit.SECONDS);
    }

    private static void await(CountDownLatch latch) {
        try {
            if (!latch.await(10, TimeUnit.SECONDS)) {
                throw new AssertionError("timed out waiting for the other thread");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
