package dev.guestmem.bench.machine;

import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.MemoryRegionOps;

/**
 * The registers of a 16550 UART as the guest's serial driver sees them, 8 byte-wide ports: bytes written to THR
 * are the guest's console output, the line status always says "transmitter empty", and the divisor latch,
 * interrupt enable, line control, modem control and scratch registers read back. Nothing is ever received.
 *
 * <p>Threading: the ops synchronize on the device.
 */
public final class Uart16550 {
    private static final int THR_RBR_DLL = 0;
    private static final int IER_DLM = 1;
    private static final int IIR_FCR = 2;
    private static final int LCR = 3;
    private static final int MCR = 4;
    private static final int LSR = 5;
    private static final int MSR = 6;
    private static final int SCR = 7;
    private static final int LCR_DLAB = 0x80;
    /** THR empty and transmitter idle. */
    private static final int LSR_IDLE = 0x60;
    /** No interrupt pending. */
    private static final int IIR_NONE = 0x01;

    private final StringBuilder output = new StringBuilder();
    private int ier;
    private int lcr;
    private int mcr;
    private int scr;
    private int divisor = 12; // 9600 baud, the PC BIOS default

    /** A UART with no output yet, its divisor at 9600 baud and every other register 0. */
    public Uart16550() {
    }

    /** Byte-wide registers: the 16550 only decodes single-byte accesses. */
    public MemoryRegionOps ops() {
        return MemoryRegionOps.builder()
                .read(this::read)
                .write(this::write)
                .endianness(DeviceEndian.LITTLE)
                .valid(1, 1, false)
                .impl(1, 1, false)
                .build();
    }

    public synchronized long read(long addr, int size) {
        boolean dlab = (lcr & LCR_DLAB) != 0;
        return switch ((int) addr) {
            case THR_RBR_DLL -> dlab ? divisor & 0xff : 0;
            case IER_DLM -> dlab ? divisor >>> 8 : ier;
            case IIR_FCR -> IIR_NONE;
            case LCR -> lcr;
            case MCR -> mcr;
            case LSR -> LSR_IDLE;
            case MSR -> 0;
            case SCR -> scr;
            default -> 0;
        };
    }

    public synchronized void write(long addr, long data, int size) {
        int v = (int) (data & 0xff);
        boolean dlab = (lcr & LCR_DLAB) != 0;
        switch ((int) addr) {
            case THR_RBR_DLL -> {
                if (dlab) {
                    divisor = (divisor & 0xff00) | v;
                } else {
                    output.append((char) v);
                }
            }
            case IER_DLM -> {
                if (dlab) {
                    divisor = (divisor & 0xff) | v << 8;
                } else {
                    ier = v & 0x0f;
                }
            }
            case LCR -> lcr = v;
            case MCR -> mcr = v & 0x1f;
            case SCR -> scr = v;
            default -> {
                // FCR, LSR and MSR writes change nothing a transmit-only model keeps.
            }
        }
    }

    /** Everything the guest has transmitted so far, one char per byte. */
    public synchronized String output() {
        return output.toString();
    }

    /** The baud-rate divisor the guest programmed through the divisor latch. */
    public synchronized int divisor() {
        return divisor;
    }
}
