package dev.guestmem.memory;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link PortioList} against QEMU's {@code portio_list_add} layout and {@code portio_read}/{@code portio_write}
 * splitting, with a device that logs every callback with its absolute port. (The {@code info mtree} text of real
 * devices' lists is compared with QEMU 7.2's dumps in memory-tools' {@code PortioListMtreeTest}.)
 */
class PortioListTest {
    private final List<String> calls = new ArrayList<>();
    private final MemorySystem m = new MemorySystem();
    private final MemoryRegion io = m.io("io", 0x10000, MemoryRegionOps.UNASSIGNED);
    private final AddressSpace as = m.addressSpace("I/O", io);

    private PortioList.Portio entry(int offset, int len, int size) {
        return new PortioList.Portio(offset, len, size,
                port -> {
                    calls.add("r" + size + " " + Long.toHexString(port));
                    return (int) (port & 0xff) | (size > 1 ? 0x4200 : 0);
                },
                (port, data) -> calls.add("w" + size + " " + Long.toHexString(port) + "=" + Integer.toHexString(data)));
    }

    @Test
    void runsOfContiguousEntriesBecomeOneRegionEach() {
        // QEMU's i8257 page registers: {1,3,1}, {7,1,1} at 0x80.
        PortioList page = new PortioList(m, List.of(entry(1, 3, 1), entry(7, 1, 1)), "dma-page");
        page.add(io, 0x80);
        assertEquals(2, page.regions().size());
        assertEquals(0x81, page.regions().get(0).addr());
        assertEquals(3, page.regions().get(0).size());
        assertEquals(0x87, page.regions().get(1).addr());
        assertEquals(1, page.regions().get(1).size());
        // QEMU's IDE: {0,8,1}, {0,1,2}, {0,1,4}: one region of 8; an entry reaching past the run extends it.
        PortioList ide = new PortioList(m, List.of(entry(0, 8, 1), entry(0, 1, 2), entry(0, 1, 4)), "ide");
        ide.add(io, 0x1f0);
        assertEquals(List.of(0x1f0L, 8L), List.of(ide.regions().get(0).addr(), ide.regions().get(0).size()));
        // QEMU's VBE: {0,1,2}, {1,1,2}, {2,1,2}: each entry covers len + size - 1 bytes, so 4 in all.
        PortioList vbe = new PortioList(m, List.of(entry(0, 1, 2), entry(1, 1, 2), entry(2, 1, 2)), "vbe");
        vbe.add(io, 0x1ce);
        assertEquals(List.of(0x1ceL, 4L), List.of(vbe.regions().get(0).addr(), vbe.regions().get(0).size()));
        // An entry that starts exactly where the run ends joins it.
        PortioList joined = new PortioList(m, List.of(entry(0, 2, 1), entry(2, 2, 1)), "joined");
        joined.add(io, 0x400);
        assertEquals(1, joined.regions().size());
        assertEquals(4, joined.regions().getFirst().size());
    }

    @Test
    void accessesAreSplitAndMergedAsQemusPortioReadAndWrite() {
        new PortioList(m, List.of(entry(0, 2, 1), entry(4, 1, 2)), "dev").add(io, 0x300);
        // A byte: the byte entry, with the absolute port.
        assertEquals(0x01, as.ldub(0x301, MemTxAttrs.UNSPECIFIED, null));
        assertEquals(List.of("r1 301"), calls);
        calls.clear();
        // A word where only bytes are served: two byte reads, low then high.
        assertEquals(0x0100, as.lduwLe(0x300, MemTxAttrs.UNSPECIFIED, null));
        assertEquals(List.of("r1 300", "r1 301"), calls);
        calls.clear();
        // ... at the entry's last port: the missing byte reads 0xff.
        int[] result = new int[1];
        assertEquals(0xff01, as.lduwLe(0x301, MemTxAttrs.UNSPECIFIED, result));
        assertEquals(MemTxResult.OK, result[0]);
        assertEquals(List.of("r1 301"), calls);
        calls.clear();
        // A word entry serves a word itself.
        assertEquals(0x4204, as.lduwLe(0x304, MemTxAttrs.UNSPECIFIED, null));
        assertEquals(List.of("r2 304"), calls);
        calls.clear();
        // Nothing serves a long: all ones, no call; an 8-byte access is two 4-byte ones.
        assertEquals(0xffff_ffffL, as.ldlLe(0x300, MemTxAttrs.UNSPECIFIED, null) & 0xffff_ffffL);
        assertEquals(-1L, as.ldqLe(0x300, MemTxAttrs.UNSPECIFIED, null));
        assertEquals(List.of(), calls);
        // Writes: a word as two bytes, the second only while inside the entry; a long dropped.
        as.stwLe(0x300, 0xbbaa, MemTxAttrs.UNSPECIFIED);
        as.stwLe(0x301, 0xddcc, MemTxAttrs.UNSPECIFIED);
        as.stwLe(0x304, 0x1234, MemTxAttrs.UNSPECIFIED);
        as.stlLe(0x300, 0x1234_5678, MemTxAttrs.UNSPECIFIED);
        assertEquals(List.of("w1 300=aa", "w1 301=bb", "w1 301=cc", "w2 304=1234"), calls);
    }

    @Test
    void delUnmapsAndDestroyEnds() {
        PortioList page = new PortioList(m, List.of(entry(1, 3, 1), entry(7, 1, 1)), "dma-page");
        page.setFlushCoalesced();
        page.add(io, 0x80);
        assertTrue(page.regions().getFirst().flushCoalesced());
        assertEquals(2, io.subregions().size());
        assertThrows(IllegalStateException.class, () -> page.add(io, 0x80));
        page.del();
        assertEquals(0, io.subregions().size());
        int[] result = new int[1];
        as.ldub(0x81, MemTxAttrs.UNSPECIFIED, result);
        assertEquals(MemTxResult.DECODE_ERROR, result[0], "the port is unassigned again");
        assertEquals(List.of(), calls);
        page.add(io, 0x88);
        assertEquals(0x89, page.regions().getFirst().addr());
        page.destroy();
        assertEquals(0, io.subregions().size());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> page.add(io, 0x80));
        assertEquals("portio=dma-page: destroyed", e.getMessage());
    }

    @Test
    void badTablesAreRefusedByNameAndLeaveNothingBehind() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new PortioList(m, List.of(entry(7, 1, 1), entry(1, 3, 1)), "dma-page"));
        assertEquals("portio=dma-page ports[1].offset=0x1 previous=0x7: entries must be sorted by offset",
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> entry(0, 1, 8));
        assertEquals("offset=0x0 len=1 size=8: a port entry needs an offset below 0x10000, a len of 1 to 0x10000 and"
                + " a size of 1, 2 or 4", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new PortioList(m, List.of(), "none"));
        assertEquals("portio=none: a port list needs at least one entry", e.getMessage());
        assertEquals(0, io.subregions().size());
    }
}
