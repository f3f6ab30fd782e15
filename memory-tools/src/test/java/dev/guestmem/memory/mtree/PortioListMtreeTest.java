package dev.guestmem.memory.mtree;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.PortioList;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * QEMU 7.2 as the oracle for {@link PortioList}'s layout: the port lists of real devices, built from the same tables
 * as QEMU's sources ({@code hw/dma/i8257.c}, {@code hw/ide/ioport.c}, {@code hw/block/fdc-isa.c},
 * {@code hw/display/vga.c}) at the same bases, print in {@code info mtree} exactly the lines of the captured dumps
 * ({@code src/test/resources/qemu-7.2/x86_64-pc/mtree.txt} and {@code x86_64-q35-devices/mtree.txt}) for those
 * devices, in the same order.
 */
class PortioListMtreeTest {
    private static final Path DATA = Path.of("src/test/resources/qemu-7.2");

    private static PortioList.Portio p(int offset, int len, int size) {
        return new PortioList.Portio(offset, len, size, port -> 0, (port, data) -> { });
    }

    /** The lines of QEMU's {@code address-space: I/O} block that name one of {@code names}. */
    private static List<String> qemuLines(String machine, Set<String> names) throws IOException {
        List<String> out = new ArrayList<>();
        boolean inIo = false;
        for (String line : Files.readAllLines(DATA.resolve(machine).resolve("mtree.txt"))) {
            if (line.startsWith("address-space")) {
                inIo = line.equals("address-space: I/O");
            } else if (inIo && line.contains(": ") && names.contains(line.substring(line.lastIndexOf(": ") + 2))) {
                out.add(line);
            }
        }
        return out;
    }

    /** guestmem's {@code info mtree} of the I/O space: the lines under the {@code io} root. */
    private static List<String> guestmemLines(MemorySystem m) {
        List<String> lines = new ArrayList<>(List.of(MtreePrinter.mtree(m, false).split("\n")));
        assertEquals("address-space: I/O", lines.get(0));
        assertEquals("  0000000000000000-000000000000ffff (prio 0, i/o): io", lines.get(1));
        return lines.subList(2, lines.size()).stream().filter(l -> !l.isEmpty()).toList();
    }

    private static MemoryRegion ioSpace(MemorySystem m) {
        MemoryRegion io = m.io("io", 0x10000, MemoryRegionOps.UNASSIGNED);
        m.addressSpace("I/O", io);
        return io;
    }

    @Test
    void pcDmaIdeAndFloppyPortsPrintAsQemus() throws IOException {
        MemorySystem m = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion io = ioSpace(m);
        List<PortioList.Portio> page = List.of(p(0x01, 3, 1), p(0x07, 1, 1));
        List<PortioList.Portio> ide = List.of(p(0, 8, 1), p(0, 1, 2), p(0, 1, 4));
        List<PortioList.Portio> ide2 = List.of(p(0, 1, 1));
        List<PortioList.Portio> fdc = List.of(p(1, 5, 1), p(7, 1, 1));
        new PortioList(m, page, "dma-page").add(io, 0x80);   // i8257 #0: page_base 0x80
        new PortioList(m, page, "dma-page").add(io, 0x88);   // i8257 #1: page_base 0x88
        new PortioList(m, ide, "ide").add(io, 0x1f0);        // primary channel
        new PortioList(m, ide2, "ide").add(io, 0x3f6);
        new PortioList(m, ide, "ide").add(io, 0x170);        // secondary channel
        new PortioList(m, ide2, "ide").add(io, 0x376);
        new PortioList(m, fdc, "fdc").add(io, 0x3f0);
        assertEquals(qemuLines("x86_64-pc", Set.of("dma-page", "ide", "fdc")), guestmemLines(m));
    }

    @Test
    void q35VgaAndVbePortsPrintAsQemus() throws IOException {
        MemorySystem m = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion io = ioSpace(m);
        new PortioList(m, List.of(p(0x04, 2, 1), p(0x0a, 1, 1), p(0x10, 16, 1), p(0x24, 2, 1), p(0x2a, 1, 1)), "vga")
                .add(io, 0x3b0);
        new PortioList(m, List.of(p(0, 1, 2), p(1, 1, 2), p(2, 1, 2)), "vbe").add(io, 0x1ce);
        List<String> expected = qemuLines("x86_64-q35-devices", Set.of("vga", "vbe"));
        assertEquals(6, expected.size());
        assertEquals(expected, guestmemLines(m));
    }
}
