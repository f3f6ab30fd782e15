package dev.guestmem.bench.machine;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;

import java.util.List;

/**
 * The embedded default machine: a PC memory map in the shape of QEMU's i440fx {@code pc} machine, small enough to
 * build in milliseconds, with every feature of the region tree in use.
 *
 * <p>Address space "memory" (root "system", 2^64 bytes):
 * <ul>
 *   <li>64 MiB of RAM, "pc.ram", all below the PCI hole through the alias "ram-below-4g"; a second block of 16 MiB,
 *   "pc.ram.high", through "ram-above-4g" at 4 GiB, so there is RAM on both sides of the hole.</li>
 *   <li>The container "pci" (2^64 bytes, priority -1, so RAM and chipset regions win over it) holding the legacy VGA
 *   window "vga-lowmem", the option ROM "pc.rom", the BIOS ROM "pc.bios" (the top 256 KiB below 4 GiB) and
 *   "isa-bios", a read-only alias of the BIOS's last 128 KiB at 0xe0000.</li>
 *   <li>"smram-region", an alias of the PCI window at 0xa0000 over RAM, and the PAM shadow windows over
 *   0xc0000-0xfffff: per segment three aliases ("pam-ram", "pam-rom" read-only, "pam-pci"), of which one is
 *   enabled, choosing between shadow RAM, write-protected shadow RAM and whatever PCI decodes there.</li>
 *   <li>MMIO: "ioapic" (index/data registers), "hpet" (registers), "lapic" (priority 4096 above everything, like
 *   QEMU's apic-msi), and the firmware flash "pc.flash0", a ROM device in romd mode just below the BIOS.</li>
 * </ul>
 * Address space "I/O" (root "io", 64 KiB of ports): the two "pic"s, "pit", the CMOS "rtc" and a 16550 "serial" at
 * 0x3f8 that only takes byte accesses.
 *
 * <p>The PAM segments start as a BIOS leaves them after copying its option ROM: 0xc0000 write-protected shadow
 * RAM, 0xc8000 and 0xd8000 decoded by PCI, 0xd0000 read-write shadow RAM, 0xe0000-0xfffff decoded by PCI (so the
 * guest sees isa-bios there).
 *
 * <p>Threading: build from the memory system's writer thread.
 */
public final class DefaultPcMachine {
    public static final long RAM_SIZE = 64L << 20;
    public static final long HIGH_RAM_SIZE = 16L << 20;
    /** Guest-physical address of "ram-above-4g". */
    public static final long HIGH_RAM_BASE = 1L << 32;
    public static final long BIOS_SIZE = 256L << 10;
    public static final long BIOS_BASE = (1L << 32) - BIOS_SIZE;
    public static final long ISA_BIOS_SIZE = 128L << 10;
    public static final long ISA_BIOS_BASE = 0x10_0000 - ISA_BIOS_SIZE;
    public static final long FLASH_SIZE = 128L << 10;
    public static final long FLASH_BASE = BIOS_BASE - FLASH_SIZE;
    public static final long VGA_LOWMEM_BASE = 0xa_0000;
    public static final long VGA_LOWMEM_SIZE = 0x2_0000;
    public static final long OPTION_ROM_BASE = 0xc_0000;
    public static final long OPTION_ROM_SIZE = 0x2_0000;
    public static final long IOAPIC_BASE = 0xfec0_0000L;
    public static final long HPET_BASE = 0xfed0_0000L;
    public static final long LAPIC_BASE = 0xfee0_0000L;
    public static final long SERIAL_PORT = 0x3f8;

    /** The PAM segments: first address and size of each. */
    static final long[][] PAM_SEGMENTS = {
            {0xc_0000, 0x8000}, {0xc_8000, 0x8000}, {0xd_0000, 0x8000}, {0xd_8000, 0x8000},
            {0xe_0000, 0x1_0000}, {0xf_0000, 0x1_0000},
    };

    /** What each PAM segment decodes at reset of this machine. */
    public enum PamMode {
        /** Read-write shadow RAM ("pam-ram"). */
        RAM,
        /** Write-protected shadow RAM ("pam-rom"). */
        ROM,
        /** Not shadowed: PCI decodes it ("pam-pci"). */
        PCI
    }

    static final PamMode[] PAM_AT_RESET = {
            PamMode.ROM, PamMode.PCI, PamMode.RAM, PamMode.PCI, PamMode.PCI, PamMode.PCI,
    };

    private DefaultPcMachine() {
    }

    /**
     * Builds the machine into {@code system} and returns its address spaces, "memory" then "I/O". RAM comes from the
     * system's allocator, so {@link MemorySystem#LAYOUT_ONLY} gives the same map without allocating.
     */
    public static List<AddressSpace> build(MemorySystem system) {
        MemoryRegion sysmem = system.container("system", U64.SIZE_2_64);
        MemoryRegion io = system.container("io", 0x1_0000);
        // One transaction: the tree is rendered once, when the address spaces are made.
        system.transaction(() -> {
            buildMemory(system, sysmem);
            buildIo(system, io);
        });
        return List.of(system.addressSpace("memory", sysmem), system.addressSpace("I/O", io));
    }

