package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.BulkCopier;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Bulk copies of the address space through the installed {@link BulkCopier} (memmove, here) while the RAM they copy
 * is freed, on real memfds and anonymous mappings. Forbidden outcomes: a copy into or out of a freed block (a JVM
 * crash, an exception, bytes of a block no longer mapped), and a free that fails or never happens because a copy held
 * the block's arena.
 */
class CopyUnderFreeTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final long WINDOW = 0x10_0000;
    private static final int PAGE = 4096;

    private static HostMemoryBackend[] backends() {
        return new HostMemoryBackend[] {HostMemoryBackend.memfd().build(), HostMemoryBackend.anonymous().build()};
    }

    @Test
    void theCopiesAreNativeHere() {
        if (!"jdk".equals(System.getProperty("guestmem.copy"))) {
            assertTrue(BulkCopier.installed().name().startsWith("memmove"), BulkCopier.installed().name());
        }
    }

    /**
     * A device just before the RAM holds each access between its MMIO piece and its RAM piece until the block that
     * access's view maps is freed (the region swapped out, destroyed, a grace period passed, its arena closed), so the
     * RAM piece always meets the closed block: it must land in the new block, never the old one.
     */
    @Test
    void aCopyReachingAFreedBlockRedoesItsPieceOnTheCurrentView() {
        for (HostMemoryBackend backend : backends()) {
            MemorySystem sys = new MemorySystem();
            MemoryRegion root = sys.container("root", -1);
            AddressSpace as = sys.addressSpace("as", root);
            MemoryRegion[] ram = {filled(sys, backend, "ram0", 0x11)};
            List<MemorySegment> freed = new ArrayList<>();
            AtomicReference<Throwable> swapFailure = new AtomicReference<>();
            AtomicBoolean armed = new AtomicBoolean();
            Runnable swap = () -> {
                if (!armed.getAndSet(false)) {
                    return; // once per access, which may reach the device in several pieces
                }
                try {
                    MemoryRegion old = ram[0];
                    ram[0] = filled(sys, backend, "ram" + (freed.size() + 1), 0x22 + freed.size());
                    sys.transaction(() -> {
                        root.delSubregion(old);
                        root.addSubregion(WINDOW, ram[0]);
                    });
                    old.destroy();
                    sys.rcu().barrier();
                    assertTrue(((AbstractRamBlock) old.ramBlock()).isReleased());
                    assertFalse(old.ramBlock().hostSegment().scope().isAlive(), "the old block is freed");
                    freed.add(old.ramBlock().hostSegment());
                } catch (Throwable t) {
                    swapFailure.compareAndSet(null, t);
                }
            };
            root.addSubregion(WINDOW, ram[0]);
            root.addSubregion(WINDOW - 8, sys.io("dev", 8, MemoryRegionOps.builder()
                    .read((a, size) -> {
                        swap.run();
                        return 0;
                    })
                    .write((a, v, size) -> swap.run())
                    .clearGlobalLocking().build()));
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment buf = arena.allocate(8 + PAGE);
                armed.set(true);
                assertEquals(MemTxResult.OK, as.read(WINDOW - 8, U, buf, 0, 8 + PAGE));
                assertNull(swapFailure.get());
                assertEquals(1, freed.size());
                assertUniform(buf.asSlice(8), (byte) 0x22, backend + " read");

                buf.fill((byte) 0x5a);
                armed.set(true);
                assertEquals(MemTxResult.OK, as.write(WINDOW - 8, U, buf, 0, 8 + PAGE));
                assertNull(swapFailure.get());
                assertEquals(2, freed.size());
                assertUniform(ram[0].ramSegment().asSlice(0, PAGE), (byte) 0x5a, backend + " write");
                assertUniform(ram[0].ramSegment().asSlice(PAGE, PAGE), (byte) 0x23, backend + " the rest");
            }
        }
    }

    /**
     * Readers copy the whole RAM window (64 KiB, one native call each) while the main thread swaps in a new block and
     * frees the old one, again and again, so frees meet copies in progress: each free must wait for its copy and then
     * happen, and each copy must see one whole block.
     */
    @Test
    void freesWaitForCopiesInProgressAndEveryCopySeesOneBlock() throws InterruptedException {
        final int size = 1 << 16;
        final int generations = 150;
        for (HostMemoryBackend backend : backends()) {
            MemorySystem sys = new MemorySystem();
            MemoryRegion root = sys.container("root", -1);
            AddressSpace as = sys.addressSpace("as", root);
            MemoryRegion current = filledOf(sys, backend, 1, size);
            root.addSubregion(WINDOW, current);
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicLong copies = new AtomicLong();
            List<Thread> readers = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                readers.add(Thread.ofPlatform().start(() -> {
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment buf = arena.allocate(size);
                        while (!stop.get()) {
                            assertEquals(MemTxResult.OK, as.read(WINDOW, U, buf, 0, size));
                            byte first = buf.get(ValueLayout.JAVA_BYTE, 0);
                            assertTrue(first != 0, "a freed block's zeros");
                            assertUniform(buf, first, "one copy, one block");
                            copies.incrementAndGet();
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            List<MemorySegment> old = new ArrayList<>();
            for (int g = 2; g <= generations && failure.get() == null; g++) {
                MemoryRegion next = filledOf(sys, backend, g, size);
                MemoryRegion prev = current;
                sys.transaction(() -> {
                    root.delSubregion(prev);
                    root.addSubregion(WINDOW, next);
                });
                prev.destroy();
                old.add(prev.ramBlock().hostSegment());
                current = next;
            }
            stop.set(true);
            for (Thread r : readers) {
                r.join();
            }
            sys.rcu().barrier();
            assertNull(failure.get(), () -> backend + ": " + failure.get());
            assertTrue(copies.get() > 0, "the readers copied");
            for (MemorySegment s : old) {
                assertFalse(s.scope().isAlive(), backend + ": every old block is freed");
            }
            System.out.printf("CopyUnderFreeTest: %s: %d copies of 64 KiB across %d frees%n", backend, copies.get(),
                    old.size());
        }
    }

    private static MemoryRegion filled(MemorySystem sys, HostMemoryBackend backend, String name, int value) {
        MemoryRegion r = sys.ram(name, 2 * PAGE, backend);
        r.ramSegment().fill((byte) value);
        return r;
    }

    private static MemoryRegion filledOf(MemorySystem sys, HostMemoryBackend backend, int generation, int size) {
        MemoryRegion r = sys.ram("gen" + generation, size, backend);
        r.ramSegment().fill((byte) (generation % 255 + 1));
        return r;
    }

    private static void assertUniform(MemorySegment s, byte value, String what) {
        for (long i = 0; i < s.byteSize(); i += 8) {
            long expected = (value & 0xffL) * 0x0101_0101_0101_0101L;
            if (s.get(ValueLayout.JAVA_LONG_UNALIGNED, i) != expected) {
                throw new AssertionError(what + ": byte " + i + " of " + s.byteSize() + " is not "
                        + Integer.toHexString(value & 0xff));
            }
        }
    }
}
