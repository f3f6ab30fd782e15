package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** {@link MemoryRegionSection#intersectRange}: QEMU's {@code memory_region_section_intersect_range}. */
class MemoryRegionSectionTest {
    private final MemorySystem sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
    private final MemoryRegion ram = sys.ram("ram", 0x10000);
    /** Region-relative 0x2000-0x5fff, mapped at guest-physical 0x42000, read-only. */
    private final MemoryRegionSection s = new MemoryRegionSection(ram, null, 0x2000, 0x42000, 0x45fff, true, false,
            false);

    @Test
    void cropsBothOffsetsAlikeAndKeepsTheAttributes() {
        assertEquals(new MemoryRegionSection(ram, null, 0x3000, 0x43000, 0x43fff, true, false, false),
                s.intersectRange(0x3000, 0x1000));
        assertEquals(new MemoryRegionSection(ram, null, 0x2000, 0x42000, 0x42fff, true, false, false),
                s.intersectRange(0, 0x3000), "a range starting before the section");
        assertEquals(new MemoryRegionSection(ram, null, 0x5800, 0x45800, 0x45fff, true, false, false),
                s.intersectRange(0x5800, 0x10000), "a range ending after it");
        assertEquals(s, s.intersectRange(0, U64.SIZE_2_64), "a range of 2^64 bytes");
        assertEquals(s, s.intersectRange(0x1000, -0x1000L), "a range running past 2^64 is cut there");
    }

    @Test
    void rangesThatDoNotOverlapGiveNullAndAnEmptyRangeIsRefused() {
        assertNull(s.intersectRange(0, 0x2000), "ends just before");
        assertNull(s.intersectRange(0x6000, 0x1000), "starts just after");
        assertNull(s.intersectRange(-0x1000L, 0x1000), "at the top of the space");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.intersectRange(0x3000, 0));
        assertEquals("offset=0x3000 size=0: empty range", e.getMessage());
    }
}
