package dev.guestmem.bench.riscv;

import dev.guestmem.memory.MemoryRegionOps;

/**
 * The {@code virt} board's test finisher (QEMU's {@code sifive_test}, "riscv.sifive.test" at 0x100000): a 32-bit
 * write to offset 0 ends the run, its low 16 bits saying how. 0x5555 is pass, 0x3333 fail (with the exit code in the
 * high 16 bits), 0x7777 reset; other values are ignored. Reads return 0. Where QEMU exits, this records the status
 * for the machine's vCPU loops to see.
 *
 * <p>Threading: any vCPU thread may write; {@link #status()} may be read from any thread.
 */
public final class TestFinisher {
    public static final int PASS = 0x5555;
    public static final int FAIL = 0x3333;
    public static final int RESET = 0x7777;
    /** {@link #status()} before the guest wrote. */
    public static final int RUNNING = 0;

    /** The whole value the guest wrote (status and code), or {@link #RUNNING}. */
    private volatile int status = RUNNING;

    /** Ops over the map's access rules (see {@link MemoryRegionOps.Builder}). */
    public MemoryRegionOps ops(MemoryRegionOps.Builder rules) {
        return rules.read((addr, size) -> 0L).write(this::write).build();
    }

    private void write(long addr, long data, int size) {
        final int v = (int) data;
        final int kind = v & 0xffff;
        if (addr == 0 && (kind == PASS || kind == FAIL || kind == RESET) && status == RUNNING) {
            status = v; // volatile: the vCPU loops poll it between slices
        }
    }

    /** Back to {@link #RUNNING}, as at power-on. */
    void reset() {
        status = RUNNING;
    }

    /** Whether the guest has written an end status. */
    public boolean finished() {
        return status != RUNNING;
    }

    /** The low 16 bits of what the guest wrote: {@link #PASS}, {@link #FAIL}, {@link #RESET}, or {@link #RUNNING}. */
    public int status() {
        return status & 0xffff;
    }

    /** The exit code of a {@link #FAIL}: the high 16 bits. */
    public int exitCode() {
        return status >>> 16;
    }
}
