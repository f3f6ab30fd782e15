package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * {@link MemoryRegion#destroy()}: when a RAM block's memory is freed (after the commit, after the last mapping or
 * cache, after a grace period), that it is freed exactly once, what a kept segment does afterwards, and what a
 * destroyed region refuses. Memory is freed on the global RCU domain's reclaimer; {@code rcu.barrier()} waits for it.
 */
class RamFreeTest {
    private static final long SIZE = 0x10000;

    /** A backend whose frees are counted, over memory in a shared arena that its free closes. */
    static final class CountingBlock extends AbstractRamBlock {
        final Arena arena = Arena.ofShared();
        final MemorySegment memory;
        final AtomicInteger frees = new AtomicInteger();

        CountingBlock(String idstr, long size) {
            super(idstr, size, Set.of());
            memory = arena.allocate(size, 4096);
        }

        @Override
        public MemorySegment hostSegment() {
            return memory;
        }

        @Override
        protected boolean mayFault() {
            return false; // an Arena's memory: nothing outside the JVM can shrink it
        }

        @Override
        protected void freeMemory() {
            frees.incrementAndGet();
            arena.close(); // a second call would throw, and the reclaimer would log it; the count shows it first
        }
    }

    private final java.util.List<CountingBlock> made = new java.util.ArrayList<>();
    private final MemorySystem sys = new MemorySystem((name, size) -> {
        CountingBlock b = new CountingBlock(name, size);
        made.add(b);
        return b;
    });
    private final MemoryRegion root = sys.container("root", -1);
    private final AddressSpace as = sys.addressSpace("as", root);

    private CountingBlock blockOf(MemoryRegion mr) {
        return (CountingBlock) mr.ramBlock();
    }

    @Test
    void anUnmappedRegionsMemoryIsFreedOnceAfterAGracePeriod() {
        MemoryRegion ram = sys.ram("ram", SIZE);
        root.addSubregion(0x1000_0000L, ram);
        as.stqLe(0x1000_0000L, 0x1122_3344_5566_7788L, MemTxAttrs.UNSPECIFIED);
        MemorySegment kept = ram.ramSegment();
        root.delSubregion(ram);
        ram.destroy();
        assertTrue(ram.isDestroyed());
        sys.rcu().barrier();

        CountingBlock b = blockOf(ram);
        assertEquals(1, b.frees.get());
        assertTrue(b.isReleased());
        // The block left the ram_addr space: its name and range are free.
        assertNull(sys.ramList().blockByName("ram"));
        assertNull(sys.ramList().blockByRamAddr(b.offset()));
        // A segment kept past the free fails cleanly instead of reading freed memory.
        assertThrows(IllegalStateException.class, () -> kept.get(ValueLayout.JAVA_LONG, 0));
        // And the guest sees a hole where the region was.
        int[] r = new int[1];
        assertEquals(0, as.ldqLe(0x1000_0000L, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(MemTxResult.DECODE_ERROR, r[0]);
        // A new block may take the name again.
        assertEquals("ram", sys.ram("ram", SIZE).ramBlock().idstr());
    }

    @Test
    void anonymousRamClosesItsArenaWhenDestroyed() {
        MemorySystem anon = new MemorySystem();
        MemoryRegion ram = anon.ram("ram", SIZE);
        MemorySegment kept = ram.ramSegment();
        kept.set(ValueLayout.JAVA_LONG, 8, 42);
        ram.destroy();
        anon.rcu().barrier();
        assertTrue(((AbstractRamBlock) ram.ramBlock()).isReleased());
        assertFalse(kept.scope().isAlive());
        assertThrows(IllegalStateException.class, () -> kept.get(ValueLayout.JAVA_LONG, 8));
    }

    @Test
    void memoryCallersOwnIsNeverFreed() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mine = arena.allocate(SIZE);
            MemorySystem s = new MemorySystem();
            MemoryRegion ram = s.ramFromSegment("mine", mine);
            ram.destroy();
            s.rcu().barrier();
            assertTrue(((AbstractRamBlock) ram.ramBlock()).isReleased());
            mine.set(ValueLayout.JAVA_LONG, 0, 7); // still the caller's
            assertEquals(7, mine.get(ValueLayout.JAVA_LONG, 0));
        }
    }

    @Test
    void freeingWaitsForTheCommitThatUnmapsTheRegion() throws InterruptedException {
        MemoryRegion ram = sys.ram("ram", SIZE);
        root.addSubregion(0, ram);
        sys.begin();
        root.delSubregion(ram);
        ram.destroy();
        // The published view still maps the region until this transaction commits.
        Thread.ofPlatform().start(() -> sys.rcu().barrier()).join(10_000);
        assertEquals(0, blockOf(ram).frees.get(), "freed while a published view still mapped it");
        assertSame(ram, as.translate(0, 8, false, MemTxAttrs.UNSPECIFIED).region());
        sys.commit();
        sys.rcu().barrier();
        assertEquals(1, blockOf(ram).frees.get());
    }

