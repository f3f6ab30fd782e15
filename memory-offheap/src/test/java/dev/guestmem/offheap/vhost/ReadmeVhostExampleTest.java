package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs README.md's vhost-user example, the code between the markers below, against the real qemu-storage-daemon;
 * memory-bench's {@code ReadmeExampleTest} checks that the README shows it verbatim.
 */
class ReadmeVhostExampleTest {
    @TempDir
    Path tmp;

    @Test
    void theExampleReadsSectorZeroIntoGuestRam() throws IOException {
        byte[] disk = VhostUserBlkTest.imageBytes();
        Path image = Files.write(tmp.resolve("disk.img"), disk);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image)) {
            Path socket = daemon.socket();
            // README example begin
            // The guest's RAM: a sealed memfd, which the backend maps too
            MemorySystem system = new MemorySystem();
            MemoryRegion root = system.container("system", U64.SIZE_2_64);
            MemoryRegion ram = system.ram("pc.ram", 16 << 20, HostMemoryBackend.memfd().build());
            system.transaction(() -> root.addSubregion(0, ram));
            AddressSpace as = system.addressSpace("memory", root);

            // Connect (to a backend of this user only), negotiate, hand over the memory table and one virtqueue
            VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(5), VhostUserPeer.sameUser());
            fe.setProtocolFeatures(fe.getProtocolFeatures() & (VhostUserFrontend.PROTOCOL_F_REPLY_ACK
                    | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS));
            fe.setOwner();
            fe.setFeatures(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES);
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as); // follows the map from now on
            SplitVirtqueue queue = new SplitVirtqueue(as, 0, 16);                     // its rings in guest RAM
            VhostUserVring vring = VhostUserVring.start(fe, memory, queue, 0, false);

            // virtio-blk: read sector 0 into guest-physical 0x10000 (request header at 0x1000, status byte at 0x1010)
            as.stlLe(0x1000, 0, MemTxAttrs.UNSPECIFIED);                              // VIRTIO_BLK_T_IN
            as.stqLe(0x1008, 0, MemTxAttrs.UNSPECIFIED);                              // sector 0
            queue.add(List.of(new SplitVirtqueue.Buffer(0x1000, 16, false),
                    new SplitVirtqueue.Buffer(0x10000, 512, true), new SplitVirtqueue.Buffer(0x1010, 1, true)));
            vring.kick();
            vring.awaitCall(5000);                                                    // the backend used them
            SplitVirtqueue.Used used = queue.poll();
            // README example end

            assertNotNull(used);
            assertEquals(513, used.written(), "a sector and the status byte");
            int[] result = new int[1];
            assertEquals(0, as.ldub(0x1010, MemTxAttrs.UNSPECIFIED, result), "VIRTIO_BLK_S_OK");
            byte[] sector = new byte[512];
            assertEquals(MemTxResult.OK, as.read(0x10000, MemTxAttrs.UNSPECIFIED, sector, 0, 512));
            assertArrayEquals(Arrays.copyOf(disk, 512), sector);
            assertTrue(fe.isOpen());
            vring.close();
            fe.close();
            GuestRam.release(system, ram);
        }
    }
}
