package dev.guestmem.offheap.internal.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.BulkCopier;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.offheap.HostMemoryBackend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * memory-offheap's {@link BulkCopier}: {@code memmove} through a critical downcall, with every check that keeps native
 * code from hurting the JVM made in Java first. Real memory throughout: arenas, and memfds another party truncates.
 */
class MemmoveTest {
    /** The copier with a threshold of one byte, so that every size below takes the native call. */
    private static final Memmove ALWAYS = (Memmove) Memmove.open(1).orElseThrow();

    @Test
    void memmoveIsInstalledUnlessTheJdkCopyIsAskedFor() {
        if ("jdk".equals(System.getProperty("guestmem.copy"))) {
            assertSame(BulkCopier.jdk(), BulkCopier.installed());
        } else {
            assertEquals("memmove (critical downcall) from " + Memmove.THRESHOLD + " bytes",
                    BulkCopier.installed().name());
        }
    }

    @Test
    void copiesEverySizeBetweenSegmentsAndWithinOneThatOverlaps() {
        SplittableRandom rnd = new SplittableRandom(10);
        for (long size : new long[] {1, 7, 64, 1023, 1024, 4096, Memmove.MAX_CALL + 4097}) {
            try (Arena arena = Arena.ofShared()) {
                byte[] data = new byte[(int) (3 * size)];
                rnd.nextBytes(data);
                MemorySegment src = arena.allocate(size + 16);
                MemorySegment dst = arena.allocate(size + 16);
                MemorySegment.copy(data, 0, src, ValueLayout.JAVA_BYTE, 0, (int) size + 16 > data.length
                        ? data.length : (int) size + 16);
                ALWAYS.copy(src, 3, dst, 5, size);
                assertEquals(-1, MemorySegment.mismatch(src, 3, 3 + size, dst, 5, 5 + size), "size=" + size);
                assertEquals(0, dst.get(ValueLayout.JAVA_BYTE, 4), "nothing before the range");
                assertEquals(0, dst.get(ValueLayout.JAVA_BYTE, 5 + size), "nothing after it");

                // Overlap either way, against System.arraycopy, which copies as if through a temporary.
                long shift = Math.max(1, size / 3);
                for (boolean up : new boolean[] {true, false}) {
                    MemorySegment one = arena.allocate(data.length);
                    MemorySegment.copy(data, 0, one, ValueLayout.JAVA_BYTE, 0, data.length);
                    byte[] expected = data.clone();
                    int from = up ? 0 : (int) shift;
                    int to = up ? (int) shift : 0;
                    System.arraycopy(expected, from, expected, to, (int) size);
                    ALWAYS.copy(one, from, one, to, size);
                    assertArrayEquals(expected, one.toArray(ValueLayout.JAVA_BYTE), "size=" + size + " up=" + up);
                }
            }
        }
    }

