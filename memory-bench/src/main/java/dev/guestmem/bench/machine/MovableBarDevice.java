package dev.guestmem.bench.machine;

import dev.guestmem.memory.MemoryRegionOps;

/**
 * A PCI-style device with one 4 KiB MMIO BAR that the machine moves and disables at run time, as a guest's PCI
 * driver reprograms a BAR (QEMU's {@code pci_update_mappings}: {@code memory_region_set_address} and
 * {@code memory_region_set_enabled} of the BAR's region). Registers, 32 bits each: 0x0 the identifier
 * {@link #ID}, 0x4 a scratch register, 0x8 the number of accesses the device has served (reads of it included).
 *
 * <p>Threading: the ops synchronize on the device; any thread may access it.
 */
public final class MovableBarDevice {
    /** What offset 0 reads: "gmbr". */
    public static final int ID = 0x676d_6272;
    public static final long BAR_SIZE = 0x1000;

    private int scratch;
    private int accesses;

    /** A device whose registers are all 0 and which has served no access. */
    public MovableBarDevice() {
    }

    /** Ops over the map's access rules. */
    public MemoryRegionOps ops(MemoryRegionOps.Builder rules) {
        return rules.read(this::read).write(this::write).build();
    }

    /** The register at BAR-relative {@code addr}; 0 outside the three registers. */
    public synchronized long read(long addr, int size) {
        accesses++;
        return switch ((int) addr) {
            case 0 -> ID & 0xffff_ffffL;
            case 4 -> scratch & 0xffff_ffffL;
            case 8 -> accesses & 0xffff_ffffL;
            default -> 0;
        };
    }

    /** Writes the scratch register; other writes are ignored. */
    public synchronized void write(long addr, long data, int size) {
        accesses++;
        if (addr == 4) {
            scratch = (int) data;
        }
    }

    /** Accesses served so far. */
    public synchronized int accesses() {
        return accesses;
    }
}
