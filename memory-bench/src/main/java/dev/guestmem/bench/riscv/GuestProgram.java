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
    SPINLOCK("spinlock");

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
        };
    }

    /** What the program prints: {@code "name: <checksum in 16 hex digits>\n"}. */
    public String expectedConsole(int harts) {
        return String.format("%s: %016x%n", programName, expectedChecksum(harts)).replace(System.lineSeparator(), "\n");
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
