package dev.guestmem.bench.machine;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The default machine renders to the PC memory map its javadoc describes, range for range. */
class DefaultPcMachineTest {

    /** One flat range as the test states it: addresses, serving region, offset in it, flags. */
    record Range(long start, long last, String region, long offset, boolean readonly, boolean romd) {
        static Range of(FlatRange fr) {
            return new Range(fr.start(), fr.last(), fr.region().name(), fr.offsetInRegion(), fr.readonly(),
                    fr.romdMode());
        }
    }

    static Range rw(long start, long last, String region, long offset) {
        return new Range(start, last, region, offset, false, true);
    }

    static Range ro(long start, long last, String region, long offset) {
        return new Range(start, last, region, offset, true, true);
    }

    static List<Range> ranges(FlatView view) {
        return view.ranges().stream().map(Range::of).toList();
    }

    static final List<Range> MEMORY_AT_RESET = List.of(
            rw(0x0, 0x9_ffff, "pc.ram", 0),                      // conventional memory
            rw(0xa_0000, 0xb_ffff, "vga-lowmem", 0),             // smram-region shows PCI's VGA window
            ro(0xc_0000, 0xc_7fff, "pc.ram", 0xc_0000),          // pam-rom: write-protected shadow RAM
            ro(0xc_8000, 0xc_ffff, "pc.rom", 0x8000),            // pam-pci: the option ROM through PCI
            rw(0xd_0000, 0xd_7fff, "pc.ram", 0xd_0000),          // pam-ram: read-write shadow RAM
            ro(0xd_8000, 0xd_ffff, "pc.rom", 0x1_8000),          // pam-pci
            ro(0xe_0000, 0xf_ffff, "pc.bios", 0x2_0000),         // pam-pci -> isa-bios: the BIOS's last 128 KiB
            rw(0x10_0000, 0x3ff_ffff, "pc.ram", 0x10_0000),      // ram-below-4g above 1 MiB
            rw(0xfec0_0000L, 0xfec0_0fffL, "ioapic", 0),
            rw(0xfed0_0000L, 0xfed0_03ffL, "hpet", 0),
            rw(0xfee0_0000L, 0xfeef_ffffL, "lapic", 0),
            rw(0xfffa_0000L, 0xfffb_ffffL, "pc.flash0", 0),      // rom device in romd mode
            ro(0xfffc_0000L, 0xffff_ffffL, "pc.bios", 0),        // the BIOS at the top of 4 GiB
            rw(0x1_0000_0000L, 0x1_00ff_ffffL, "pc.ram.high", 0)); // ram-above-4g

    static final List<Range> IO = List.of(
            rw(0x20, 0x21, "pic", 0),
            rw(0x40, 0x43, "pit", 0),
            rw(0x70, 0x71, "rtc", 0),
            rw(0xa0, 0xa1, "pic", 0),
            rw(0x3f8, 0x3ff, "serial", 0));

    @Test
    void memoryAndIoRenderToThePcMap() {
        MemorySystem system = new MemorySystem();
        List<AddressSpace> spaces = DefaultPcMachine.build(system);

        assertEquals(List.of("memory", "I/O"), spaces.stream().map(AddressSpace::name).toList());
        assertEquals(MEMORY_AT_RESET, ranges(spaces.get(0).flatView()));
        assertEquals(IO, ranges(spaces.get(1).flatView()));
    }

    @Test
    void layoutOnlyRamGivesTheSameMap() {
        List<AddressSpace> spaces = DefaultPcMachine.build(new MemorySystem(MemorySystem.LAYOUT_ONLY));
        assertEquals(MEMORY_AT_RESET, ranges(spaces.get(0).flatView()));
        assertEquals(IO, ranges(spaces.get(1).flatView()));
    }

    @Test
    void prioritiesDecideWhoIsSeen() {
        AddressSpace memory = DefaultPcMachine.build(new MemorySystem()).get(0);
        FlatView view = memory.flatView();
        // lapic (4096) over nothing else; pci (-1) under RAM: RAM is seen where both decode.
        assertEquals(4096, view.lookup(DefaultPcMachine.LAPIC_BASE).region().priority());
        assertEquals("pc.ram", view.lookup(0x9_ffff).region().name());
        assertEquals("pc.bios", view.lookup(DefaultPcMachine.ISA_BIOS_BASE).region().name());
        assertNull(view.lookup(0x8000_0000L), "the PCI hole decodes nothing here");
    }

    @Test
    void reprogrammingPamSwitchesTheShadowWindow() {
        MemorySystem system = new MemorySystem();
        AddressSpace memory = DefaultPcMachine.build(system).get(0);
        MemoryRegion pamRam = region(memory.root(), "pam-ram", 0xe_0000);
        MemoryRegion pamPci = region(memory.root(), "pam-pci", 0xe_0000);

        // As a BIOS shadows itself: 0xe0000 becomes read-write RAM in one transaction.
        system.transaction(() -> {
            pamPci.setEnabled(false);
            pamRam.setEnabled(true);
        });
        FlatRange shadow = memory.flatView().lookup(0xe_0000);
        assertEquals(rw(0xe_0000, 0xe_ffff, "pc.ram", 0xe_0000), Range.of(shadow));
        assertEquals(ro(0xf_0000, 0xf_ffff, "pc.bios", 0x3_0000), Range.of(memory.flatView().lookup(0xf_0000)));

        system.transaction(() -> {
            pamRam.setEnabled(false);
            pamPci.setEnabled(true);
        });
        assertEquals(MEMORY_AT_RESET, ranges(memory.flatView()));
    }

    @Test
    void flashCommandsLeaveAndReenterRomdMode() {
        MemorySystem system = new MemorySystem();
        AddressSpace memory = DefaultPcMachine.build(system).get(0);
        MemoryRegion flash = region(memory.root(), "pc.flash0", DefaultPcMachine.FLASH_BASE);

        flash.ops().write().write(0, 0x90, 1); // read identifier
        assertFalse(memory.flatView().lookup(DefaultPcMachine.FLASH_BASE).romdMode());
        assertEquals(CfiFlash.MANUFACTURER_ID, flash.ops().read().read(0, 1));
        assertEquals(CfiFlash.DEVICE_ID, flash.ops().read().read(1, 1));

        flash.ops().write().write(0x100, 0x40, 1); // program
        flash.ops().write().write(0x100, 0xcafe, 2);
        assertEquals(CfiFlash.STATUS_READY, flash.ops().read().read(0, 1));
        flash.ops().write().write(0, 0xff, 1); // read array
        assertTrue(memory.flatView().lookup(DefaultPcMachine.FLASH_BASE).romdMode());
        assertEquals((byte) 0xfe, flash.ramSegment().get(ValueLayout.JAVA_BYTE, 0x100), "little-endian data bus");
        assertEquals((byte) 0xca, flash.ramSegment().get(ValueLayout.JAVA_BYTE, 0x101));

        flash.ops().write().write(0x100, 0x20, 1); // erase the block
        flash.ops().write().write(0x100, 0xd0, 1);
        flash.ops().write().write(0, 0xff, 1);
        assertEquals((byte) 0xff, flash.ramSegment().get(ValueLayout.JAVA_BYTE, 0x101));
    }

    /** The subregion of {@code container} with this name at this address. */
    static MemoryRegion region(MemoryRegion container, String name, long addr) {
        for (MemoryRegion r : container.subregions()) {
            if (r.name().equals(name) && r.addr() == addr) {
                return r;
            }
        }
        throw new AssertionError("no region name=" + name + " addr=0x" + Long.toHexString(addr));
    }
}
