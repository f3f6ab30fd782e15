package dev.guestmem.memory;

import java.util.Objects;

/**
 * Old-style MMIO callbacks: the 2012 header's {@code MemoryRegionMmio} ({@code old_mmio} in
 * {@code MemoryRegionOps}), one read and one write function per access size, as devices were written for
 * {@code cpu_register_io_memory} before QEMU 1.0's memory API. {@link #ops} makes a {@link MemoryRegionOps.Builder}
 * of them, to which QEMU's other options (byte order, {@code valid}, {@link MemoryRegionOps.Builder#offset offset})
 * can still be added.
 *
 * <p>The arrays are indexed as QEMU's: 0 for byte, 1 for word (2 bytes), 2 for long (4 bytes). An 8-byte access is
 * two 4-byte calls (the ops implement at most 4 bytes, as QEMU 1.0's TCG split a 64-bit I/O access in two). A size
 * whose slot is null behaves as QEMU 1.0's {@code unassigned_mem_read}/{@code unassigned_mem_write}, which
 * {@code cpu_register_io_memory} put in the empty slots: a read gives 0, a write is dropped, and the result is
 * {@link MemTxResult#DECODE_ERROR} (unassigned memory, which targets that fault on it, as SPARC and MIPS did, turn
 * into a bus error).
 *
 * <p>Threading: as {@link MemoryRegionOps}.
 */
public final class MemoryRegionMmio {
    /** QEMU's {@code CPUReadMemoryFunc}: the value of one access at region offset {@code addr}, in its size. */
    @FunctionalInterface
    public interface ReadFunc {
        int read(long addr);
    }

    /** QEMU's {@code CPUWriteMemoryFunc}: {@code value} holds the access's size in its low bytes. */
    @FunctionalInterface
    public interface WriteFunc {
        void write(long addr, int value);
    }

    private MemoryRegionMmio() {
    }

    /**
     * The ops of an old-style device: {@code read[0..2]} and {@code write[0..2]} for byte, word and long accesses,
     * each slot a function or null.
     *
     * @throws IllegalArgumentException if an array does not have exactly 3 slots
     */
    public static MemoryRegionOps.Builder ops(ReadFunc[] read, WriteFunc[] write) {
        Objects.requireNonNull(read, "read");
        Objects.requireNonNull(write, "write");
        if (read.length != 3 || write.length != 3) {
            throw new IllegalArgumentException("read.length=" + read.length + " write.length=" + write.length
                    + ": old-style MMIO has 3 slots each (byte, word, long)");
        }
        final ReadFunc[] r = read.clone();
        final WriteFunc[] w = write.clone();
        return MemoryRegionOps.builder()
                .readWithAttrs((addr, data, size, attrs) -> {
                    final ReadFunc f = r[slot(size)];
                    if (f == null) {
                        data[0] = 0;
                        return MemTxResult.DECODE_ERROR;
                    }
                    data[0] = f.read(addr) & 0xffff_ffffL;
                    return MemTxResult.OK;
                })
                .writeWithAttrs((addr, data, size, attrs) -> {
                    final WriteFunc f = w[slot(size)];
                    if (f == null) {
                        return MemTxResult.DECODE_ERROR;
                    }
                    f.write(addr, (int) data);
                    return MemTxResult.OK;
                })
                .impl(1, 4, false);
    }

    /** QEMU's {@code bitops_ffsl(size)}: the slot of a 1, 2 or 4-byte access. */
    private static int slot(int size) {
        return Integer.numberOfTrailingZeros(size);
    }
}