    @Test
    void aReaderInsideASectionKeepsTheMemory() throws InterruptedException {
        MemoryRegion ram = sys.ram("ram", SIZE);
        root.addSubregion(0, ram);
        as.stqLe(0x100, 0xfeed, MemTxAttrs.UNSPECIFIED);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch leave = new CountDownLatch(1);
        long[] seen = new long[2];
        Thread reader = Thread.ofPlatform().start(() -> {
            try (Rcu.Reader r = sys.rcu().register()) {
                r.lock();
                MemorySegment seg = as.translate(0x100, 8, false, MemTxAttrs.UNSPECIFIED).region().ramSegment();
                seen[0] = seg.get(ValueLayout.JAVA_LONG_UNALIGNED, 0x100);
                inside.countDown();
                awaitQuietly(leave);
                seen[1] = seg.get(ValueLayout.JAVA_LONG_UNALIGNED, 0x100); // after the destroy: still valid
                r.unlock();
            }
        });
        assertTrue(inside.await(10, TimeUnit.SECONDS));
        root.delSubregion(ram);
        ram.destroy();
        Thread.sleep(200);
        assertEquals(0, blockOf(ram).frees.get(), "freed while a reader that reached it was inside a section");
        leave.countDown();
        reader.join(10_000);
        sys.rcu().barrier();
        assertEquals(1, blockOf(ram).frees.get());
        assertEquals(0xfeed, seen[0]);
        assertEquals(0xfeed, seen[1]);
    }

    @Test
    void aDirectDmaMappingKeepsTheMemoryUntilUnmap() {
        MemoryRegion ram = sys.ram("ram", SIZE);
        root.addSubregion(0, ram);
        DmaMapping m = as.map(0x200, 0x100, true, MemTxAttrs.UNSPECIFIED);
        assertNotNull(m);
        assertEquals(2, blockOf(ram).refCount());
        root.delSubregion(ram);
        ram.destroy();
        sys.rcu().barrier();
        assertEquals(0, blockOf(ram).frees.get(), "freed under a live DMA mapping");
        m.segment().set(ValueLayout.JAVA_BYTE, 0, (byte) 1); // the device may still write
        as.unmap(m, true, 1);
        sys.rcu().barrier();
        assertEquals(1, blockOf(ram).frees.get());
    }

    @Test
    void aCacheKeepsTheMemoryUntilDestroyed() {
        MemoryRegion ram = sys.ram("ram", SIZE);
        root.addSubregion(0, ram);
        MemoryRegionCache c = MemoryRegionCache.init(as, 0, 0x1000, true);
        root.delSubregion(ram);
        ram.destroy();
        sys.rcu().barrier();
        assertEquals(0, blockOf(ram).frees.get(), "freed under a live cache");
        c.stqLe(8, 5, MemTxAttrs.UNSPECIFIED);
        assertEquals(5, c.ldqLe(8, MemTxAttrs.UNSPECIFIED, null));
        c.destroy();
        c.destroy(); // a second destroy drops nothing more
        sys.rcu().barrier();
        assertEquals(1, blockOf(ram).frees.get());
    }

    @Test
    void mappingsMadeAfterTheFreeBeganUseTheCurrentMap() {
        MemoryRegion ram = sys.ram("ram", SIZE);
        root.addSubregion(0, ram);
        AddressSpaceDispatch stale = as.dispatch();
        root.delSubregion(ram);
        MemoryRegion next = sys.ram("next", SIZE);
        root.addSubregion(0, next);
        ram.destroy();
        sys.rcu().barrier();
        // A map begun on the old view finds the block being freed, takes no reference and maps what is there now.
        DmaMapping m = as.mapOn(stale, 0, 0x10, true, MemTxAttrs.UNSPECIFIED);
        assertSame(next, m.region);
        as.unmap(m, true, 0);
        assertEquals(0, blockOf(ram).refCount());
    }

    @Test
    void aDestroyedRegionRefusesToBeMappedAgain() {
        MemoryRegion ram = sys.ram("ram", SIZE);
        ram.destroy();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> root.addSubregion(0, ram));
        assertTrue(e.getMessage().contains("subregion=ram: the region was destroyed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> sys.alias("a", ram, 0, 16));
        assertThrows(IllegalStateException.class, () -> sys.addressSpace("x", ram));
        e = assertThrows(IllegalStateException.class, ram::destroy);
        assertTrue(e.getMessage().contains("region=ram: the region was destroyed"), e.getMessage());
        MemoryRegion c = sys.container("c", SIZE);
        c.destroy();
        assertThrows(IllegalStateException.class, () -> c.addSubregion(0, sys.ram("r2", 16)));
    }

    @Test
    void whatIsStillInUseCannotBeDestroyed() {
        MemoryRegion ram = sys.ram("ram", SIZE);
        root.addSubregion(0x4000, ram);
        IllegalStateException e = assertThrows(IllegalStateException.class, ram::destroy);
        assertEquals("region=ram container=root: a mapped region cannot be destroyed; delSubregion it first",
                e.getMessage());
        root.delSubregion(ram);
        MemoryRegion alias = sys.alias("alias", ram, 0, 0x100);
        e = assertThrows(IllegalStateException.class, ram::destroy);
        assertTrue(e.getMessage().contains("alias=alias"), e.getMessage());
        e = assertThrows(IllegalStateException.class, root::destroy);
        assertTrue(e.getMessage().contains("addressSpace=as"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> sys.unassignedRegion().destroy());
        assertFalse(ram.isDestroyed());
        // Destroying the alias releases its hold on the target.
        alias.destroy();
        ram.destroy();
        sys.rcu().barrier();
        assertEquals(1, blockOf(ram).frees.get());
    }

    @Test
    void aDestroyedContainerLetsGoOfItsSubregions() {
        MemoryRegion c = sys.container("c", SIZE);
        MemoryRegion ram = sys.ram("ram", 0x1000);
        c.addSubregion(0x100, ram);
        c.destroy();
        assertNull(ram.container());
        root.addSubregion(0, ram); // usable elsewhere
        as.stb(0, 1, MemTxAttrs.UNSPECIFIED);
        assertEquals(1, as.ldub(0, MemTxAttrs.UNSPECIFIED, null));
    }

    private static void awaitQuietly(CountDownLatch l) {
        try {
            l.await();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }
}
