package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.access.Accesses;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * address_space_map/unmap and address_space_access_valid (QEMU 7.2's softmmu/physmem.c), with the bounce-buffer
 * budget and map clients per address space as QEMU 9.1 has them: direct slices of RAM, bounce buffers for the rest,
 * what devices see and when, and the accounting.
 */
class DmaMapTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    /** RAM at 0..0x1000, a byte-register device at 0x1000..0x2000, nothing above. */
    private static final class Machine {
        final MemorySystem system = new MemorySystem();
        final MemoryRegion root = system.container("root", U64.SIZE_2_64);
        final MemoryRegion ram = system.ram("ram", 0x1000);
        final Accesses.ByteDevice dev = new Accesses.ByteDevice(0x1000);
        final MemoryRegion io = system.io("dev", 0x1000, dev.ops());
        final AddressSpace as;

        Machine() {
            system.transaction(() -> {
                root.addSubregion(0, ram);
                root.addSubregion(0x1000, io);
            });
            as = system.addressSpace("as", root);
            Accesses.fillPattern(ram.ramSegment(), 3);
        }
    }

    // ---------------------------------------------------------------- direct mappings

    @Test
    void mapOfRamIsASliceThatAliasesGuestRam() {
        Machine m = new Machine();
        DmaMapping w = m.as.map(0x100, 0x200, true, U);
        assertFalse(w.isBounce());
        assertEquals(0x100, w.address());
        assertEquals(0x200, w.length());
        assertEquals(0x200, w.segment().byteSize());
        w.segment().set(ValueLayout.JAVA_INT_UNALIGNED, 0x10, 0x1234_5678);
        assertEquals(0x1234_5678, m.as.ldlLe(0x110, U, null));
        m.as.stqLe(0x120, 0x0102_0304_0506_0708L, U);
        assertEquals(0x0102_0304_0506_0708L, w.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0x20));
        m.as.unmap(w, true, 0x30);
        assertTrue(w.isUnmapped());
        assertEquals(0, m.as.bounceBufferSize(), "direct mappings take no budget");

        // Mapped for reading, the slice is read-only: a read mapping is never written back.
        DmaMapping r = m.as.map(0x100, 0x10, false, U);
        assertFalse(r.isBounce());
        assertTrue(r.segment().isReadOnly());
        assertEquals(m.as.ldlLe(0x100, U, null), r.segment().get(ValueLayout.JAVA_INT_UNALIGNED, 0));
        m.as.unmap(r, false, 0x10);
    }

    @Test
    void mapAcrossARamMmioBoundaryReturnsOnlyTheRamPart() {
        Machine m = new Machine();
        DmaMapping d = m.as.map(0xf00, 0x200, true, U);
        assertFalse(d.isBounce());
        assertEquals(0x100, d.length());
        m.as.unmap(d, false, 0);
        // Past the end of all RAM: cut at the region too.
        DmaMapping e = m.as.map(0x800, -1L, false, U);
        assertEquals(0x800, e.length());
        m.as.unmap(e, false, 0);
        assertNull(m.as.map(0x800, 0, false, U), "QEMU maps nothing for len 0");
    }

    @Test
    void romIsMappedDirectlyForReadingAndBouncedForWriting() {
        Machine m = new Machine();
        MemoryRegion rom = m.system.rom("rom", 0x100);
        m.root.addSubregion(0x10000, rom);
        m.as.writeRom(0x10000, U, new byte[] {9, 8, 7, 6}, 0, 4);
        DmaMapping r = m.as.map(0x10000, 0x100, false, U);
        assertFalse(r.isBounce());
        assertEquals(0x06070809, r.segment().get(ValueLayout.JAVA_INT_UNALIGNED, 0));
        m.as.unmap(r, false, 0x100);
        DmaMapping w = m.as.map(0x10000, 0x100, true, U);
        assertTrue(w.isBounce());
        w.segment().set(ValueLayout.JAVA_BYTE, 0, (byte) 0x55);
        m.as.unmap(w, true, 1); // written back as a guest write: dropped by the ROM
        assertEquals(9, rom.ramSegment().get(ValueLayout.JAVA_BYTE, 0));
    }

    // ---------------------------------------------------------------- bounce buffers

    @Test
    void mapOfMmioForReadingReadsTheDeviceOnceAtMapTime() {
        Machine m = new Machine();
        DmaMapping b = m.as.map(0x1010, 8, false, U);
        assertTrue(b.isBounce());
        assertEquals(8, b.length());
        assertTrue(b.segment().isReadOnly());
        assertEquals(List.of("R16/4", "R20/4"), m.dev.calls);
        byte[] want = new byte[8];
        System.arraycopy(m.dev.regs, 0x10, want, 0, 8);
        assertArrayEquals(want, b.segment().toArray(ValueLayout.JAVA_BYTE));
        assertEquals(8, m.as.bounceBufferSize());
        m.dev.calls.clear();
        m.as.unmap(b, false, 8);
        assertEquals(List.of(), m.dev.calls, "a read mapping writes nothing back");
        assertEquals(0, m.as.bounceBufferSize());
    }

    @Test
    void mapOfMmioForWritingWritesExactlyAccessLenBytesBackAtUnmap() {
        Machine m = new Machine();
        DmaMapping b = m.as.map(0x1020, 0x10, true, U);
        assertTrue(b.isBounce());
        assertEquals(0x10, b.length());
        assertEquals(List.of(), m.dev.calls, "nothing is read for a write mapping");
        assertEquals(0, b.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 0), "the buffer starts zeroed");
        for (int i = 0; i < 0x10; i++) {
            b.segment().set(ValueLayout.JAVA_BYTE, i, (byte) (0x40 + i));
        }
        m.as.unmap(b, true, 7);
        // 7 bytes from region offset 0x20, in the pieces QEMU's write loop takes.
        assertEquals(List.of("W32/4", "W36/2", "W38/1"), m.dev.calls);
        for (int i = 0; i < 0x10; i++) {
            assertEquals(i < 7 ? (byte) (0x40 + i) : (byte) (0x80 + 0x20 + i), m.dev.regs[0x20 + i], "reg " + i);
        }
    }

    /** QEMU bounces the length asked for, not cut at the section's end: the buffer runs on into whatever follows. */
    @Test
    void aBounceBufferIsNotCutAtTheSectionEnd() {
        Machine m = new Machine();
        DmaMapping b = m.as.map(0x1ff8, 0x10, false, U); // 8 bytes of device, then 8 of hole
        assertTrue(b.isBounce());
        assertEquals(0x10, b.length());
        m.as.unmap(b, false, 0);
        DmaMapping h = m.as.map(0x10_0000, 0x100, true, U); // a hole bounces too, within the budget
        assertTrue(h.isBounce());
        assertEquals(0x100, h.length());
        m.as.unmap(h, true, 0x100); // dropped by the unassigned region
    }

    @Test
    void theBudgetShortensThenRefusesMappingsAndUnmapTellsTheMapClients() {
        Machine m = new Machine();
        assertEquals(4096, m.as.maxBounceBufferSize(), "QEMU 9.1's default");
        DmaMapping a = m.as.map(0x1000, 3000, true, U);
        assertEquals(3000, a.length());
        DmaMapping b = m.as.map(0x1000, 3000, true, U);
        assertEquals(4096 - 3000, b.length(), "what is left of the budget");
        assertEquals(4096, m.as.bounceBufferSize());
        assertNull(m.as.map(0x1000, 1, true, U), "the budget is used up");
        DmaMapping ram = m.as.map(0, 0x1000, true, U);
        assertEquals(0x1000, ram.length(), "RAM needs no budget");
        m.as.unmap(ram, false, 0);

        AtomicInteger told = new AtomicInteger();
        Runnable client = told::incrementAndGet;
        m.as.registerMapClient(client);
        assertEquals(0, told.get(), "nothing is free yet");
        m.as.unmap(a, true, 0);
        assertEquals(1, told.get(), "told once, when budget came back");
        assertEquals(4096 - 3000, m.as.bounceBufferSize());
        m.as.unmap(b, true, 0);
        assertEquals(1, told.get(), "a client is forgotten once told");
        assertEquals(0, m.as.bounceBufferSize());

        m.as.registerMapClient(client);
        assertEquals(2, told.get(), "told at once when budget is free");

        DmaMapping all = m.as.map(0x1000, 4096, false, U);
        assertEquals(4096, all.length());
        m.as.registerMapClient(client);
        assertTrue(m.as.unregisterMapClient(client));
        assertFalse(m.as.unregisterMapClient(client));
        m.as.unmap(all, false, 0);
        assertEquals(2, told.get(), "an unregistered client is not told");
    }

    @Test
    void theLimitCanBeChangedAndRaisingItTellsTheMapClients() {
        Machine m = new Machine();
        m.as.setMaxBounceBufferSize(0);
        assertNull(m.as.map(0x1000, 4, false, U));
        AtomicInteger told = new AtomicInteger();
        m.as.registerMapClient(told::incrementAndGet);
        assertEquals(0, told.get());
        m.as.setMaxBounceBufferSize(64 * 1024);
        assertEquals(1, told.get());
        DmaMapping big = m.as.map(0x1000, 0x1000, false, U);
        assertEquals(0x1000, big.length());
        // Lowering the limit below what is in use keeps the mapping and refuses new ones.
        m.as.setMaxBounceBufferSize(16);
        assertNull(m.as.map(0x1000, 4, false, U));
        m.as.unmap(big, false, 0);
        assertEquals(16, m.as.map(0x1000, 0x1000, false, U).length());
        assertThrows(IllegalArgumentException.class, () -> m.as.setMaxBounceBufferSize(-1));
    }

    @Test
    void clientsRunOutsideTheLockAndMayMapAndRegisterAgain() {
        Machine m = new Machine();
        DmaMapping all = m.as.map(0x1000, 4096, false, U);
        List<DmaMapping> got = new ArrayList<>();
        m.as.registerMapClient(() -> {
            got.add(m.as.map(0x1000, 4096, false, U));
            m.as.registerMapClient(() -> got.add(null)); // budget is taken again: waits
        });
        m.as.unmap(all, false, 0);
        assertEquals(1, got.size());
        assertEquals(4096, got.get(0).length());
        m.as.unmap(got.get(0), false, 0);
        assertEquals(2, got.size());
    }

    @Test
    void misuseOfUnmapFailsWithoutTouchingTheBudget() {
        Machine m = new Machine();
        DmaMapping b = m.as.map(0x1000, 16, true, U);
        assertThrows(IllegalArgumentException.class, () -> m.as.unmap(b, true, 17));
        assertThrows(IllegalArgumentException.class, () -> m.as.unmap(b, true, -1));
        AddressSpace other = m.system.addressSpace("other", m.root);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> other.unmap(b, true, 0));
        assertTrue(e.getMessage().contains("as=other"), e.getMessage());
        assertEquals(16, m.as.bounceBufferSize());
        m.as.unmap(b, true, 16);
        IllegalStateException twice = assertThrows(IllegalStateException.class, () -> m.as.unmap(b, true, 16));
        assertTrue(twice.getMessage().contains("already unmapped"), twice.getMessage());
        assertEquals(0, m.as.bounceBufferSize());
    }

    @Test
    void aDeviceThatThrowsWhileFillingGivesTheBudgetBack() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.io("bad", 0x100, MemoryRegionOps.builder()
                .read((addr, size) -> {
                    throw new IllegalStateException("device fault");
                })
                .build()));
        AddressSpace as = system.addressSpace("as", root);
        assertThrows(IllegalStateException.class, () -> as.map(0, 16, false, U));
        assertEquals(0, as.bounceBufferSize());
        DmaMapping w = as.map(0, 16, true, U);
        assertEquals(16, as.bounceBufferSize());
        as.unmap(w, false, 0);
    }

    // ---------------------------------------------------------------- access_valid

    @Test
    void accessValidFollowsEachSectionsRules() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x1000);
        MemoryRegion rom = system.rom("rom", 0x1000);
        MemoryRegion words = system.io("words", 0x100, MemoryRegionOps.builder()
                .read((a, s) -> 0).write((a, d, s) -> { })
                .valid(4, 4, false) // 32-bit aligned accesses only
                .build());
        MemoryRegion picky = system.io("picky", 0x100, MemoryRegionOps.builder()
                .read((a, s) -> 0)
                .accepts((a, s, isWrite, attrs) -> a < 0x80 && (!isWrite || !attrs.user()))
                .build());
        system.transaction(() -> {
            root.addSubregion(0, ram);
            root.addSubregion(0x1000, rom);
            root.addSubregion(0x2000, words);
            root.addSubregion(0x3000, picky);
        });
        AddressSpace as = system.addressSpace("as", root);
        MemTxAttrs user = MemTxAttrs.of(false, true, 0);

        assertTrue(as.accessValid(0, 0x1000, true, U), "RAM is always valid");
        assertTrue(as.accessValid(0x800, 0x1000, false, U), "RAM then ROM, reading");
        assertFalse(as.accessValid(0x800, 0x1000, true, U), "ROM refuses writes (unassigned ops)");
        assertTrue(as.accessValid(0x2000, 0x100, true, U), "whole aligned words");
        assertFalse(as.accessValid(0x2000, 2, false, U), "a 2-byte piece is below the valid minimum");
        assertFalse(as.accessValid(0x2002, 4, false, U), "pieces follow the address's alignment");
        assertFalse(as.accessValid(0x20fc, 8, false, U), "runs into a hole");
        assertTrue(as.accessValid(0x3000, 0x80, true, U));
        assertFalse(as.accessValid(0x3000, 0x81, false, U), "accepts refuses offset 0x80");
        assertFalse(as.accessValid(0x3000, 4, true, user), "accepts sees the attributes");
        assertTrue(as.accessValid(0x3000, 4, false, user));
        assertFalse(as.accessValid(0x10_0000, 1, false, U), "a hole is never valid");
        assertTrue(as.accessValid(0x10_0000, 0, false, U), "nothing to check");
    }

    // ---------------------------------------------------------------- segment lifetime

    @Test
    void aBounceBufferIsItsOwnMemoryNotTheDevices() {
        Machine m = new Machine();
        DmaMapping b = m.as.map(0x1000, 4, false, U);
        MemorySegment seg = b.segment();
        m.dev.regs[0] = 0x7f;
        assertEquals((byte) 0x80, seg.get(ValueLayout.JAVA_BYTE, 0), "filled once, at map time");
        m.as.unmap(b, false, 4);
    }
}