    private static void buildMemory(MemorySystem system, MemoryRegion sysmem) {
        MemoryRegion ram = system.ram("pc.ram", RAM_SIZE);
        sysmem.addSubregion(0, system.alias("ram-below-4g", ram, 0, RAM_SIZE));
        MemoryRegion highRam = system.ram("pc.ram.high", HIGH_RAM_SIZE);
        sysmem.addSubregion(HIGH_RAM_BASE, system.alias("ram-above-4g", highRam, 0, HIGH_RAM_SIZE));

        MemoryRegion pci = system.container("pci", U64.SIZE_2_64);
        sysmem.addSubregionOverlap(0, pci, -1);
        pci.addSubregionOverlap(VGA_LOWMEM_BASE,
                system.io("vga-lowmem", VGA_LOWMEM_SIZE, new RegisterBank((int) VGA_LOWMEM_SIZE).ops(1, 4)), 1);
        pci.addSubregionOverlap(OPTION_ROM_BASE, system.rom("pc.rom", OPTION_ROM_SIZE), 1);
        MemoryRegion bios = system.rom("pc.bios", BIOS_SIZE);
        pci.addSubregion(BIOS_BASE, bios);
        MemoryRegion isaBios = system.alias("isa-bios", bios, BIOS_SIZE - ISA_BIOS_SIZE, ISA_BIOS_SIZE);
        isaBios.setReadonly(true);
        pci.addSubregionOverlap(ISA_BIOS_BASE, isaBios, 1);

        // SMRAM closed: the legacy VGA window shows what PCI decodes, not the RAM below it.
        sysmem.addSubregionOverlap(VGA_LOWMEM_BASE,
                system.alias("smram-region", pci, VGA_LOWMEM_BASE, VGA_LOWMEM_SIZE), 1);
        for (int i = 0; i < PAM_SEGMENTS.length; i++) {
            addPamSegment(system, sysmem, ram, pci, PAM_SEGMENTS[i][0], PAM_SEGMENTS[i][1], PAM_AT_RESET[i]);
        }

        IndexedRegisters ioapic = new IndexedRegisters(0x40, 0x10, 0b110); // version and arbitration are read-only
        ioapic.set(1, 0x0017_0011L); // version 0x11, 24 redirection entries
        for (int pin = 0; pin < 24; pin++) {
            ioapic.set(0x10 + 2 * pin, 1L << 16); // every redirection entry masked at reset
        }
        sysmem.addSubregion(IOAPIC_BASE, system.io("ioapic", 0x1000, ioapic.ops(4)));

        RegisterBank hpet = new RegisterBank(0x400, 0xffL);
        hpet.set(0, 0x0098_9680_8086_a201L, 8); // 10 ns period, vendor 0x8086, 3 timers, 64-bit counter, legacy routing
        sysmem.addSubregion(HPET_BASE, system.io("hpet", 0x400, hpet.ops(4, 8)));

        RegisterBank lapic = new RegisterBank(0x1000, 0xfL << 0x30); // the version register is read-only
        lapic.set(0x30, 0x0005_0014L, 4); // version register
        sysmem.addSubregionOverlap(LAPIC_BASE, system.io("lapic", 0x10_0000, lapic.ops(4, 4)), 4096);

        CfiFlash flash = new CfiFlash();
        MemoryRegion flash0 = system.romDevice("pc.flash0", FLASH_SIZE, flash.ops());
        flash.attach(flash0);
        sysmem.addSubregion(FLASH_BASE, flash0);
    }

    /** One PAM segment: three aliases at priority 1, the one for {@code mode} enabled. */
    private static void addPamSegment(MemorySystem system, MemoryRegion sysmem, MemoryRegion ram, MemoryRegion pci,
                                      long base, long size, PamMode mode) {
        MemoryRegion pamRam = system.alias("pam-ram", ram, base, size);
        MemoryRegion pamRom = system.alias("pam-rom", ram, base, size);
        pamRom.setReadonly(true);
        MemoryRegion pamPci = system.alias("pam-pci", pci, base, size);
        pamRam.setEnabled(mode == PamMode.RAM);
        pamRom.setEnabled(mode == PamMode.ROM);
        pamPci.setEnabled(mode == PamMode.PCI);
        sysmem.addSubregionOverlap(base, pamRam, 1);
        sysmem.addSubregionOverlap(base, pamRom, 1);
        sysmem.addSubregionOverlap(base, pamPci, 1);
    }

    private static void buildIo(MemorySystem system, MemoryRegion io) {
        io.addSubregion(0x20, system.io("pic", 2, new RegisterBank(2).ops(1, 1)));
        io.addSubregion(0xa0, system.io("pic", 2, new RegisterBank(2).ops(1, 1)));
        io.addSubregion(0x40, system.io("pit", 4, new RegisterBank(4).ops(1, 1)));
        IndexedRegisters cmos = new IndexedRegisters(128, 1, 0);
        cmos.set(0x10, 0x40); // floppy drive A: 1.44 MB, drive B: none
        io.addSubregion(0x70, system.io("rtc", 2, cmos.ops(1)));
        io.addSubregion(SERIAL_PORT, system.io("serial", 8, new Uart16550().ops()));
    }
}
