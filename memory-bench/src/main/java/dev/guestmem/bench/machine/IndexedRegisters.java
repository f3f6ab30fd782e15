package dev.guestmem.bench.machine;

import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.MemoryRegionOps;

/**
 * A register file reached through an index register and a data window, as the PC's CMOS RTC (ports 0x70/0x71) and
 * the IOAPIC (IOREGSEL at 0x00, IOWIN at 0x10) are: the guest writes a register number to the index, then reads or
 * writes the selected register through the data window.
 *
 * <p>Threading: the ops synchronize on the device.
 */
public final class IndexedRegisters {
    private final long[] regs;
    private final long dataOffset;
    private final long readOnlyRegs;
    private int index;

    /**
     * @param count        number of registers
     * @param dataOffset   region offset of the data window (the index register is at offset 0)
     * @param readOnlyRegs register numbers (below 64) the guest cannot write, one bit per register
     */
    public IndexedRegisters(int count, long dataOffset, long readOnlyRegs) {
        this.regs = new long[count];
        this.dataOffset = dataOffset;
        this.readOnlyRegs = readOnlyRegs;
    }

    /** Ops with guest accesses of exactly {@code accessSize} bytes. */
    public MemoryRegionOps ops(int accessSize) {
        return MemoryRegionOps.builder()
                .read(this::read)
                .write(this::write)
                .endianness(DeviceEndian.LITTLE)
                .valid(accessSize, accessSize, false)
                .impl(accessSize, accessSize, false)
                .build();
    }

    public synchronized long read(long addr, int size) {
        if (addr == 0) {
            return index;
        }
        if (addr == dataOffset) {
            return index < regs.length ? regs[index] & mask(size) : mask(size);
        }
        return 0;
    }

    public synchronized void write(long addr, long data, int size) {
        if (addr == 0) {
            index = (int) (data & 0xff);
        } else if (addr == dataOffset && index < regs.length
                && !(index < 64 && (readOnlyRegs >>> index & 1) != 0)) {
            regs[index] = data & mask(size);
        }
    }

    /** Sets register {@code reg} as the hardware would (a reset value or a read-only identification word). */
    public synchronized void set(int reg, long value) {
        regs[reg] = value;
    }

    private static long mask(int size) {
        return size == 8 ? -1L : (1L << (8 * size)) - 1;
    }
}
