package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Feature negotiation, ownership and the config space with the real qemu-storage-daemon's vhost-user-blk export. */
class VhostUserNegotiationTest {
    static final Duration TIMEOUT = Duration.ofSeconds(20);

    @TempDir
    Path tmp;

    @Test
    void negotiatesAndReadsTheBlockDevicesConfig() throws IOException {
        Path image = tmp.resolve("disk.img");
        Files.write(image, new byte[2 * 1024 * 1024]);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image);
             VhostUserFrontend fe = VhostUserFrontend.connect(daemon.socket(), TIMEOUT, VhostUserPeer.sameUser())) {
            long features = fe.getFeatures();
            assertTrue((features & VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES) != 0, Long.toHexString(features));
            assertTrue((features & VhostUserFrontend.VIRTIO_F_VERSION_1) != 0, Long.toHexString(features));
            long offered = fe.getProtocolFeatures();
            for (long bit : new long[] {VhostUserFrontend.PROTOCOL_F_REPLY_ACK, VhostUserFrontend.PROTOCOL_F_CONFIG,
                VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS, VhostUserFrontend.PROTOCOL_F_LOG_SHMFD}) {
                assertTrue((offered & bit) != 0, "offered=" + Long.toHexString(offered) + " bit=" + bit);
            }
            long wanted = offered & (VhostUserFrontend.PROTOCOL_F_REPLY_ACK | VhostUserFrontend.PROTOCOL_F_CONFIG
                    | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS | VhostUserFrontend.PROTOCOL_F_LOG_SHMFD
                    | VhostUserFrontend.PROTOCOL_F_MQ | VhostUserFrontend.PROTOCOL_F_RESET_DEVICE);
            fe.setProtocolFeatures(wanted);
            fe.setOwner();   // acknowledged: REPLY_ACK is in effect
            long configWce = 1L << 11;   // VIRTIO_BLK_F_CONFIG_WCE: the driver may write wce
            assertTrue((features & configWce) != 0, Long.toHexString(features));
            fe.setFeatures(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES
                    | configWce);
            assertTrue(fe.getMaxMemSlots() >= 8, "max mem slots");
            if ((wanted & VhostUserFrontend.PROTOCOL_F_MQ) != 0) {
                assertEquals(1, fe.getQueueNum(), "num-queues defaults to 1");
            }

            byte[] config = fe.getConfig(0, 36);
            ByteBuffer c = ByteBuffer.wrap(config).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(2 * 1024 * 1024 / 512, c.getLong(0), "capacity in 512-byte sectors");
            assertEquals(512, c.getInt(20), "blk_size");
            // The writeback-cache flag (wce, byte 32) is the one field a driver writes; REPLY_ACK status 0 says the
            // backend took it (a refusal throws).
            fe.setConfig(32, new byte[] {1});
            assertArrayEquals(new byte[] {config[0], config[1]}, fe.getConfig(0, 2));
            assertThrows(IllegalArgumentException.class, () -> fe.getConfig(250, 16));

            // Back to a fresh device, acknowledged each time (REPLY_ACK), and the connection still serves.
            fe.resetOwner();
            if ((wanted & VhostUserFrontend.PROTOCOL_F_RESET_DEVICE) != 0) {
                fe.resetDevice();
            } else {
                assertThrows(IllegalStateException.class, fe::resetDevice, "not negotiated: refused before sending");
            }
            fe.setOwner();
            assertEquals(features, fe.getFeatures());
            assertTrue(fe.isOpen());
        }
    }

    @Test
    void requestsAfterCloseFailAndNameTheSocket() throws IOException {
        Path image = tmp.resolve("disk.img");
        Files.write(image, new byte[4096]);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image)) {
            VhostUserFrontend fe = VhostUserFrontend.connect(daemon.socket(), TIMEOUT, VhostUserPeer.sameUser());
            fe.getFeatures();
            fe.close();
            fe.close();
            assertFalse(fe.isOpen());
            VhostUserException e = assertThrows(VhostUserException.class, fe::getFeatures);
            assertEquals("socket=" + daemon.socket() + " request=GET_FEATURES: connection closed (closed by the "
                    + "front-end)", e.getMessage());
            // The daemon serves the next front-end after an orderly close, once it has noticed the close.
            try (VhostUserFrontend again = connectOnceListening(daemon.socket())) {
                assertTrue((again.getFeatures() & VhostUserFrontend.VIRTIO_F_VERSION_1) != 0);
            }
        }
    }

    /**
     * Connects, retrying while the daemon refuses: it accepts one front-end at a time and listens again only after it
     * has seen the last one go. A start-up bound of 30 s, not a measurement.
     */
    private static VhostUserFrontend connectOnceListening(Path socket) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (true) {
            try {
                return VhostUserFrontend.connect(socket, TIMEOUT, VhostUserPeer.sameUser());
            } catch (IllegalArgumentException e) {
                if (!e.getMessage().endsWith("ECONNREFUSED") || System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.onSpinWait();
            }
        }
    }

    @Test
    void aPolicyThatRefusesThePeerSendsNothing() throws IOException {
        Path image = tmp.resolve("disk.img");
        Files.write(image, new byte[4096]);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> VhostUserFrontend.connect(daemon.socket(), TIMEOUT, VhostUserPeer.uid(12345)));
            assertEquals("socket=" + daemon.socket() + " pid=" + daemon.pid() + " uid=0: the peer policy refuses"
                    + " this backend", e.getMessage().replaceFirst("uid=\\d+", "uid=0"));
        }
    }
}
