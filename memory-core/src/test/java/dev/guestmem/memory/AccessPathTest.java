package dev.guestmem.memory;

import static dev.guestmem.memory.internal.access.Accesses.ORDERS;
import static dev.guestmem.memory.internal.access.Accesses.WIDTHS;
import static dev.guestmem.memory.internal.access.Accesses.bytes;
import static dev.guestmem.memory.internal.access.Accesses.expectedLoad;
import static dev.guestmem.memory.internal.access.Accesses.fillPattern;
import static dev.guestmem.memory.internal.access.Accesses.ld;
import static dev.guestmem.memory.internal.access.Accesses.modelSt;
import static dev.guestmem.memory.internal.access.Accesses.st;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.access.Accesses.ByteDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The access path against QEMU 7.2's behaviour (softmmu/physmem.c, memory_ldst.c.inc): ld/st of every width and byte
 * order on RAM, ROM, ROM devices in and out of romd mode, reservations, unassigned addresses and read-only
 * mappings; bulk read/write/set across RAM, MMIO and holes at every start and length of a small window; writeRom;
 * the re-entrancy guard.
 */
class AccessPathTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @Test
    void ldStOnRamEveryWidthAndOrder() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x1000);
        root.addSubregion(0x4000, ram);
        AddressSpace as = system.addressSpace("as", root);
        int[] r = new int[1];
        for (int size : WIDTHS) {
            for (ByteOrder order : ORDERS) {
                for (int off = 0; off < 16; off++) {
                    fillPattern(ram.ramSegment(), off);
                    byte[] before = bytes(ram.ramSegment(), 0, 64);
                    r[0] = -1;
                    assertEquals(expectedLoad(before, off, size, order), ld(as, 0x4000 + off, size, order, r));
                    assertEquals(MemTxResult.OK, r[0]);
                    long v = 0x0123_4567_89ab_cdefL ^ ((long) off << 56);
                    assertEquals(MemTxResult.OK, st(as, 0x4000 + off, size, order, v));
                    byte[] want = before.clone();
                    modelSt(ByteBuffer.wrap(want).order(order), off, size, v);
                    assertArrayEquals(want, bytes(ram.ramSegment(), 0, 64), "size=" + size + " off=" + off);
                }
            }
        }
    }

    @Test
    void romIsReadDirectlyAndGuestWritesAreDroppedWithDecodeError() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion rom = system.rom("rom", 0x100);
        root.addSubregion(0x10000, rom);
        AddressSpace as = system.addressSpace("as", root);
        byte[] image = new byte[0x100];
        for (int i = 0; i < image.length; i++) {
            image[i] = (byte) (i * 3 + 1);
        }
        assertEquals(MemTxResult.OK, as.writeRom(0x10000, U, image, 0, image.length));
        int[] r = new int[1];
        for (int size : WIDTHS) {
            for (ByteOrder order : ORDERS) {
                for (int off = 0; off < 16; off++) {
                    assertEquals(expectedLoad(image, off, size, order), ld(as, 0x10000 + off, size, order, r));
                    assertEquals(MemTxResult.OK, r[0]);
                    // A ROM keeps QEMU's unassigned_mem_ops, whose accepts refuses everything.
                    assertEquals(MemTxResult.DECODE_ERROR, st(as, 0x10000 + off, size, order, -1L));
                }
            }
        }
        assertEquals(MemTxResult.DECODE_ERROR, as.write(0x10000, U, new byte[16], 0, 16));
        assertEquals(MemTxResult.DECODE_ERROR, as.set(0x10000, (byte) 0, 0x100, U));
        assertArrayEquals(image, bytes(rom.ramSegment(), 0, 0x100));
    }

    @Test
    void ramMadeReadOnlyDropsWritesLikeRom() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x100);
        root.addSubregion(0, ram);
        ram.setReadonly(true);
        AddressSpace as = system.addressSpace("as", root);
        assertEquals(MemTxResult.DECODE_ERROR, as.stlLe(0x10, 0x12345678, U));
        assertEquals(0, ram.ramSegment().get(ValueLayout.JAVA_INT, 0x10));
        // writeRom is how such memory is loaded.
        assertEquals(MemTxResult.OK, as.writeRom(0x10, U, new byte[] {1, 2}, 0, 2));
        assertEquals(0x0201, as.lduwLe(0x10, U, null));
    }

    /**
     * A read-only mapping of writable RAM (QEMU's PAM "pam-rom" windows are read-only aliases of the RAM): QEMU 7.2's
     * address_space_write decides with memory_access_is_direct on the terminating region, which is writable, so the
     * write reaches the RAM. Only the CPU's soft TLB discards stores to read-only sections.
     */
    @Test
    void readOnlyAliasOfRamIsReadableAndWritesReachTheRamAsInQemu() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x1000);
        MemoryRegion alias = system.alias("ram-ro", ram, 0x800, 0x100);
        alias.setReadonly(true);
        root.addSubregion(0, ram);
        root.addSubregionOverlap(0x10000, alias, 0);
        AddressSpace as = system.addressSpace("as", root);
        assertTrue(as.flatView().lookup(0x10000).readonly());
        ram.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0x808,
                0x1122334455667788L);
        int[] r = new int[1];
        assertEquals(0x1122334455667788L, as.ldqLe(0x10008, U, r));
        assertEquals(MemTxResult.OK, r[0]);
        assertEquals(MemTxResult.OK, as.stlLe(0x10008, 0xcafef00d, U));
        assertEquals(0xcafef00d, as.ldlLe(0x808, U, r));
    }

    @Test
    void romDeviceReadsDirectInRomdModeAndWritesGoToItsOps() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        ByteDevice dev = new ByteDevice(0x100);
        MemoryRegion flash = system.romDevice("flash", 0x100, dev.ops());
        root.addSubregion(0x20000, flash);
        AddressSpace as = system.addressSpace("as", root);
        byte[] image = new byte[0x100];
        Arrays.fill(image, (byte) 0x5a);
        assertEquals(MemTxResult.OK, as.writeRom(0x20000, U, image, 0, image.length));
        assertEquals(List.of(), dev.calls, "writeRom never calls a device");

        int[] r = new int[1];
        assertEquals(0x5a5a5a5aL, as.ldlLe(0x20010, U, r) & 0xffff_ffffL);
        assertEquals(List.of(), dev.calls, "romd reads do not reach the ops");
        assertEquals(MemTxResult.OK, as.stwLe(0x20010, 0xbeef, U));
        assertEquals(List.of("W16/2"), dev.calls);
        assertEquals((byte) 0x5a, flash.ramSegment().get(ValueLayout.JAVA_BYTE, 0x10), "writes do not touch the RAM");
        byte[] buf = new byte[8];
        assertEquals(MemTxResult.OK, as.read(0x20010, U, buf, 0, 8));
        assertArrayEquals(Arrays.copyOf(image, 8), buf);

        flash.setRomd(false);
        dev.calls.clear();
        assertEquals(0xbeef, as.lduwLe(0x20010, U, r));
        assertEquals(List.of("R16/2"), dev.calls);
        // Out of romd mode writeRom skips the device entirely.
        dev.calls.clear();
        assertEquals(MemTxResult.OK, as.writeRom(0x20000, U, new byte[0x10], 0, 0x10));
        assertEquals(List.of(), dev.calls);
        assertEquals((byte) 0x5a, flash.ramSegment().get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void reservationAndUnassignedAreDecodeErrorsThatRead0() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", 0x1_0000_0000L);
        MemoryRegion ram = system.ram("ram", 0x1000);
        root.addSubregion(0, ram);
        root.addSubregionOverlap(0x800, system.reservation("hidden", 0x100), 1);
        AddressSpace as = system.addressSpace("as", root);
        fillPattern(ram.ramSegment(), 1);
        byte[] before = bytes(ram.ramSegment(), 0, 0x1000);
        int[] r = new int[1];
        for (long addr : new long[] {0x800, 0x8f8, 0x5000_0000L, 0xffff_fff8L, 0x1_0000_0000L, -8L}) {
            for (int size : WIDTHS) {
                for (ByteOrder order : ORDERS) {
                    r[0] = -1;
                    assertEquals(0, ld(as, addr, size, order, r), "addr=" + Long.toHexString(addr));
                    assertEquals(MemTxResult.DECODE_ERROR, r[0]);
                    assertEquals(MemTxResult.DECODE_ERROR, st(as, addr, size, order, -1L));
                }
            }
        }
        byte[] buf = new byte[16];
        Arrays.fill(buf, (byte) 1);
        assertEquals(MemTxResult.DECODE_ERROR, as.read(0x800, U, buf, 0, 16));
        assertArrayEquals(new byte[16], buf);
        assertArrayEquals(before, bytes(ram.ramSegment(), 0, 0x1000), "the RAM under the reservation is untouched");
    }

    /**
     * QEMU's ld/st translate once and clamp the length only for RAM: a load that runs past the end of a RAM section
     * is handed whole to the RAM region's ops, which are unassigned_mem_ops, so it fails (reading 0) even when RAM
     * continues in the next section. Bulk reads do cross.
     */
    @Test
    void ldCrossingARamSectionEndIsADecodeErrorButBulkReadsCross() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion a = system.ram("a", 0x1000);
        MemoryRegion b = system.ram("b", 0x1000);
        root.addSubregion(0, a);
        root.addSubregion(0x1000, b);
        AddressSpace as = system.addressSpace("as", root);
        a.ramSegment().fill((byte) 0x11);
        b.ramSegment().fill((byte) 0x22);
        int[] r = new int[1];
        assertEquals(0, as.ldqLe(0xffc, U, r));
        assertEquals(MemTxResult.DECODE_ERROR, r[0]);
        assertEquals(MemTxResult.DECODE_ERROR, as.stlLe(0xffe, -1, U));
        assertEquals(0x1111111111111111L, as.ldqLe(0xff8, U, r));
        byte[] buf = new byte[8];
        assertEquals(MemTxResult.OK, as.read(0xffc, U, buf, 0, 8));
        assertArrayEquals(new byte[] {0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22}, buf);
    }

    // ---------------------------------------------------------------- bulk across sections

    /**
     * The window: RAM a at 0x00-0x0f, an 8-byte device at 0x10-0x17 (little-endian byte registers, QEMU's default
     * access rules), a hole at 0x18-0x1f, RAM b at 0x20-0x2f. For every start and length inside it, read, write and
     * set (byte[] and segment forms) are checked byte by byte: RAM bytes are copied, device bytes are its registers,
     * hole bytes read 0 and drop writes; the result is DECODE_ERROR exactly when the hole is touched. The device sees
     * the bytes it covers cut greedily into aligned pieces of 4, 2 or 1 bytes (QEMU's memory_access_size with
     * valid.max 0 meaning 4, bounded by the alignment of the offset in the region).
     */
    static final class Window {
        final MemorySystem system = new MemorySystem();
        final MemoryRegion a = system.ram("a", 0x10);
        final MemoryRegion b = system.ram("b", 0x10);
        final ByteDevice dev = new ByteDevice(8);
        final AddressSpace as;

        Window() {
            MemoryRegion root = system.container("root", U64.SIZE_2_64);
            root.addSubregion(0x00, a);
            root.addSubregion(0x10, system.io("dev", 8, dev.ops()));
            root.addSubregion(0x20, b);
            as = system.addressSpace("as", root);
        }

        void reset() {
            fillPattern(a.ramSegment(), 0x10);
            fillPattern(b.ramSegment(), 0x40);
            dev.reset();
        }

        byte[] memoryImage() {
            byte[] m = new byte[0x30];
            MemorySegment.copy(a.ramSegment(), ValueLayout.JAVA_BYTE, 0, m, 0x00, 0x10);
            System.arraycopy(dev.regs, 0, m, 0x10, 8);
            MemorySegment.copy(b.ramSegment(), ValueLayout.JAVA_BYTE, 0, m, 0x20, 0x10);
            return m;
        }
    }

    static List<String> expectedDeviceCalls(char kind, int start, int end) {
        List<String> calls = new ArrayList<>();
        int s = Math.max(start, 0x10) - 0x10;
        int e = Math.min(end, 0x18) - 0x10;
        for (int p = s; p < e; ) {
            int size = 4;
            while (p % size != 0 || p + size > e) {
                size /= 2;
            }
            calls.add(kind + "" + p + "/" + size);
            p += size;
        }
        return calls;
    }

    static int expectedResult(int start, int end) {
        return start < 0x20 && end > 0x18 ? MemTxResult.DECODE_ERROR : MemTxResult.OK;
    }

    @Test
    void bulkReadWriteAndSetAtEveryStartAndLength() {
        Window w = new Window();
        for (int start = 0; start < 0x30; start++) {
            for (int len = 1; start + len <= 0x30; len++) {
                int end = start + len;
                String where = "start=0x" + Integer.toHexString(start) + " len=" + len;
                for (boolean segment : new boolean[] {false, true}) {
                    // read
                    w.reset();
                    byte[] image = w.memoryImage();
                    byte[] want = new byte[len + 2];
                    for (int i = 0; i < len; i++) {
                        int x = start + i;
                        want[1 + i] = x >= 0x18 && x < 0x20 ? 0 : image[x];
                    }
                    byte[] got = new byte[len + 2];
                    int r;
                    if (segment) {
                        MemorySegment dst = MemorySegment.ofArray(got);
                        r = w.as.read(start, U, dst, 1, len);
                    } else {
                        r = w.as.read(start, U, got, 1, len);
                    }
                    assertArrayEquals(want, got, "read " + where);
                    assertEquals(expectedResult(start, end), r, "read result " + where);
                    assertEquals(expectedDeviceCalls('R', start, end), w.dev.calls, "read calls " + where);

                    // write
                    w.reset();
                    byte[] payload = new byte[len + 2];
                    for (int i = 0; i < payload.length; i++) {
                        payload[i] = (byte) (0xc0 ^ (i * 13));
                    }
                    byte[] after = w.memoryImage();
                    for (int i = 0; i < len; i++) {
                        int x = start + i;
                        if (x < 0x18 || x >= 0x20) {
                            after[x] = payload[1 + i];
                        }
                    }
                    if (segment) {
                        r = w.as.write(start, U, MemorySegment.ofArray(payload), 1, len);
                    } else {
                        r = w.as.write(start, U, payload, 1, len);
                    }
                    assertArrayEquals(after, w.memoryImage(), "write " + where);
                    assertEquals(expectedResult(start, end), r, "write result " + where);
                    assertEquals(expectedDeviceCalls('W', start, end), w.dev.calls, "write calls " + where);
                }

                // set
                w.reset();
                byte[] after = w.memoryImage();
                for (int x = start; x < end; x++) {
                    if (x < 0x18 || x >= 0x20) {
                        after[x] = (byte) 0xe7;
                    }
                }
                int r = w.as.set(start, (byte) 0xe7, len, U);
                assertArrayEquals(after, w.memoryImage(), "set " + where);
                assertEquals(expectedResult(start, end), r, "set result " + where);
                assertEquals(expectedDeviceCalls('W', start, end), w.dev.calls, "set calls " + where);
            }
        }
    }

    @Test
    void rwChoosesTheDirection() {
        Window w = new Window();
        w.reset();
        byte[] buf = {1, 2, 3, 4};
        assertEquals(MemTxResult.OK, w.as.rw(0x4, U, buf, 0, 4, true));
        byte[] back = new byte[4];
        assertEquals(MemTxResult.OK, w.as.rw(0x4, U, back, 0, 4, false));
        assertArrayEquals(buf, back);
        assertEquals(MemTxResult.DECODE_ERROR, w.as.rw(0x18, U, MemorySegment.ofArray(back), 0, 4, false));
    }

    /**
     * QEMU does not clamp MMIO accesses to their section ("MMIO regions overlap wildly", physmem.c): a 6-byte device
     * followed by RAM, read from offset 4 for 4 bytes, is one 4-byte call at offset 4, and the bytes at 6 and 7 come
     * from the device, not the RAM.
     */
    @Test
    void mmioPiecesAreNotClampedAtTheSectionEnd() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        ByteDevice dev = new ByteDevice(16);
        root.addSubregion(0x3000, system.io("dev", 6, dev.ops()));
        MemoryRegion ram = system.ram("ram", 0x10);
        root.addSubregion(0x3006, ram);
        AddressSpace as = system.addressSpace("as", root);
        ram.ramSegment().fill((byte) 0x77);
        byte[] buf = new byte[4];
        assertEquals(MemTxResult.OK, as.read(0x3004, U, buf, 0, 4));
        assertEquals(List.of("R4/4"), dev.calls);
        assertArrayEquals(new byte[] {(byte) 0x84, (byte) 0x85, (byte) 0x86, (byte) 0x87}, buf);
    }

    @Test
    void setWritesInChunksOverLongRanges() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x1000);
        ByteDevice dev = new ByteDevice(0x400);
        root.addSubregion(0, ram);
        root.addSubregion(0x1000, system.io("dev", 0x400, MemoryRegionOps.builder()
                .write((addr, data, size) -> dev.calls.add("W" + addr + "/" + size))
                .valid(1, 8, true)
                .impl(1, 8, true)
                .build()));
        AddressSpace as = system.addressSpace("as", root);
        // From 0xffd: 3 bytes of RAM, then the device from offset 0 in 8-byte pieces (valid.max 8, impl.unaligned).
        // QEMU writes the fill as separate 512-byte writes, so the device's pieces restart at every chunk border:
        // the first chunk covers device bytes 0..508, its last piece is the 5 bytes left cut to 4 and 1.
        assertEquals(MemTxResult.OK, as.set(0xffd, (byte) 0x3c, 3 + 0x400, U));
        List<String> want = new ArrayList<>();
        int pos = 0;
        int chunkEnd = 512 - 3;
        while (pos < 0x400) {
            int left = Math.min(chunkEnd, 0x400) - pos;
            int size = Integer.highestOneBit(Math.min(left, 8));
            want.add("W" + pos + "/" + size);
            pos += size;
            if (pos == chunkEnd) {
                chunkEnd += 512;
            }
        }
        assertEquals(want, dev.calls);
        assertTrue(want.contains("W504/4") && want.contains("W508/1"), want.toString());
        for (int i = 0xffd; i < 0x1000; i++) {
            assertEquals((byte) 0x3c, ram.ramSegment().get(ValueLayout.JAVA_BYTE, i));
        }
    }

    // ---------------------------------------------------------------- writeRom

    @Test
    void writeRomFillsRamRomAndRomdSkipsDevicesAndHoles() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x10);
        MemoryRegion rom = system.rom("rom", 0x10);
        ByteDevice flashOps = new ByteDevice(0x10);
        MemoryRegion flash = system.romDevice("flash", 0x10, flashOps.ops());
        ByteDevice io = new ByteDevice(0x10);
        ByteDevice offOps = new ByteDevice(0x10);
        MemoryRegion flashOff = system.romDevice("flash-off", 0x10, offOps.ops());
        flashOff.setRomd(false);
        root.addSubregion(0x00, ram);
        root.addSubregion(0x10, rom);
        root.addSubregion(0x20, flash);
        root.addSubregion(0x30, system.io("io", 0x10, io.ops()));
        root.addSubregion(0x40, flashOff);
        // 0x50-0x5f: hole
        MemoryRegion tail = system.ram("tail", 0x10);
        root.addSubregion(0x60, tail);
        AddressSpace as = system.addressSpace("as", root);
        byte[] image = new byte[0x70];
        for (int i = 0; i < image.length; i++) {
            image[i] = (byte) (i + 1);
        }
        assertEquals(MemTxResult.OK, as.writeRom(0, U, MemorySegment.ofArray(image), 0, image.length));
        assertArrayEquals(Arrays.copyOfRange(image, 0x00, 0x10), bytes(ram.ramSegment(), 0, 0x10));
        assertArrayEquals(Arrays.copyOfRange(image, 0x10, 0x20), bytes(rom.ramSegment(), 0, 0x10));
        assertArrayEquals(Arrays.copyOfRange(image, 0x20, 0x30), bytes(flash.ramSegment(), 0, 0x10));
        assertArrayEquals(new byte[0x10], bytes(flashOff.ramSegment(), 0, 0x10));
        assertArrayEquals(Arrays.copyOfRange(image, 0x60, 0x70), bytes(tail.ramSegment(), 0, 0x10));
        assertEquals(List.of(), flashOps.calls);
        assertEquals(List.of(), io.calls);
        assertEquals(List.of(), offOps.calls);
    }

    @Test
    void argumentsAreChecked() {
        Window w = new Window();
        assertThrows(IndexOutOfBoundsException.class, () -> w.as.read(0, U, new byte[4], 2, 4));
        assertThrows(IndexOutOfBoundsException.class, () -> w.as.write(0, U, MemorySegment.ofArray(new byte[4]), 0, 5));
        assertThrows(NullPointerException.class, () -> w.as.ldub(0, null, null));
        assertThrows(IllegalArgumentException.class, () -> w.as.set(0, (byte) 0, -1, U));
        assertEquals(MemTxResult.OK, w.as.read(0x18, U, new byte[0], 0, 0), "nothing to read, nothing decoded");
    }

    // ---------------------------------------------------------------- re-entrancy

    /** A device that, from its callbacks, makes an access through the address space. */
    static final class DmaDevice {
        final List<String> calls = new ArrayList<>();
        final List<Integer> nestedResults = new ArrayList<>();
        AddressSpace as;
        /** Where its write callback writes to (guest-physical), or -1. */
        long dmaTarget = -1;
        /** Where its read callback reads from, or -1. */
        long dmaSource = -1;
        int depth;
        int maxDepth;
        int limit = Integer.MAX_VALUE;

        MemoryRegionOps ops(boolean disableGuard) {
            return MemoryRegionOps.builder()
                    .endianness(DeviceEndian.LITTLE)
                    .read((addr, size) -> {
                        calls.add("R" + addr);
                        if (dmaSource >= 0 && depth < limit) {
                            enter();
                            int[] r = new int[1];
                            long v = as.ldlLe(dmaSource, U, r);
                            nestedResults.add(r[0]);
                            depth--;
                            return v + 1;
                        }
                        return 0x100;
                    })
                    .write((addr, data, size) -> {
                        calls.add("W" + addr + "=" + data);
                        if (dmaTarget >= 0 && depth < limit) {
                            enter();
                            nestedResults.add(as.stlLe(dmaTarget, (int) data + 1, U));
                            depth--;
                        }
                    })
                    .disableReentrancyGuard(disableGuard)
                    .build();
        }

        private void enter() {
            depth++;
            maxDepth = Math.max(maxDepth, depth);
        }
    }

    record TwoDevices(AddressSpace as, DmaDevice a, DmaDevice b) {
        static TwoDevices of(boolean disableGuardA) {
            MemorySystem system = new MemorySystem();
            MemoryRegion root = system.container("root", U64.SIZE_2_64);
            DmaDevice a = new DmaDevice();
            DmaDevice b = new DmaDevice();
            root.addSubregion(0x1000, system.io("a", 0x100, a.ops(disableGuardA)));
            root.addSubregion(0x2000, system.io("b", 0x100, b.ops(false)));
            AddressSpace as = system.addressSpace("as", root);
            a.as = as;
            b.as = as;
            return new TwoDevices(as, a, b);
        }
    }

    @Test
    void aDeviceThatAccessesItsOwnRegionGetsAccessError() {
        TwoDevices t = TwoDevices.of(false);
        t.a.dmaTarget = 0x1004;
        assertEquals(MemTxResult.OK, t.as.stlLe(0x1000, 7, U));
        assertEquals(List.of("W0=7"), t.a.calls, "the nested write never reached the callback");
        assertEquals(List.of(MemTxResult.ACCESS_ERROR), t.a.nestedResults);

        t.a.calls.clear();
        t.a.nestedResults.clear();
        t.a.dmaSource = 0x1008;
        int[] r = new int[1];
        assertEquals(1, t.as.ldlLe(0x1000, U, r), "the nested read gave 0");
        assertEquals(MemTxResult.OK, r[0]);
        assertEquals(List.of("R0"), t.a.calls);
        assertEquals(List.of(MemTxResult.ACCESS_ERROR), t.a.nestedResults);

        // The guard is released when the access ends.
        t.a.dmaTarget = -1;
        assertEquals(MemTxResult.OK, t.as.stlLe(0x1000, 1, U));
    }

    @Test
    void theOptOutAllowsRecursion() {
        TwoDevices t = TwoDevices.of(true);
        t.a.dmaTarget = 0x1000;
        t.a.limit = 5;
        assertEquals(MemTxResult.OK, t.as.stlLe(0x1000, 0, U));
        assertEquals(5, t.a.maxDepth);
        assertEquals(List.of("W0=0", "W0=1", "W0=2", "W0=3", "W0=4", "W0=5"), t.a.calls);
        assertEquals(List.of(0, 0, 0, 0, 0), t.a.nestedResults);
    }

    @Test
    void dmaFromOneDeviceIntoAnotherIsAllowedButNotBackIntoTheFirst() {
        TwoDevices t = TwoDevices.of(false);
        t.a.dmaTarget = 0x2000;
        assertEquals(MemTxResult.OK, t.as.stlLe(0x1000, 1, U));
        assertEquals(List.of("W0=2"), t.b.calls);
        assertEquals(List.of(MemTxResult.OK), t.a.nestedResults);

        // a -> b -> a: a is still in I/O on this thread.
        t.b.dmaTarget = 0x1010;
        t.a.calls.clear();
        assertEquals(MemTxResult.OK, t.as.stlLe(0x1000, 1, U));
        assertEquals(List.of("W0=1"), t.a.calls);
        assertEquals(List.of(MemTxResult.ACCESS_ERROR), t.b.nestedResults);
    }

    @Test
    void theGuardIsReleasedWhenACallbackThrows() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        AtomicInteger calls = new AtomicInteger();
        root.addSubregion(0, system.io("dev", 0x10, MemoryRegionOps.builder()
                .read((addr, size) -> {
                    if (calls.incrementAndGet() == 1) {
                        throw new IllegalStateException("device bug");
                    }
                    return 5;
                })
                .build()));
        AddressSpace as = system.addressSpace("as", root);
        assertThrows(IllegalStateException.class, () -> as.ldub(0, U, null));
        int[] r = new int[1];
        assertEquals(5, as.ldub(0, U, r));
        assertEquals(MemTxResult.OK, r[0]);
    }

    /**
     * QEMU's guard is meant for one call stack; two vCPU threads may be inside the same device at once. The device
     * clears global locking, as QEMU's devices that run outside the BQL do: under the global lock the second read
     * would wait for the first, which is not what this tests.
     */
    @Test
    void theGuardIsPerThread() throws Exception {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch otherDone = new CountDownLatch(1);
        root.addSubregion(0, system.io("dev", 0x10, MemoryRegionOps.builder()
                .read((addr, size) -> {
                    if (addr == 0) {
                        inside.countDown();
                        try {
                            assertTrue(otherDone.await(10, TimeUnit.SECONDS));
                        } catch (InterruptedException e) {
                            throw new AssertionError(e);
                        }
                    }
                    return 9;
                })
                .clearGlobalLocking()
                .build()));
        AddressSpace as = system.addressSpace("as", root);
        int[] first = {-1};
        int[] firstValue = {-1};
        Thread t = Thread.ofPlatform().start(() -> firstValue[0] = as.ldub(0, U, first));
        assertTrue(inside.await(10, TimeUnit.SECONDS));
        int[] r = new int[1];
        assertEquals(9, as.ldub(4, U, r));
        assertEquals(MemTxResult.OK, r[0]);
        otherDone.countDown();
        t.join(10_000);
        assertEquals(9, firstValue[0], "the first thread's read, which waited inside the device for the second");
        assertEquals(MemTxResult.OK, first[0]);
    }

    /** QEMU does not guard ROM devices: one may write its own region from its write callback. */
    @Test
    void romDevicesAreNotGuarded() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        List<Long> writes = new ArrayList<>();
        AddressSpace[] as = new AddressSpace[1];
        root.addSubregion(0, system.romDevice("flash", 0x100, MemoryRegionOps.builder()
                .write((addr, data, size) -> {
                    writes.add(data);
                    if (data < 3) {
                        assertEquals(MemTxResult.OK, as[0].stb(addr, (int) data + 1, U));
                    }
                })
                .build()));
        as[0] = system.addressSpace("as", root);
        assertEquals(MemTxResult.OK, as[0].stb(0, 0, U));
        assertEquals(List.of(0L, 1L, 2L, 3L), writes);
    }

    /** Each nesting level has its own value slot: a callback may store its value before it makes a nested access. */
    @Test
    void readWithAttrsValuesSurviveNestedAccesses() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        AddressSpace[] as = new AddressSpace[1];
        root.addSubregion(0x1000, system.io("a", 0x10, MemoryRegionOps.builder()
                .readWithAttrs((addr, data, size, attrs) -> {
                    data[0] = 0x1234;
                    int[] r = new int[1];
                    assertEquals(0x5678, as[0].lduwLe(0x2000, U, r));
                    return r[0];
                })
                .build()));
        root.addSubregion(0x2000, system.io("b", 0x10, MemoryRegionOps.builder()
                .readWithAttrs((addr, data, size, attrs) -> {
                    data[0] = 0x5678;
                    return MemTxResult.OK;
                })
                .build()));
        as[0] = system.addressSpace("as", root);
        int[] r = new int[1];
        assertEquals(0x1234, as[0].lduwLe(0x1000, U, r));
        assertEquals(MemTxResult.OK, r[0]);
    }
}
