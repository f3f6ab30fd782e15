package dev.guestmem.bench.machine;

import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A parallel NOR flash with a reduced Intel command set, as the firmware flash of a PC (QEMU's pflash_cfi01) is
 * modelled: a ROM device that the guest reads directly while it is in read-array (romd) mode, and whose writes are
 * commands. Any command other than read-array takes the device out of romd mode, so reads go to these ops and return
 * status or identification words until the guest writes read-array (0xff) again.
 *
 * <p>Commands: 0xff read array, 0x90 read identifier, 0x70 read status, 0x50 clear status, 0x40/0x10 program (the
 * next write stores its bytes), 0x20 then 0xd0 erase the 64 KiB block of the address (fills it with 0xff).
 * Simplification: programming stores the bytes as given instead of clearing bits only.
 *
 * <p>The array is written behind the access path (through the region's segment), so what a program or an erase
 * wrote is handed to {@link MemoryRegion#flushRomDevice} (QEMU's {@code memory_region_flush_rom_device}): marked
 * dirty for a migration or a display and reported to code protection, so a JIT drops code it decoded from those
 * bytes. That happens when the flash goes back to read-array mode, because the region must be in romd mode for it
 * (as in QEMU) and because until then nobody can read the new bytes directly: every read goes to these ops.
 *
 * <p>Threading: the ops synchronize on the device; changing romd mode is a topology change and takes the memory
 * system's lock, as QEMU's flash does under the BQL.
 */
public final class CfiFlash {
    /** Intel's JEDEC manufacturer code. */
    public static final int MANUFACTURER_ID = 0x89;
    /** The identifier word this model reports at offset 1. */
    public static final int DEVICE_ID = 0x18;
    /** Status register: write state machine ready. */
    public static final int STATUS_READY = 0x80;
    public static final long BLOCK_SIZE = 64 * 1024;

    private enum ReadMode { ARRAY, STATUS, IDENTIFIER }

    private MemoryRegion region;
    private ReadMode readMode = ReadMode.ARRAY;
    /** The first cycle of a two-cycle command (0x40, 0x10, 0x20), or 0. */
    private int pending;
    /** Region-relative span of the array written since the last read-array command, {@code [writtenFrom, writtenTo)}. */
    private long writtenFrom = Long.MAX_VALUE;
    private long writtenTo;

    /** A flash in read-array mode, not yet given its region. */
    public CfiFlash() {
    }

    /** Reads and writes of 1, 2 or 4 bytes, as the flash's data bus allows. */
    public MemoryRegionOps ops() {
        return MemoryRegionOps.builder()
                .read(this::read)
                .write(this::write)
                .endianness(DeviceEndian.LITTLE)
                .valid(1, 4, false)
                .impl(1, 4, false)
                .build();
    }

    /** Connects the device to its ROM device region, whose memory holds the flash array. */
    public synchronized void attach(MemoryRegion romDevice) {
        if (romDevice.kind() != MemoryRegion.Kind.ROM_DEVICE) {
            throw new IllegalArgumentException("region=" + romDevice.name() + " kind=" + romDevice.kind().mapName()
                    + ": a flash needs a rom-device region");
        }
        this.region = romDevice;
    }

    /** A read outside romd mode; region-relative {@code addr}. */
    public synchronized long read(long addr, int size) {
        return switch (readMode) {
            case IDENTIFIER -> addr == 0 ? MANUFACTURER_ID : addr == 1 ? DEVICE_ID : 0;
            case STATUS -> STATUS_READY;
            case ARRAY -> {
                long v = 0;
                MemorySegment array = region.ramSegment();
                for (int i = size - 1; i >= 0; i--) {
                    v = (v << 8) | (array.get(ValueLayout.JAVA_BYTE, addr + i) & 0xff);
                }
                yield v;
            }
        };
    }

    /** A write: a command, or the data cycle of a program or erase command; region-relative {@code addr}. */
    public synchronized void write(long addr, long data, int size) {
        int cmd = (int) (data & 0xff);
        if (pending == 0x40 || pending == 0x10) {
            MemorySegment array = region.ramSegment();
            for (int i = 0; i < size; i++) {
                array.set(ValueLayout.JAVA_BYTE, addr + i, (byte) (data >>> (8 * i)));
            }
            written(addr, size);
            pending = 0;
            enter(ReadMode.STATUS);
            return;
        }
        if (pending == 0x20) {
            pending = 0;
            if (cmd == 0xd0) {
                long start = addr & ~(BLOCK_SIZE - 1);
                long length = Math.min(BLOCK_SIZE, region.size() - start);
                region.ramSegment().asSlice(start, length).fill((byte) 0xff);
                written(start, length);
            }
            enter(ReadMode.STATUS);
            return;
        }
        switch (cmd) {
            case 0xff -> enter(ReadMode.ARRAY);
            case 0x90 -> enter(ReadMode.IDENTIFIER);
            case 0x70, 0x50 -> enter(ReadMode.STATUS);
            case 0x40, 0x10, 0x20 -> {
                pending = cmd;
                enter(ReadMode.STATUS);
            }
            default -> {
                // Unknown commands are ignored, as the real part does.
            }
        }
    }

    private void written(long addr, long length) {
        writtenFrom = Math.min(writtenFrom, addr);
        writtenTo = Math.max(writtenTo, addr + length);
    }

    private void enter(ReadMode mode) {
        readMode = mode;
        region.setRomd(mode == ReadMode.ARRAY);
        if (mode == ReadMode.ARRAY && writtenFrom < writtenTo) {
            region.flushRomDevice(writtenFrom, writtenTo - writtenFrom);
            writtenFrom = Long.MAX_VALUE;
            writtenTo = 0;
        }
    }
}
