package dev.guestmem.memory;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Old-style MMIO ({@link MemoryRegionMmio}, the 2012 header's {@code old_mmio}) and the 2012
 * {@code memory_region_set_offset} as {@link MemoryRegionOps.Builder#offset}.
 */
class MemoryRegionMmioTest {
    private final List<String> calls = new ArrayList<>();

    private AddressSpace machine(MemoryRegionOps ops) {
        MemorySystem m = new MemorySystem();
        MemoryRegion root = m.container("system", U64.SIZE_2_64);
        m.transaction(() -> root.addSubregion(0x1000, m.io("old", 0x100, ops)));
        return m.addressSpace("memory", root);
    }

    private MemoryRegionMmio.ReadFunc reader(String name, int value) {
        return addr -> {
            calls.add(name + " " + Long.toHexString(addr));
            return value;
        };
    }

    private MemoryRegionMmio.WriteFunc writer(String name) {
        return (addr, v) -> calls.add(name + " " + Long.toHexString(addr) + "=" + Integer.toHexString(v));
    }

    @Test
    void eachSizeReachesItsSlot() {
        AddressSpace as = machine(MemoryRegionMmio.ops(
                new MemoryRegionMmio.ReadFunc[] {reader("readb", 0x1ab), reader("readw", 0x1abcd),
                    reader("readl", 0x89abcdef)},
                new MemoryRegionMmio.WriteFunc[] {writer("writeb"), writer("writew"), writer("writel")})
                .endianness(DeviceEndian.LITTLE).build());
        int[] r = new int[1];
        assertEquals(0xab, as.ldub(0x1010, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(0xabcd, as.lduwLe(0x1010, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(0x89abcdefL, as.ldlLe(0x1010, MemTxAttrs.UNSPECIFIED, r) & 0xffff_ffffL);
        assertEquals(MemTxResult.OK, r[0]);
        // 8 bytes: two long calls, the low half first for a little-endian device.
        assertEquals(0x89abcdef_89abcdefL, as.ldqLe(0x1010, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(List.of("readb 10", "readw 10", "readl 10", "readl 10", "readl 14"), calls);
        calls.clear();
        as.stb(0x1020, 0x12, MemTxAttrs.UNSPECIFIED);
        as.stwLe(0x1020, 0x1234, MemTxAttrs.UNSPECIFIED);
        as.stlLe(0x1020, 0x12345678, MemTxAttrs.UNSPECIFIED);
        as.stqLe(0x1020, 0x1111_2222_3333_4444L, MemTxAttrs.UNSPECIFIED);
        assertEquals(List.of("writeb 20=12", "writew 20=1234", "writel 20=12345678", "writel 20=33334444",
                "writel 24=11112222"), calls);
    }

    @Test
    void aMissingSizeIsUnassignedMemory() {
        AddressSpace as = machine(MemoryRegionMmio.ops(
                new MemoryRegionMmio.ReadFunc[] {reader("readb", 0x5a), null, null},
                new MemoryRegionMmio.WriteFunc[] {null, writer("writew"), null}).build());
        int[] r = new int[1];
        assertEquals(0x5a, as.ldub(0x1000, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(MemTxResult.OK, r[0]);
        assertEquals(0, as.lduwLe(0x1000, MemTxAttrs.UNSPECIFIED, r));
        assertEquals(MemTxResult.DECODE_ERROR, r[0]);
        assertEquals(MemTxResult.DECODE_ERROR, as.stb(0x1000, 1, MemTxAttrs.UNSPECIFIED));
        assertEquals(MemTxResult.OK, as.stwLe(0x1000, 2, MemTxAttrs.UNSPECIFIED));
        assertEquals(List.of("readb 0", "writew 0=2"), calls);
    }

    @Test
    void setOffsetIsAddedToWhatTheCallbacksSee() {
        // Old-style and new-style callbacks alike; the valid checks still see the guest's own offset.
        AddressSpace old = machine(MemoryRegionMmio.ops(
                new MemoryRegionMmio.ReadFunc[] {reader("readb", 1), null, null},
                new MemoryRegionMmio.WriteFunc[] {writer("writeb"), null, null}).offset(0x400).build());
        old.ldub(0x1003, MemTxAttrs.UNSPECIFIED, null);
        old.stb(0x1004, 7, MemTxAttrs.UNSPECIFIED);
        MemoryRegionOps ops = MemoryRegionOps.builder()
                .read((a, s) -> {
                    calls.add("read " + Long.toHexString(a) + "/" + s);
                    return 0;
                })
                .write((a, d, s) -> calls.add("write " + Long.toHexString(a) + "/" + s))
                .impl(1, 2, false)
                .offset(-0x10)
                .build();
        assertEquals(-0x10, ops.offset());
        AddressSpace neu = machine(ops);
        neu.ldlLe(0x1020, MemTxAttrs.UNSPECIFIED, null);
        neu.stb(0x1008, 1, MemTxAttrs.UNSPECIFIED);
        assertEquals(List.of("readb 403", "writeb 404=7", "read 10/2", "read 12/2", "write fffffffffffffff8/1"), calls);
    }

    @Test
    void slotsOtherThanThreeAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MemoryRegionMmio.ops(
                new MemoryRegionMmio.ReadFunc[4], new MemoryRegionMmio.WriteFunc[3]));
        assertEquals("read.length=4 write.length=3: old-style MMIO has 3 slots each (byte, word, long)",
                e.getMessage());
    }
}
