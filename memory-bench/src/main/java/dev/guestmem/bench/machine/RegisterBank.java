package dev.guestmem.bench.machine;

import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.MemoryRegionOps;

/**
 * A device's plain registers: bytes that read back what the guest last wrote, little-endian, like the many simple
 * latches of a PC chipset (a PIC's mask register, a PIT's counter latches, an HPET's configuration words). Values
 * given to {@link #set} stand for reset values or hardware-updated status the guest cannot change.
 *
 * <p>Threading: the ops synchronize on the bank, so accesses from several vCPU threads see whole values.
 */
public final class RegisterBank {
    private final byte[] regs;
    private final long readOnlyMask;

    /**
     * @param size          bytes of register space
     * @param readOnlyBytes offsets (below 64) of bytes the guest cannot write, one bit per offset
     */
    public RegisterBank(int size, long readOnlyBytes) {
        this.regs = new byte[size];
        this.readOnlyMask = readOnlyBytes;
    }

    public RegisterBank(int size) {
        this(size, 0);
    }

    /**
     * Ops serving this bank, with guest accesses of {@code minAccess..maxAccess} bytes, naturally aligned.
     *
     * @param minAccess smallest access in bytes
     * @param maxAccess largest access in bytes
     */
    public MemoryRegionOps ops(int minAccess, int maxAccess) {
        return MemoryRegionOps.builder()
                .read(this::read)
                .write(this::write)
                .endianness(DeviceEndian.LITTLE)
                .valid(minAccess, maxAccess, false)
                .impl(minAccess, maxAccess, false)
                .build();
    }

    /** Reads {@code size} bytes at register offset {@code addr}, little-endian; bytes past the bank read as 0. */
    public synchronized long read(long addr, int size) {
        long v = 0;
        for (int i = size - 1; i >= 0; i--) {
            long off = addr + i;
            v = (v << 8) | (off >= 0 && off < regs.length ? regs[(int) off] & 0xff : 0);
        }
        return v;
    }

    /** Writes the low {@code size} bytes of {@code data} at register offset {@code addr}, skipping read-only bytes. */
    public synchronized void write(long addr, long data, int size) {
        for (int i = 0; i < size; i++) {
            long off = addr + i;
            boolean readOnly = off < 64 && (readOnlyMask >>> off & 1) != 0;
            if (off >= 0 && off < regs.length && !readOnly) {
                regs[(int) off] = (byte) (data >>> (8 * i));
            }
        }
    }

    /** Sets {@code size} bytes at {@code addr} as the hardware would, read-only bytes included. */
    public synchronized void set(long addr, long data, int size) {
        for (int i = 0; i < size; i++) {
            regs[(int) (addr + i)] = (byte) (data >>> (8 * i));
        }
    }

    public int size() {
        return regs.length;
    }
}
