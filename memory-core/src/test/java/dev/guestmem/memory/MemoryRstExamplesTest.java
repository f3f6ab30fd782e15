package dev.guestmem.memory;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The worked examples of QEMU's memory API guide ({@code docs/devel/memory.rst}) as golden tests: each is built with
 * guestmem's API and its flat view is asserted range by range (memory-tools' {@code MtreePrinterTest} prints the PC
 * example as QEMU's {@code info mtree -f}), and cross-checked against {@link BruteForceResolver}.
 *
 * <p>The priority example: a 0x8000-byte container A holds a container B (0x4000 bytes at 0x2000, priority 2) over
 * an MMIO region C (0x6000 bytes at 0, priority 1); B maps D at its offset 0 and E at its offset 0x2000, 0x1000
 * bytes each. B outranks C, so D and E show where they are, but B is a pure container, so C shows through wherever
 * B maps nothing. If B is instead an MMIO region with D and E inside, B itself fills its own holes.
 *
 * <p>The PC example: 4 GiB of RAM reach the system address space through two aliases, "lomem" showing its first
 * 3.5 GiB at 0 and "himem" its last 0.5 GiB at 4 GiB, which leaves a 0.5 GiB hole under 4 GiB for PCI. A separate
 * 4 GiB PCI container is seen only through aliases: "pci-hole" at 0xe0000000 and, with priority 1 so that it hides
 * the RAM below it, "vga-window" over 640K-768K. Inside PCI, a "vga-area" container maps two 32 KiB banks of the
 * video RAM (aliases of its offsets 0x10000 and 0x20000); the video RAM itself is a BAR at 0xe1000000 and an MMIO
 * BAR follows it at 0xe2000000. The memory controller closes the VGA window by removing its alias, and a BAR placed
 * outside the hole is cut off by the pci-hole alias.
 */
class MemoryRstExamplesTest {
    private static final MemoryRegionOps OPS = MemoryRegionOps.builder().build();

    private MemorySystem sys;

    @BeforeEach
    void setUp() {
        sys = new MemorySystem(MemorySystem.LAYOUT_ONLY);
    }

    private static FlatRange range(long start, long last, MemoryRegion mr, long offset) {
        return new FlatRange(start, last, mr, offset, 0, true, false, false, false);
    }

    private static void assertView(AddressSpace as, FlatRange... expected) {
        assertEquals(List.of(expected), as.flatView().ranges());
        new RenderOracleProperties.Case(0).checkView(as, "memory.rst example");
    }

    // ---------------------------------------------------------------- overlapping regions and priority

    /**
     * The regions of the priority example: A holds B at 0x2000 (priority 2) over C at 0 (priority 1); B maps D at its
     * offset 0 and E at 0x2000.
     */
    private final class PriorityMap {
        final MemoryRegion a;
        final MemoryRegion b;
        final MemoryRegion c;
        final MemoryRegion d;
        final MemoryRegion e;
        final AddressSpace as;

        /**
         * @param bIsMmio    B an MMIO region rather than a pure container
         * @param dePriority D's and E's priority inside B, or null to add them without one (QEMU's add_subregion)
         */
        PriorityMap(boolean bIsMmio, Integer dePriority) {
            a = sys.container("A", 0x8000);
            b = bIsMmio ? sys.io("B", 0x4000, OPS) : sys.container("B", 0x4000);
            c = sys.io("C", 0x6000, OPS);
            d = sys.io("D", 0x1000, OPS);
            e = sys.io("E", 0x1000, OPS);
            if (dePriority == null) {
                b.addSubregion(0, d);
                b.addSubregion(0x2000, e);
            } else {
                b.addSubregionOverlap(0, d, dePriority);
                b.addSubregionOverlap(0x2000, e, dePriority);
            }
            a.addSubregionOverlap(0x2000, b, 2);
            a.addSubregionOverlap(0, c, 1);
            as = sys.addressSpace("A", a);
        }
    }

    @Test
    void higherPriorityContainerLetsTheLowerRegionShowThroughItsHoles() {
        PriorityMap m = new PriorityMap(false, null);
        // [CCCCCCCCCCCC][DDDDD][CCCCC][EEEEE][CCCCC]
        assertView(m.as,
                range(0x0000, 0x1fff, m.c, 0),
                range(0x2000, 0x2fff, m.d, 0),
                range(0x3000, 0x3fff, m.c, 0x3000),
                range(0x4000, 0x4fff, m.e, 0),
                range(0x5000, 0x5fff, m.c, 0x5000));
    }

    @Test
    void higherPriorityMmioRegionFillsItsOwnHoles() {
        PriorityMap m = new PriorityMap(true, null);
        // [CCCCCCCCCCCC][DDDDD][BBBBB][EEEEE][BBBBB]
        assertView(m.as,
                range(0x0000, 0x1fff, m.c, 0),
                range(0x2000, 0x2fff, m.d, 0),
                range(0x3000, 0x3fff, m.b, 0x1000),
                range(0x4000, 0x4fff, m.e, 0),
                range(0x5000, 0x5fff, m.b, 0x3000));
    }

    @Test
    void prioritiesAreLocalToTheirContainer() {
        // D and E get priorities far below C's; they are only ever compared with each other, so nothing changes.
        PriorityMap m = new PriorityMap(false, -100);
        assertEquals(m.d, m.as.flatView().lookup(0x2000).region());
        assertEquals(m.e, m.as.flatView().lookup(0x4000).region());

        // With B below C, C hides everything B maps.
        m.a.delSubregion(m.b);
        m.a.addSubregionOverlap(0x2000, m.b, 0);
        assertView(m.as, range(0x0000, 0x5fff, m.c, 0));
    }

