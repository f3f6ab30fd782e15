package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.guestmem.memory.internal.access.FileRam;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Guest RAM shared with a second process: native-test-images' {@code guestmem-peer} maps the same file
 * {@code MAP_SHARED}. What the peer writes, the guest reads through the address space and a soft TLB; what the guest
 * writes through them, the peer reads back; byte for byte. The peer says which of its operations failed, and a memfd
 * sealed against shrinking refuses a truncation (EPERM) while the guest uses it.
 */
class SharedRamPeerTest {
    static final long BASE = 0x8000_0000L;
    static final long SIZE = 0x1_0000;
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    @TempDir
    Path dir;

    @Test
    void peerAndGuestSeeEachOthersBytes() throws Exception {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("as", root);
        SplittableRandom rnd = new SplittableRandom(8);
        try (FileRam file = new FileRam(dir, SIZE)) {
            root.addSubregion(BASE, sys.ramFromSegment("shared.ram", file.segment));
            SoftTlb tlb = new SoftTlb(as);

            // The peer writes; the guest reads.
            byte[] fromPeer = new byte[300];
            rnd.nextBytes(fromPeer);
            PeerProcess.Result wrote = PeerProcess.run(file.path, "write", "0x2001", PeerProcess.hex(fromPeer),
                    "pattern", "0x5000", "4096", "7");
            assertEquals(List.of("ok write", "ok pattern"), wrote.lines());
            assertEquals(0, wrote.status());
            byte[] seen = new byte[fromPeer.length];
            assertEquals(MemTxResult.OK, as.read(BASE + 0x2001, ATTRS, seen, 0, seen.length));
            assertArrayEquals(fromPeer, seen);
            for (int i = 0; i < 4096; i++) {
                int expected = (7 + 31 * i) & 0xff;
                assertEquals(expected, tlb.ldub(BASE + 0x5000 + i), "byte " + i);
            }
            assertEquals(MemTxResult.OK, tlb.takeResult());
            int[] r = new int[1];
            assertEquals(FileRam.word(0x2000) & 0xff, as.ldub(BASE + 0x2000, ATTRS, r), "the byte before the peer's");

            // The guest writes; the peer reads.
            byte[] fromGuest = new byte[777];
            rnd.nextBytes(fromGuest);
            assertEquals(MemTxResult.OK, as.write(BASE + 0x9003, ATTRS, fromGuest, 0, fromGuest.length));
            tlb.stqBe(BASE + 0xa000, 0x0011_2233_4455_6677L);
            tlb.stlLe(BASE + 0xa008, 0x8899_aabb);
            assertEquals(MemTxResult.OK, tlb.takeResult());
            assertEquals(MemTxResult.OK, as.stwBe(BASE + 0xa00c, 0xccdd, ATTRS));
            PeerProcess.Result read = PeerProcess.run(file.path, "read", "0x9003", Integer.toString(fromGuest.length),
                    "read", "0xa000", "14");
            assertEquals(0, read.status(), () -> "peer: " + read.lines());
            assertArrayEquals(fromGuest, HexFormat.of().parseHex(read.readHex(0)));
            assertEquals("0011223344556677bbaa9988ccdd", read.readHex(1));
        }
    }

    @Test
    void thePeerSaysWhichOperationFailed() throws Exception {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("as", root);
        try (FileRam file = new FileRam(dir, SIZE)) {
            root.addSubregion(BASE, sys.ramFromSegment("shared.ram", file.segment));
            // The peer shrinks the file under its own mapping, then touches a page that is gone: it survives it.
            PeerProcess.Result r = PeerProcess.run(file.path, "truncate", "0x1000", "read", "0x2000", "8",
                    "read", "0", "8", "read", "0x20000", "1");
            assertEquals(List.of("ok truncate", "error read SIGBUS", "ok read " + leHex(FileRam.word(0)),
                    "error read ERANGE"), r.lines());
            assertEquals(1, r.status());
            int[] result = new int[1];
            assertEquals(0, as.ldqLe(BASE + 0x2000, ATTRS, result));
            assertEquals(MemTxResult.ERROR, result[0]);
            assertEquals(FileRam.word(8), as.ldqLe(BASE + 8, ATTRS, result));
            assertEquals(MemTxResult.OK, result[0]);
        }
    }

    @Test
    void aSealedMemfdCannotBeShrunkUnderTheGuest() throws Exception {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("as", root);
        try (PeerProcess.Memfd memfd = new PeerProcess.Memfd(SIZE, true);
             FileRam file = FileRam.over(memfd.path(), SIZE)) {
            root.addSubregion(BASE, sys.ramFromSegment("sealed.ram", file.segment));
            PeerProcess.Result r = PeerProcess.run(memfd.path(), "truncate", "0x1000", "read", "0xfff8", "8");
            assertEquals(List.of("error truncate EPERM", "ok read " + leHex(FileRam.word(0xfff8))), r.lines());
            assertEquals(1, r.status());
            int[] result = new int[1];
            for (long off = 0; off < SIZE; off += 0x800) {
                assertEquals(FileRam.word(off), as.ldqLe(BASE + off, ATTRS, result));
                assertEquals(MemTxResult.OK, result[0]);
            }
        }
    }

    private static String leHex(long v) {
        return HexFormat.of().toHexDigits(Long.reverseBytes(v));
    }
}
