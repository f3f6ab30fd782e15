package dev.guestmem.bench.vhost;

import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The benchmark compares like with like: a read through the daemon and a pread in this process put the same image
 * bytes at the same guest-physical address, for both request shapes, and every benchmark method completes.
 */
class VhostUserBlkBenchmarkTest {

    @Test
    void bothPathsPutTheImagesBytesInGuestRam() throws Exception {
        VhostUserBlkBenchmark bench = new VhostUserBlkBenchmark();
        bench.setup();
        try {
            for (int len : new int[] {4096, 65536}) {
                long offset = bench.randomOffsets[7] & ~0xffffL;
                byte[] expected = imageBytes(bench, offset, len);
                clear(bench, len);
                assertEquals(0, bench.vhostRead(offset, len), "VIRTIO_BLK_S_OK");
                assertArrayEquals(expected, guestBytes(bench, len), "through the daemon, len=" + len);
                clear(bench, len);
                assertEquals(len, bench.pread(offset, len));
                assertArrayEquals(expected, guestBytes(bench, len), "pread, len=" + len);
            }
            assertEquals(0, bench.vhostRandom4k());
            assertEquals(0, bench.vhostSequential64k());
            assertEquals(4096, bench.preadRandom4k());
            assertEquals(65536, bench.preadSequential64k());
            assertEquals(2 * 65536, bench.nextSequential, "the sequential rows advance together through the image");
        } finally {
            bench.tearDown();
        }
    }

    private static byte[] imageBytes(VhostUserBlkBenchmark bench, long offset, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        try (FileChannel f = FileChannel.open(bench.image, StandardOpenOption.READ)) {
            f.read(b, offset);
        }
        return b.array();
    }

    private static void clear(VhostUserBlkBenchmark bench, int len) {
        assertEquals(MemTxResult.OK, bench.as.write(VhostUserBlkBenchmark.DATA, MemTxAttrs.UNSPECIFIED, new byte[len],
                0, len));
    }

    private static byte[] guestBytes(VhostUserBlkBenchmark bench, int len) {
        byte[] b = new byte[len];
        assertEquals(MemTxResult.OK, bench.as.read(VhostUserBlkBenchmark.DATA, MemTxAttrs.UNSPECIFIED, b, 0, len));
        return b;
    }
}
