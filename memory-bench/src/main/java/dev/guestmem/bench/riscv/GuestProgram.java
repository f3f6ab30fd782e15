package dev.guestmem.bench.riscv;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Objects;

/**
 * The guest programs of native-test-images/src/main/riscv, each with a Java computation of the checksum it must
 * end with (the same pseudo-random numbers and FNV-1a over 64-bit words as the C, {@code guest.h}) and the line it
 * prints on the UART. The images are resources of this package ({@code images/NAME.bin}), copied from
 * native-test-images by the build.
 */
public enum GuestProgram {
    /** Random-length copies between random offsets of two 64 KiB buffers. */
    MEMCPY("memcpy"),
    /** Heapsort of 8192 random numbers. */
    SORT("sort"),
    /** An open-addressing hash table: random inserts, then random probes. */
    HASH("hash"),
    /** Generates a function into one buffer 200 times over and calls it after {@code fence.i}. */
    SELFMOD("selfmod"),
    /** Harts meet on an LR/SC spinlock around a shared counter, and add to AMO counters. */
    SPINLOCK("spinlock"),
    /** Every hart draws its rows of {@value #FRAMES} frames into the framebuffer; the checksum covers the last one. */
    RENDER("render"),
    /** Prints {@value #UART_LINES} lines of pseudo-random numbers on the UART, polling its line status. */
    UART("uart");

    /** The framebuffer the renderer draws into: guest-physical address, size in pixels, 32-bit {@code 0x00RRGGBB}. */
    public static final long FB_BASE = 0x4000_0000L;
    public static final int FB_WIDTH = 320;
    public static final int FB_HEIGHT = 240;
    /** Frames the renderer draws. */
    public static final int FRAMES = 12;
    static final int UART_LINES = 48;

    private static final long FNV_OFFSET = 0xcbf29ce484222325L;
    private static final long FNV_PRIME = 0x100000001b3L;

    private final String programName;

    GuestProgram(String programName) {
        this.programName = programName;
    }

    /** The program's name: its source is {@code NAME.c}, its image {@code NAME.bin}. */
    public String programName() {
        return programName;
    }

    public String imageName() {
        return programName + ".bin";
    }

