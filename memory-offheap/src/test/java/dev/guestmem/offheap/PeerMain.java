package dev.guestmem.offheap;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The second process of {@link PeerProcessTest}: a JVM that maps the guest's RAM through a path (a file, or
 * /proc/PID/fd/N of the guest's memfd), checks the bytes the guest wrote and writes its own for the guest to check.
 *
 * <p>Arguments: path, file offset, length, guest seed, peer seed, split (all numbers decimal). Bytes
 * {@code [0, split)} must hold {@link #pattern}(guest seed); the peer fills {@code [split, length)} with
 * {@link #pattern}(peer seed). Prints {@code OK} and exits 0, or prints the first difference and exits 2.
 */
public final class PeerMain {
    private PeerMain() {
    }

    /** The byte at {@code offset} of the pattern of {@code seed}. */
    static byte pattern(long seed, long offset) {
        long x = (offset + seed) * 0x9E3779B97F4A7C15L;
        return (byte) (x >>> 56 ^ x >>> 29);
    }

    public static void main(String[] args) throws IOException {
        Path path = Path.of(args[0]);
        long fileOffset = Long.parseLong(args[1]);
        long length = Long.parseLong(args[2]);
        long guestSeed = Long.parseLong(args[3]);
        long peerSeed = Long.parseLong(args[4]);
        long split = Long.parseLong(args[5]);
        try (Arena arena = Arena.ofConfined();
             FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment ram = ch.map(FileChannel.MapMode.READ_WRITE, fileOffset, length, arena);
            for (long i = 0; i < split; i++) {
                byte b = ram.get(ValueLayout.JAVA_BYTE, i);
                if (b != pattern(guestSeed, i)) {
                    System.out.println("MISMATCH offset=" + i + " byte=" + b + " expected=" + pattern(guestSeed, i));
                    System.exit(2);
                }
            }
            for (long i = split; i < length; i++) {
                ram.set(ValueLayout.JAVA_BYTE, i, pattern(peerSeed, i));
            }
        }
        System.out.println("OK");
    }
}