    @Test
    void wrongBoundsAreRefusedInOneLineAndNothingMoves() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(4096);
            MemorySegment dst = arena.allocate(4096);
            src.fill((byte) 1);
            IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                    () -> ALWAYS.copy(src, 1, dst, 0, 4096));
            assertEquals("srcOffset=1 bytes=4096 srcSize=4096: the range is not inside the segment", e.getMessage());
            e = assertThrows(IndexOutOfBoundsException.class, () -> ALWAYS.copy(src, 0, dst, -8, 16));
            assertEquals("dstOffset=-8 bytes=16 dstSize=4096: the range is not inside the segment", e.getMessage());
            e = assertThrows(IndexOutOfBoundsException.class, () -> ALWAYS.copy(src, 0, dst, 8, Long.MAX_VALUE));
            assertEquals("srcOffset=0 bytes=" + Long.MAX_VALUE + " srcSize=4096: the range is not inside the segment",
                    e.getMessage());
            assertEquals(-1, dst.mismatch(arena.allocate(4096)), "nothing was written");
        }
    }

    @Test
    void heapSegmentsReadOnlyDestinationsAndClosedSegmentsBehaveAsTheJdkCopy() {
        byte[] heap = new byte[4096];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment n = arena.allocate(4096);
            n.fill((byte) 9);
            ALWAYS.copy(n, 0, MemorySegment.ofArray(heap), 0, 4096);
            assertEquals(9, heap[4095]);
            heap[0] = 4;
            ALWAYS.copy(MemorySegment.ofArray(heap), 0, n, 0, 4096);
            assertEquals(4, n.get(ValueLayout.JAVA_BYTE, 0));

            MemorySegment readOnly = arena.allocate(4096).asReadOnly();
            RuntimeException jdk = assertThrows(RuntimeException.class,
                    () -> MemorySegment.copy(n, 0, readOnly, 0, 4096));
            RuntimeException ours = assertThrows(RuntimeException.class, () -> ALWAYS.copy(n, 0, readOnly, 0, 4096));
            assertSame(jdk.getClass(), ours.getClass());
        }
        Arena closed = Arena.ofShared();
        MemorySegment gone = closed.allocate(4096);
        closed.close();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment live = arena.allocate(4096);
            assertThrows(IllegalStateException.class, () -> ALWAYS.copy(live, 0, gone, 0, 4096));
            assertThrows(IllegalStateException.class, () -> ALWAYS.copy(gone, 0, live, 0, 4096));
        }
        // A confined segment from another thread: refused by the call's own check.
        try (Arena confined = Arena.ofConfined()) {
            MemorySegment mine = confined.allocate(4096);
            Throwable[] seen = new Throwable[1];
            Thread t = Thread.ofPlatform().start(() -> {
                try (Arena other = Arena.ofConfined()) {
                    ALWAYS.copy(mine, 0, other.allocate(4096), 0, 4096);
                } catch (Throwable e) {
                    seen[0] = e;
                }
            });
            join(t);
            assertTrue(seen[0] instanceof WrongThreadException, String.valueOf(seen[0]));
        }
    }

    @Test
    void aMemfdAnotherPartyTruncatesTakesTheJdkCopyAndNeverKillsTheJvm() {
        MemorySystem sys = new MemorySystem();
        MemoryRegion ram = sys.ram("victim", 1 << 16, HostMemoryBackend.memfd().seal(false).build());
        MemorySegment seg = ram.ramSegment();
        AbstractRamBlock block = (AbstractRamBlock) ram.ramBlock();
        assertTrue(FaultingMappings.overlaps(seg.address() + 4096, 4096), "an unsealed memfd can fault");
        Linux.ftruncate(block.fd(), 4096); // what a peer holding the fd may do
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(8192);
            ALWAYS.copy(seg, 0, buf, 0, 4096); // the page still in the file
            assertThrows(InternalError.class, () -> ALWAYS.copy(seg, 4096, buf, 0, 8192), "a read past the end");
            assertThrows(InternalError.class, () -> ALWAYS.copy(buf, 0, seg, 8192, 8192), "a write past the end");
        }
        long address = seg.address();
        ram.destroy();
        sys.rcu().barrier();
        assertFalse(FaultingMappings.overlaps(address, 1 << 16), "forgotten when unmapped");
    }

    @Test
    void sealedAndAnonymousMappingsAreNotRecordedAsFaulting() {
        MemorySystem sys = new MemorySystem();
        for (HostMemoryBackend b : new HostMemoryBackend[] {
            HostMemoryBackend.memfd().build(), HostMemoryBackend.anonymous().build()}) {
            MemoryRegion ram = sys.ram("ram-" + b, 1 << 16, b);
            assertFalse(FaultingMappings.overlaps(ram.ramSegment().address(), 1 << 16), b.toString());
            ram.destroy();
        }
        sys.rcu().barrier();
    }

    @Test
    void faultingRangesAreFoundAtTheirEdgesOnly() {
        long base = 0x7f00_0000_0000L - (1L << 32); // addresses no test maps: the list is global
        FaultingMappings.add(base + 0x3000, 0x1000);
        FaultingMappings.add(base, 0x1000);
        FaultingMappings.add(base + 0x8000, 0x2000);
        try {
            assertFalse(FaultingMappings.overlaps(base + 0x1000, 0x2000), "between the first two");
            assertTrue(FaultingMappings.overlaps(base + 0xfff, 1), "the last byte of the first");
            assertTrue(FaultingMappings.overlaps(base + 0x2fff, 2), "reaching the second's first byte");
            assertFalse(FaultingMappings.overlaps(base + 0x4000, 0x4000), "between the second and third");
            assertTrue(FaultingMappings.overlaps(base - 0x10, 0x20000), "covering all three");
            assertTrue(FaultingMappings.overlaps(base + 0x9fff, 1));
            assertFalse(FaultingMappings.overlaps(base + 0xa000, 1), "just past the third");
            // Both ends of a copy at once: found when either meets a range, whichever of the two it is.
            assertTrue(FaultingMappings.overlapsEither(base + 0x1000, base + 0x9000, 0x10), "the second end only");
            assertTrue(FaultingMappings.overlapsEither(base + 0x3800, base + 0x1000, 0x10), "the first end only");
            assertFalse(FaultingMappings.overlapsEither(base + 0x1000, base + 0x4000, 0x2000), "neither");
            FaultingMappings.remove(base + 0x3000);
            FaultingMappings.remove(base + 0x3000); // twice: nothing
            assertFalse(FaultingMappings.overlaps(base + 0x3000, 0x1000));
            assertTrue(FaultingMappings.overlaps(base + 0x8000, 1));
        } finally {
            FaultingMappings.remove(base);
            FaultingMappings.remove(base + 0x8000);
        }
        assertFalse(FaultingMappings.overlaps(base, 0x20000));
        assertFalse(FaultingMappings.overlapsEither(base, base + 0x8000, 0x1000), "forgotten");
    }

    private static void join(Thread t) {
        try {
            t.join();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }
}