    /** The flat boot image, to load at the start of the flash. */
    public byte[] image() {
        String resource = "images/" + imageName();
        try (InputStream in = GuestProgram.class.getResourceAsStream(resource)) {
            return Objects.requireNonNull(in, resource).readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The checksum the program computes when run on {@code harts} harts. */
    public long expectedChecksum(int harts) {
        return switch (this) {
            case MEMCPY -> memcpy();
            case SORT -> sort();
            case HASH -> hash();
            case SELFMOD -> selfmod();
            case SPINLOCK -> spinlock(harts);
            case RENDER -> render();
            case UART -> uart(null);
        };
    }

    /**
     * What the program prints: {@code "name: <checksum in 16 hex digits>\n"}, after its lines of numbers for
     * {@link #UART}.
     */
    public String expectedConsole(int harts) {
        StringBuilder out = new StringBuilder();
        if (this == UART) {
            uart(out);
        }
        return out.append(programName).append(": ").append(hex(expectedChecksum(harts), 16)).append('\n').toString();
    }

    private static String hex(long v, int digits) {
        String s = Long.toHexString(v);
        return "0".repeat(Math.max(0, digits - s.length())) + s;
    }

    /** The pixel {@link #RENDER} draws at {@code (x, y)} in frame {@code f}: render.c's {@code pixel}. */
    public static int renderPixel(int x, int y, int f) {
        int cx = 160 + (f * 7) % 80 - 40;
        int cy = 120 + (f * 5) % 60 - 30;
        int dx = x - cx;
        int dy = y - cy;
        int r = (((dx * dx + dy * dy) >> 5) + f * 8) & 0xff;
        int g = ((x ^ y) + f * 4) & 0xff;
        int b = ((y * 17) >> 4) & 0xff;
        return r << 16 | g << 8 | b;
    }

    private static long xorshift(long[] state) {
        long x = state[0];
        x ^= x << 13;
        x ^= x >>> 7;
        x ^= x << 17;
        state[0] = x;
        return x;
    }

    private static long fnv(long h, long word) {
        return (h ^ word) * FNV_PRIME;
    }

    private static long memcpy() {
        final int bytes = 65536;
        long[] state = {0x243f6a8885a308d3L};
        ByteBuffer src = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < bytes / 8; i++) {
            src.putLong(i * 8, xorshift(state));
        }
        byte[] dst = new byte[bytes];
        for (int round = 0; round < 400; round++) {
            long r = xorshift(state);
            long len = Long.remainderUnsigned(r, 4096);
            long from = Long.remainderUnsigned(r >>> 16, bytes - len);
            long to = Long.remainderUnsigned(r >>> 32, bytes - len);
            System.arraycopy(src.array(), (int) from, dst, (int) to, (int) len);
        }
        ByteBuffer d = ByteBuffer.wrap(dst).order(ByteOrder.LITTLE_ENDIAN);
        long h = FNV_OFFSET;
        for (int i = 0; i < bytes / 8; i++) {
            h = fnv(h, d.getLong(i * 8));
        }
        return h;
    }

    private static long sort() {
        long[] state = {0x13198a2e03707344L};
        long[] values = new long[8192];
        for (int i = 0; i < values.length; i++) {
            values[i] = xorshift(state) >>> 1;
        }
        Arrays.sort(values);
        long h = FNV_OFFSET;
        for (long v : values) {
            h = fnv(h, v);
        }
        return h;
    }

    private static long hash() {
        final int inserts = 30000;
        long[] state = {0xa4093822299f31d0L};
        long[] keys = new long[inserts];
        HashMap<Long, Long> table = new HashMap<>();
        for (int i = 0; i < inserts; i++) {
            keys[i] = xorshift(state);
            table.put(keys[i], (long) i);
        }
        long h = FNV_OFFSET;
        for (int i = 0; i < 60000; i++) {
            long r = xorshift(state);
            long key = (r & 1) != 0 ? keys[(int) Long.remainderUnsigned(r >>> 1, inserts)] : r | 1;
            h = fnv(h, table.getOrDefault(key, -1L));
        }
        return h;
    }

    private static long selfmod() {
        long acc = 1;
        for (int k = 0; k < 200; k++) {
            int n = 1 + k % 32;
            for (int j = 0; j < n; j++) {
                acc += (k * 37 + j * 11) % 2048 - 1024; // addi a0, a0, imm
            }
            acc ^= k; // xori a0, a0, k
            acc = acc * 3 + k;
        }
        return acc;
    }

    private static long render() {
        long h = FNV_OFFSET;
        for (int y = 0; y < FB_HEIGHT; y++) {
            for (int x = 0; x < FB_WIDTH; x += 2) {
                long lo = renderPixel(x, y, FRAMES - 1) & 0xffff_ffffL;
                long hi = renderPixel(x + 1, y, FRAMES - 1) & 0xffff_ffffL;
                h = fnv(h, hi << 32 | lo);
            }
        }
        return fnv(h, FRAMES);
    }

    /** The checksum of {@link #UART}; appends the lines it prints before its result line to {@code out} if given. */
    private static long uart(StringBuilder out) {
        long[] state = {0x082efa98ec4e6c89L};
        long h = FNV_OFFSET;
        for (int i = 0; i < UART_LINES; i++) {
            long v = xorshift(state);
            if (out != null) {
                out.append("uart: ").append(hex(i, 2)).append(' ').append(hex(v, 16)).append('\n');
            }
            h = fnv(h, v);
        }
        return h;
    }

    private static long spinlock(int harts) {
        final long iters = 1000;
        long h = FNV_OFFSET;
        h = fnv(h, harts * iters); // the counter
        h = fnv(h, iters * harts * (harts + 1) / 2); // amoadd of hartid + 1
        h = fnv(h, (1L << harts) - 1); // amoor of 1 << hartid
        h = fnv(h, harts - 1); // amomaxu of hartid
        h = fnv(h, harts);
        return h;
    }
}