    // ---------------------------------------------------------------- example memory map (a simplified PC)

    /** The regions of the PC example, built as the guide draws them. */
    private final class PcMap {
        final MemoryRegion system = sys.container("system", 1L << 48);
        final MemoryRegion ram = sys.ram("ram", 0x1_0000_0000L);
        final MemoryRegion pci = sys.container("pci", 0x1_0000_0000L);
        final MemoryRegion vgaArea = sys.container("vga-area", 0x20000);
        final MemoryRegion vram = sys.ram("vram", 0x100_0000);
        final MemoryRegion vgaMmio = sys.io("vga-mmio", 0x10000, OPS);
        final MemoryRegion lomem = sys.alias("lomem", ram, 0, 0xe000_0000L);
        final MemoryRegion himem = sys.alias("himem", ram, 0xe000_0000L, 0x2000_0000L);
        final MemoryRegion vgaWindow = sys.alias("vga-window", pci, 0xa0000, 0x20000);
        final MemoryRegion pciHole = sys.alias("pci-hole", pci, 0xe000_0000L, 0x2000_0000L);
        final AddressSpace memory;

        PcMap() {
            vgaArea.addSubregion(0x0000, sys.alias("vga.bank0", vram, 0x10000, 0x8000));
            vgaArea.addSubregion(0x8000, sys.alias("vga.bank1", vram, 0x20000, 0x8000));
            pci.addSubregion(0xa0000, vgaArea);
            pci.addSubregion(0xe100_0000L, vram);
            pci.addSubregion(0xe200_0000L, vgaMmio);

            system.addSubregion(0, lomem);
            system.addSubregion(0x1_0000_0000L, himem);
            system.addSubregionOverlap(0xa0000, vgaWindow, 1);
            system.addSubregion(0xe000_0000L, pciHole);
            memory = sys.addressSpace("memory", system);
        }
    }

    @Test
    void pcMapRendersRamAroundThePciHoleAndTheVgaWindow() {
        PcMap pc = new PcMap();
        assertView(pc.memory,
                range(0x0000_0000L, 0x0009_ffffL, pc.ram, 0),
                // the VGA window shows the two vram banks...
                range(0x000a_0000L, 0x000a_7fffL, pc.vram, 0x10000),
                range(0x000a_8000L, 0x000a_ffffL, pc.vram, 0x20000),
                // ...and, where vga-area maps nothing, the RAM under the window shows through
                range(0x000b_0000L, 0xdfff_ffffL, pc.ram, 0xb0000),
                // the PCI hole: only the two BARs; the rest of it is unassigned
                range(0xe100_0000L, 0xe1ff_ffffL, pc.vram, 0),
                range(0xe200_0000L, 0xe200_ffffL, pc.vgaMmio, 0),
                range(0x1_0000_0000L, 0x1_1fff_ffffL, pc.ram, 0xe000_0000L));
    }

    @Test
    void closingTheVgaWindowExposesTheRamUnderneath() {
        PcMap pc = new PcMap();
        pc.system.delSubregion(pc.vgaWindow);
        assertView(pc.memory,
                range(0x0000_0000L, 0xdfff_ffffL, pc.ram, 0),
                range(0xe100_0000L, 0xe1ff_ffffL, pc.vram, 0),
                range(0xe200_0000L, 0xe200_ffffL, pc.vgaMmio, 0),
                range(0x1_0000_0000L, 0x1_1fff_ffffL, pc.ram, 0xe000_0000L));

        // Opening it again brings the banks back.
        pc.system.addSubregionOverlap(0xa0000, pc.vgaWindow, 1);
        assertEquals(pc.vram, pc.memory.flatView().lookup(0xa0000).region());
    }

    @Test
    void barOutsideThePciHoleIsCutOffByTheHoleAlias() {
        PcMap pc = new PcMap();
        // The MMIO BAR moved below the hole: the pci-hole alias does not show it, and lomem's RAM is there anyway.
        pc.vgaMmio.setAddress(0xd000_0000L);
        // The vram BAR moved to straddle the start of the hole: only its upper half is visible.
        pc.vram.setAddress(0xdf80_0000L);
        assertView(pc.memory,
                range(0x0000_0000L, 0x0009_ffffL, pc.ram, 0),
                range(0x000a_0000L, 0x000a_7fffL, pc.vram, 0x10000),
                range(0x000a_8000L, 0x000a_ffffL, pc.vram, 0x20000),
                range(0x000b_0000L, 0xdfff_ffffL, pc.ram, 0xb0000),
                range(0xe000_0000L, 0xe07f_ffffL, pc.vram, 0x80_0000),
                range(0x1_0000_0000L, 0x1_1fff_ffffL, pc.ram, 0xe000_0000L));
    }

    @Test
    void pciSeenAsItsOwnAddressSpace() {
        // Not in the guide, but it follows from the same tree: a bus master on PCI sees all of it, and none of the
        // system RAM.
        PcMap pc = new PcMap();
        AddressSpace pciAs = sys.addressSpace("pci", pc.pci);
        assertView(pciAs,
                range(0x000a_0000L, 0x000a_7fffL, pc.vram, 0x10000),
                range(0x000a_8000L, 0x000a_ffffL, pc.vram, 0x20000),
                range(0xe100_0000L, 0xe1ff_ffffL, pc.vram, 0),
                range(0xe200_0000L, 0xe200_ffffL, pc.vgaMmio, 0));
    }
}
