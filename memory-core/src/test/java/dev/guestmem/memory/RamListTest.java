package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The ram_addr space: QEMU's find_ram_offset placement, lookups by ram_addr and by host address, and names. */
class RamListTest {
    private static final long ALIGN = 64L << 12;

    @Test
    void blocksFollowFindRamOffsetInAllocationOrder() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        RamList list = sys.ramList();
        assertEquals(ALIGN, list.alignment());
        assertEquals(0, list.lastRamPage());
        MemoryRegion a = sys.ram("a", 0x1000);
        MemoryRegion b = sys.ram("b", ALIGN + 1);
        MemoryRegion c = sys.rom("c", 0x10);
        MemoryRegion d = sys.romDevice("d", ALIGN, MemoryRegionOps.builder().build());
        assertEquals(0, a.ramBlock().offset());
        assertEquals(ALIGN, b.ramBlock().offset());
        assertEquals(3 * ALIGN, c.ramBlock().offset(), "b's end rounded up to 64 pages");
        assertEquals(4 * ALIGN, d.ramBlock().offset());
        assertEquals(5 * ALIGN >>> 12, list.lastRamPage());
        assertEquals(List.of(a.ramBlock(), b.ramBlock(), c.ramBlock(), d.ramBlock()), list.blocks());
    }

    @Test
    void theSmallestGapThatFitsIsReusedButNeverTheOneBelowTheFirstBlock() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        RamList list = sys.ramList();
        RamBlock[] blocks = new RamBlock[6];
        long[] sizes = {ALIGN, 3 * ALIGN, ALIGN, 2 * ALIGN, ALIGN, ALIGN};
        for (int i = 0; i < blocks.length; i++) {
            blocks[i] = sys.ram("b" + i, sizes[i]).ramBlock();
        }
        // b0 [0,1) b1 [1,4) b2 [4,5) b3 [5,7) b4 [7,8) b5 [8,9) in units of ALIGN
        assertTrue(list.remove(blocks[1]));
        assertTrue(list.remove(blocks[3]));
        assertTrue(list.remove(blocks[0]));
        // Gaps now: [1,4) after nothing (below b2, b0 is gone: not a candidate), [5,7) after b2, [9,end) after b5.
        assertEquals(5 * ALIGN, sys.ram("x", ALIGN).ramBlock().offset(), "the 2-unit gap is the smallest that fits");
        assertEquals(6 * ALIGN, sys.ram("y", 1).ramBlock().offset(), "then what is left of it");
        assertEquals(9 * ALIGN, sys.ram("z", 2 * ALIGN).ramBlock().offset(), "the space below b2 is never reused");
        assertNull(list.blockByRamAddr(0));
        assertNull(list.blockByRamAddr(ALIGN));
        assertEquals(11 * ALIGN >>> 12, list.lastRamPage());
    }

    @Test
    void equalGapsGoToTheLargestBlockFirstAsInQemusListOrder() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        RamList list = sys.ramList();
        RamBlock small = sys.ram("small", ALIGN).ramBlock();            // [0,1)
        RamBlock hole1 = sys.ram("hole1", ALIGN).ramBlock();            // [1,2)
        RamBlock big = sys.ram("big", 2 * ALIGN).ramBlock();            // [2,4)
        RamBlock hole2 = sys.ram("hole2", ALIGN).ramBlock();            // [4,5)
        sys.ram("tail", ALIGN);                                          // [5,6)
        list.remove(hole1);
        list.remove(hole2);
        // Two 1-unit gaps: after small at 1 and after big at 4; QEMU's list is largest first, so big's gap wins.
        assertEquals(4 * ALIGN, sys.ram("n", ALIGN).ramBlock().offset());
        assertEquals(ALIGN, sys.ram("m", ALIGN).ramBlock().offset());
        assertSame(small, list.blockByRamAddr(ALIGN - 1));
        assertSame(big, list.blockByRamAddr(2 * ALIGN));
    }

    @Test
    void offsetsAreAlignedTo64TargetPages() {
        for (int pageBits : new int[] {10, 12, 16}) {
            MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY, false, pageBits);
            long align = 64L << pageBits;
            assertEquals(align, sys.ramList().alignment());
            Random rnd = new Random(pageBits);
            for (int i = 0; i < 50; i++) {
                RamBlock b = sys.ram("r" + i, 1 + rnd.nextInt(3 * (int) align)).ramBlock();
                assertEquals(0, b.offset() % align, "pageBits=" + pageBits + " block=" + b);
            }
        }
    }

    @Test
    void layoutOnlyBlocksGetRangesAndTheSpaceEndsBelow2To64() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        RamBlock first = sys.ram("first", Long.MAX_VALUE).ramBlock();
        RamBlock second = sys.ram("second", Long.MAX_VALUE - ALIGN).ramBlock();
        assertEquals(0, first.offset());
        assertEquals(Long.MIN_VALUE, second.offset(), "2^63: the first block's end rounded up");
        assertSame(second, sys.ramList().blockByRamAddr(-2L - ALIGN));
        assertNull(sys.ramList().blockByRamAddr(-1L));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> sys.ram("third", ALIGN));
        assertTrue(e.getMessage().contains("size=0x40000"), e.getMessage());
    }

    @Test
    void blockNamesAreMadeUniqueWithinTheMemorySystem() {
        MemorySystem sys = new MemorySystem();
        RamBlock pc = sys.ram("pc.ram", 0x1000).ramBlock();
        // Two devices may both call their RAM "vga.vram" (QEMU tells them apart by the owner's path): the second
        // block gets a suffix, and both regions keep the name they were given.
        MemoryRegion second = sys.rom("pc.ram", 0x1000);
        MemoryRegion third = sys.ramFromSegment("pc.ram", Arena.ofAuto().allocate(0x1000));
        assertEquals("pc.ram", second.name());
        assertEquals("pc.ram#2", second.ramBlock().idstr());
        assertEquals("pc.ram#3", third.ramBlock().idstr());
        assertSame(pc, sys.ramList().blockByName("pc.ram"));
        assertSame(second.ramBlock(), sys.ramList().blockByName("pc.ram#2"));
        sys.ramList().remove(pc);
        assertNull(sys.ramList().blockByName("pc.ram"));
        assertEquals("pc.ram", sys.ram("pc.ram", 0x1000).ramBlock().idstr(), "a removed block's name is free again");
    }

    @Test
    void flagsSayWhatKindOfMemoryABlockIs() {
        MemorySystem sys = new MemorySystem();
        assertEquals(Set.of(), sys.ram("anon", 0x1000).ramBlock().flags());
        assertEquals(Set.of(RamFlag.PREALLOC),
                sys.ramFromSegment("mine", Arena.ofAuto().allocate(0x1000)).ramBlock().flags());
        assertEquals(Set.of(RamFlag.RESIZEABLE), sys.resizeableRam("rs", 0x1000, 0x4000, null).ramBlock().flags());
        assertThrows(UnsupportedOperationException.class, () -> sys.ram("x", 1).ramBlock().flags().add(RamFlag.SHARED));
    }

    /** Every block's first and last byte and the bytes just outside them, for {@link #lookupsAtEveryEdge}. */
    private static void checkRamAddrEdges(RamList list) {
        List<RamBlock> blocks = list.blocks();
        for (RamBlock b : blocks) {
            long first = b.offset();
            long last = first + b.maxLength() - 1;
            for (long a : new long[] {first - 1, first, first + 1, last - 1, last, last + 1}) {
                assertSame(bruteForceByRamAddr(blocks, a), list.blockByRamAddr(a), "ramAddr=" + U64.hex(a));
            }
        }
    }

    private static RamBlock bruteForceByRamAddr(List<RamBlock> blocks, long a) {
        for (RamBlock b : blocks) {
            if (Long.compareUnsigned(a - b.offset(), b.maxLength()) < 0) {
                return b;
            }
        }
        return null;
    }

    @Test
    void lookupsAtEveryEdge() {
        MemorySystem sys = new MemorySystem();
        RamList list = sys.ramList();
        Random rnd = new Random(7);
        ArrayList<RamBlock> live = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            live.add(sys.ram("r" + i, 1 + rnd.nextInt(0x90000)).ramBlock());
            if (rnd.nextInt(4) == 0) {
                list.remove(live.remove(rnd.nextInt(live.size())));
            }
        }
        checkRamAddrEdges(list);
        assertEquals(live.size(), list.blocks().size());

        for (RamBlock b : live) {
            MemorySegment host = b.hostSegment();
            long start = host.address();
            long end = start + b.maxLength();
            assertHost(list, b, 0, start);
            assertHost(list, b, b.maxLength() - 1, end - 1);
            if (b.maxLength() > 1) {
                assertHost(list, b, 1, start + 1);
                assertHost(list, b, b.maxLength() - 2, end - 2);
            }
            assertSame(b, list.blockFromHost(host.asSlice(b.maxLength() - 1)).block());
            assertEquals(b.offset() + b.maxLength() - 1, list.ramAddrFromHost(end - 1));
            for (long outside : new long[] {start - 1, end}) {
                RamList.HostOffset found = list.blockFromHost(outside);
                assertTrue(found == null || found.block() != b, "block=" + b + " host=" + Long.toHexString(outside));
            }
        }
        assertNull(list.blockFromHost(MemorySegment.ofArray(new byte[16])));
    }

    private static void assertHost(RamList list, RamBlock b, long offset, long host) {
        RamList.HostOffset found = list.blockFromHost(host);
        assertNotNull(found, "block=" + b + " offset=" + offset);
        assertSame(b, found.block());
        assertEquals(offset, found.offset());
    }

    @Test
    void hostLookupsOverSlicesOfOneSegment() {
        // Adjacent and overlapping host ranges: the block whose memory starts highest among those holding the byte.
        MemorySystem sys = new MemorySystem();
        MemorySegment mem = Arena.ofAuto().allocate(0x10000, 4096);
        RamBlock whole = sys.ramFromSegment("whole", mem).ramBlock();
        RamBlock low = sys.ramFromSegment("low", mem.asSlice(0, 0x4000)).ramBlock();
        RamBlock mid = sys.ramDevice("mid", mem.asSlice(0x4000, 0x4000)).ramBlock();
        RamList list = sys.ramList();
        long base = mem.address();
        assertSame(low, list.blockFromHost(base).block());
        assertSame(low, list.blockFromHost(base + 0x3fff).block());
        assertSame(mid, list.blockFromHost(base + 0x4000).block());
        assertEquals(0x3fff, list.blockFromHost(base + 0x7fff).offset());
        assertSame(whole, list.blockFromHost(base + 0x8000).block());
        assertEquals(0x8000, list.blockFromHost(base + 0x8000).offset());
        assertSame(whole, list.blockFromHost(base + 0xffff).block());
        assertNull(list.blockFromHost(base + 0x10000));
        assertNull(list.blockFromHost(base - 1));
        assertEquals(whole.offset() + 0x8000, list.ramAddrFromHost(base + 0x8000));
        assertEquals(RamList.INVALID_RAM_ADDR, list.ramAddrFromHost(base - 1));
    }

    @Test
    void blocksMadeInATransactionArePublishedByItsCommit() {
        MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        sys.begin();
        RamBlock b;
        try {
            b = sys.ram("late", 0x1000).ramBlock();
            assertEquals(0, b.offset(), "placed at once");
        } finally {
            sys.commit();
        }
        assertSame(b, sys.ramList().blockByRamAddr(0xfff));
    }

    /**
     * Readers look blocks up while a writer adds them. Forbidden: a lookup returns a block that does not hold the
     * address; a block whose add had returned before the lookup began is not found; a snapshot of the list is
     * unsorted or overlapping.
     */
    @Test
    void readersNeverSeeATornListWhileBlocksAreAdded() throws Exception {
        MemorySystem sys = new MemorySystem();
        RamList list = sys.ramList();
        int blocks = 3000;
        RamBlock[] made = new RamBlock[blocks];
        java.util.concurrent.atomic.AtomicInteger published = new java.util.concurrent.atomic.AtomicInteger();
        AtomicReference<String> failure = new AtomicReference<>();
        Thread[] readers = new Thread[3];
        for (int t = 0; t < readers.length; t++) {
            final long seed = t;
            readers[t] = new Thread(() -> {
                Random rnd = new Random(seed);
                while (published.get() < blocks && failure.get() == null) {
                    int n = published.get(); // blocks [0, n) were added before this lookup
                    if (n == 0) {
                        continue;
                    }
                    RamBlock want = made[rnd.nextInt(n)];
                    long edge = switch (rnd.nextInt(3)) {
                        case 0 -> 0;
                        case 1 -> want.maxLength() - 1;
                        default -> rnd.nextLong(want.maxLength());
                    };
                    RamBlock got = list.blockByRamAddr(want.offset() + edge);
                    if (got != want) {
                        failure.set("ramAddr lookup of " + want + " edge=" + edge + " found " + got);
                    }
                    RamList.HostOffset h = list.blockFromHost(want.hostSegment().address() + edge);
                    if (h == null || h.block() != want || h.offset() != edge) {
                        failure.set("host lookup of " + want + " edge=" + edge + " found " + h);
                    }
                    long probe = rnd.nextLong(list.lastRamPage() << 12 | 1);
                    RamBlock any = list.blockByRamAddr(probe);
                    if (any != null && Long.compareUnsigned(probe - any.offset(), any.maxLength()) >= 0) {
                        failure.set("ramAddr=" + U64.hex(probe) + " found " + any + ", which does not hold it");
                    }
                    if ((rnd.nextInt(64)) == 0) {
                        List<RamBlock> snap = list.blocks();
                        for (int i = 1; i < snap.size(); i++) {
                            RamBlock p = snap.get(i - 1);
                            if (Long.compareUnsigned(p.offset() + p.maxLength(), snap.get(i).offset()) > 0) {
                                failure.set("blocks overlap or are unsorted: " + p + " " + snap.get(i));
                            }
                        }
                    }
                }
            }, "ramlist-reader-" + t);
            readers[t].start();
        }
        Random rnd = new Random(42);
        for (int i = 0; i < blocks && failure.get() == null; i++) {
            made[i] = sys.ram("b" + i, 1 + rnd.nextInt(0x50000)).ramBlock();
            published.set(i + 1); // volatile: readers that see i + 1 see made[i] and its publication
        }
        published.set(blocks);
        for (Thread t : readers) {
            t.join();
        }
        assertNull(failure.get());
        checkRamAddrEdges(list);
    }
}
