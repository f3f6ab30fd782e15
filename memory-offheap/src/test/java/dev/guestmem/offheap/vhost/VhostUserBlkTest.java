package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import dev.guestmem.offheap.internal.linux.Linux;
import dev.guestmem.offheap.internal.linux.Sockets;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A guest whose RAM is guestmem's memfd RAM, served by Debian's unmodified qemu-storage-daemon over vhost-user-blk:
 * virtio-blk GET_ID, IN, OUT and FLUSH requests on one virtqueue, then a map change under the running device.
 */
class VhostUserBlkTest {
    static final int SECTOR = 512;
    static final int IMAGE_SECTORS = 2048;   // 1 MiB
    static final long MIB = 1 << 20;
    static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    static final int T_IN = 0;
    static final int T_OUT = 1;
    static final int T_FLUSH = 4;
    static final int T_GET_ID = 8;
    static final long VIRTIO_BLK_F_FLUSH = 1L << 9;

    @TempDir
    Path tmp;

    /** The image's known contents: every byte a function of its position. */
    static byte[] imageBytes() {
        byte[] b = new byte[IMAGE_SECTORS * SECTOR];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) ((i / SECTOR) * 31 + i * 7 + 1);
        }
        return b;
    }

    /** A connected, negotiated front-end with one vring over memfd RAM; closes all of it. */
    static final class Guest implements AutoCloseable {
        final MemorySystem system = new MemorySystem();
        final List<MemoryRegion> made = new ArrayList<>();
        final MemoryRegion root = system.container("system", U64.SIZE_2_64);
        final MemoryRegion ram0 = memfdRam("ram0", MIB);
        final MemoryRegion ram1 = memfdRam("ram1", MIB);
        final AddressSpace as;
        final VhostUserFrontend fe;
        final VhostUserMemoryListener memory;
        final SplitVirtqueue queue;
        final VhostUserVring vring;

        /** ram0 at guest-physical 0 (the ring's), ram1 at 2 MiB, both memfd RAM. */
        Guest(Path socket, long protocol, long extraFeatures) {
            system.transaction(() -> {
                root.addSubregion(0, ram0);
                root.addSubregion(2 * MIB, ram1);
            });
            as = system.addressSpace("memory", root);
            fe = VhostUserFrontend.connect(socket, VhostUserNegotiationTest.TIMEOUT, VhostUserPeer.sameUser());
            long features = fe.getFeatures();
            fe.setProtocolFeatures(fe.getProtocolFeatures() & protocol);
            fe.setOwner();
            fe.setFeatures(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES
                    | (features & (VIRTIO_BLK_F_FLUSH | extraFeatures)));
            memory = VhostUserMemoryListener.attach(fe, as);
            if ((extraFeatures & VhostUserFrontend.VHOST_F_LOG_ALL) != 0) {
                memory.startLogging();
            }
            queue = new SplitVirtqueue(as, 0, 16);
            vring = VhostUserVring.start(fe, memory, queue, 0, (extraFeatures & VhostUserFrontend.VHOST_F_LOG_ALL) != 0);
        }

        /** A guest whose backend logs its writes into the listener's dirty log (LOG_SHMFD, VHOST_F_LOG_ALL). */
        static Guest logging(Path socket) {
            return new Guest(socket, VhostUserFrontend.PROTOCOL_F_REPLY_ACK | VhostUserFrontend.PROTOCOL_F_LOG_SHMFD,
                    VhostUserFrontend.VHOST_F_LOG_ALL);
        }

        MemoryRegion memfdRam(String name, long size) {
            MemoryRegion mr = system.ram(name, size, HostMemoryBackend.memfd().build());
            made.add(mr);
            return mr;
        }

        /**
         * One virtio-blk request: header at {@code hdr}, status byte after it, data at {@code data} (none if
         * {@code len} is 0); returns the status the device wrote.
         */
        int request(int type, long sector, long hdr, long data, int len, boolean deviceWrites) {
            assertEquals(MemTxResult.OK, as.stlLe(hdr, type, ATTRS));
            assertEquals(MemTxResult.OK, as.stlLe(hdr + 4, 0, ATTRS));
            assertEquals(MemTxResult.OK, as.stqLe(hdr + 8, sector, ATTRS));
            assertEquals(MemTxResult.OK, as.stb(hdr + 16, 0xff, ATTRS));
            List<SplitVirtqueue.Buffer> chain = len == 0
                    ? List.of(new SplitVirtqueue.Buffer(hdr, 16, false), new SplitVirtqueue.Buffer(hdr + 16, 1, true))
                    : List.of(new SplitVirtqueue.Buffer(hdr, 16, false),
                            new SplitVirtqueue.Buffer(data, len, deviceWrites),
                            new SplitVirtqueue.Buffer(hdr + 16, 1, true));
            int head = queue.add(chain);
            vring.kick();
            SplitVirtqueue.Used used;
            while ((used = queue.poll()) == null) {
                assertTrue(vring.awaitCall(VhostUserNegotiationTest.TIMEOUT.toMillis()),
                        "the device signals the used buffer");
            }
            assertEquals(head, used.head());
            int[] r = new int[1];
            int status = as.ldub(hdr + 16, ATTRS, r);
            assertEquals(MemTxResult.OK, r[0]);
            return status;
        }

        byte[] read(long addr, int len) {
            byte[] b = new byte[len];
            assertEquals(MemTxResult.OK, as.read(addr, ATTRS, b, 0, len));
            return b;
        }

        @Override
        public void close() {
            vring.close();
            fe.close();
            memory.detach();
            GuestRam.release(system, made.toArray(MemoryRegion[]::new));
        }
    }

    @Test
    void sectorsArriveInGuestRamAndGuestBytesInTheImage() throws IOException {
        Path image = tmp.resolve("disk.img");
        byte[] contents = imageBytes();
        Files.write(image, contents);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image)) {
            try (Guest g = new Guest(daemon.socket(), VhostUserFrontend.PROTOCOL_F_REPLY_ACK
                    | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS, 0)) {
                assertEquals(List.of("ram0", "ram1"), g.memory.regions().stream().map(VhostUserMemoryRegion::name)
                        .toList());

                // GET_ID: the device's serial, a NUL-padded string of at most 20 bytes.
                assertEquals(0, g.request(T_GET_ID, 0, 0x1000, 0x2000, 20, true));
                byte[] id = g.read(0x2000, 20);
                assertTrue(id[0] != 0, "a serial: " + Arrays.toString(id));

                // IN: sectors 3..10 into guest RAM, byte for byte.
                assertEquals(0, g.request(T_IN, 3, 0x1000, 0x10000, 8 * SECTOR, true));
                assertArrayEquals(Arrays.copyOfRange(contents, 3 * SECTOR, 11 * SECTOR), g.read(0x10000, 8 * SECTOR));

                // OUT then FLUSH: guest bytes (in the second region) land in the image file.
                byte[] guest = new byte[4096];
                for (int i = 0; i < guest.length; i++) {
                    guest[i] = (byte) (0xA5 ^ i);
                }
                long src = 2 * MIB + 0x3000;
                assertEquals(MemTxResult.OK, g.as.write(src, ATTRS, guest, 0, guest.length));
                assertEquals(0, g.request(T_OUT, 100, 0x1000, src, guest.length, false));
                assertEquals(0, g.request(T_FLUSH, 0, 0x1000, 0, 0, false));
                byte[] onDisk = Files.readAllBytes(image);
                assertArrayEquals(guest, Arrays.copyOfRange(onDisk, 100 * SECTOR, 100 * SECTOR + guest.length));
                assertArrayEquals(Arrays.copyOfRange(contents, 0, 100 * SECTOR),
                        Arrays.copyOfRange(onDisk, 0, 100 * SECTOR), "nothing else changed");

                assertEquals(g.queue.availIndex(), g.vring.stop(), "GET_VRING_BASE: every request was read");
                assertTrue(daemon.isAlive(), daemon.log());
            }
        }
    }

    @Test
    void pagesTheBackendWroteAreDirtyInMigrationAfterASync() throws IOException {
        Path image = tmp.resolve("disk.img");
        byte[] contents = imageBytes();
        Files.write(image, contents);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image);
             Guest g = Guest.logging(daemon.socket())) {
            assertTrue((g.fe.features() & VhostUserFrontend.VHOST_F_LOG_ALL) != 0, "the backend offers LOG_ALL");
            g.system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
            // Everything before the request is taken: the bits after it are the request's.
            g.ram1.snapshotAndClearDirty(0, MIB, DirtyMemoryClient.MIGRATION);
            long dst = 2 * MIB + 0x40000;   // 4 pages of ram1 that only the backend writes
            assertEquals(0, g.request(T_IN, 16, 0x1000, dst, 4 * 4096, true));
            assertArrayEquals(Arrays.copyOfRange(contents, 16 * SECTOR, 16 * SECTOR + 4 * 4096),
                    g.read(dst, 4 * 4096));
            assertTrue(g.memory.dirtyLog().isMarked(dst) && g.memory.dirtyLog().isMarked(dst + 3 * 4096), "the backend logged its writes");
            assertFalse(g.ram1.getDirty(0x40000, 4 * 4096, DirtyMemoryClient.MIGRATION),
                    "guestmem's bitmap knows nothing of the backend's writes before a sync");

            g.system.globalDirtyLogSync();
            for (long page = 0; page < 4; page++) {
                assertTrue(g.ram1.getDirty(0x40000 + page * 4096, 4096, DirtyMemoryClient.MIGRATION), "page " + page);
            }
            assertFalse(g.ram1.getDirty(0x44000, 4096, DirtyMemoryClient.MIGRATION), "the page after stays clean");
            assertFalse(g.ram1.getDirty(0x3f000, 4096, DirtyMemoryClient.MIGRATION), "the page before stays clean");
            assertFalse(g.memory.dirtyLog().isMarked(dst), "a sync takes the bits it merged");
            // The used ring (ram0, page 0) was logged too: VRING_F_LOG with the ring's guest address.
            assertTrue(g.ram0.getDirty(0, 4096, DirtyMemoryClient.MIGRATION));
        }
    }

    @Test
    void theLogGrowsAndShrinksWithTheMap() throws IOException {
        Path image = tmp.resolve("disk.img");
        byte[] contents = imageBytes();
        Files.write(image, contents);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image);
             Guest g = Guest.logging(daemon.socket())) {
            assertEquals(4096, g.memory.dirtyLog().size(), "one page of log covers the 3 MiB map");
            g.system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
            // RAM at 8 GiB: the log grows (8 GiB / 4 KiB / 8 bits, in whole pages) before the daemon hears of it.
            long at = 0x2_0000_0000L;
            MemoryRegion high = g.memfdRam("high", MIB);
            g.system.transaction(() -> g.root.addSubregion(at, high));
            assertTrue(g.fe.isOpen(), g.fe.closedReason());
            assertEquals(0x40000 + 4096, g.memory.dirtyLog().size());
            high.snapshotAndClearDirty(0, MIB, DirtyMemoryClient.MIGRATION);
            assertEquals(0, g.request(T_IN, 40, 0x1000, at + 0x5000, 4096, true));
            assertArrayEquals(Arrays.copyOfRange(contents, 40 * SECTOR, 40 * SECTOR + 4096), g.read(at + 0x5000, 4096));
            assertTrue(g.memory.dirtyLog().isMarked(at + 0x5000), "the daemon logs into the new log, at 8 GiB");

            // Logged, not yet synced, when the RAM at 8 GiB goes: the shrink merges it for what is still mapped.
            g.ram1.snapshotAndClearDirty(0, MIB, DirtyMemoryClient.MIGRATION);
            assertEquals(0, g.request(T_IN, 48, 0x1000, 2 * MIB + 0x6000, 4096, true));
            g.system.transaction(() -> g.root.delSubregion(high));
            assertTrue(g.fe.isOpen(), g.fe.closedReason());
            assertEquals(4096, g.memory.dirtyLog().size());
            assertTrue(g.ram1.getDirty(0x6000, 4096, DirtyMemoryClient.MIGRATION), "merged at the shrink");
            assertEquals(0, g.request(T_IN, 56, 0x1000, 2 * MIB + 0x9000, 4096, true));
            assertTrue(g.memory.dirtyLog().isMarked(2 * MIB + 0x9000), "the daemon logs into the small log");
            assertTrue(daemon.isAlive(), daemon.log());
        }
    }

    /**
     * What qemu-storage-daemon 7.2 does with SET_VRING_ERR: it takes the eventfd (acknowledged under REPLY_ACK) and
     * serves on, but a bad head index does not signal it: libvhost-user reports {@code vu_panic} on its standard error
     * and drops the connection, and the daemon then serves the next front-end. The front-end learns of it as a
     * closed connection; the error eventfd stays unsignalled.
     */
    @Test
    void theDaemonTakesAnErrorEventfdButDropsTheConnectionOnABadRing() throws Exception {
        Path image = tmp.resolve("disk.img");
        byte[] contents = imageBytes();
        Files.write(image, contents);
        int err = Sockets.eventfd(0, Sockets.EFD_CLOEXEC | Sockets.EFD_NONBLOCK);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image);
             Guest g = new Guest(daemon.socket(), VhostUserFrontend.PROTOCOL_F_REPLY_ACK, 0)) {
            g.fe.setVringErr(0, err);
            assertEquals(0, g.request(T_IN, 3, 0x1000, 0x10000, SECTOR, true), "the ring serves with it");
            assertArrayEquals(Arrays.copyOfRange(contents, 3 * SECTOR, 4 * SECTOR), g.read(0x10000, SECTOR));

            // A head index beyond the ring of 16.
            int next = g.queue.availIndex();
            assertEquals(MemTxResult.OK, g.as.stwLe(g.queue.availAddress() + 4 + 2L * (next % 16), 40, ATTRS));
            assertEquals(MemTxResult.OK, g.as.stwLe(g.queue.availAddress() + 2, next + 1, ATTRS));
            g.vring.kick();
            VhostUserException gone = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);   // a bound, not a measurement
            while (gone == null && System.nanoTime() < deadline) {
                try {
                    g.fe.getFeatures();
                    Thread.sleep(10);
                } catch (VhostUserException e) {
                    gone = e;
                }
            }
            assertNotNull(gone, "the daemon dropped the connection");
            assertFalse(g.fe.isOpen());
            assertTrue(daemon.log().contains("vu_panic: Guest says index 40 is available"), daemon.log());
            assertEquals(0, Sockets.eventfdRead(err), "the error eventfd was not signalled");
            assertTrue(daemon.isAlive(), "the daemon lives on");
            try (VhostUserFrontend again = VhostUserFrontend.connect(daemon.socket(), VhostUserNegotiationTest.TIMEOUT,
                    VhostUserPeer.sameUser())) {
                assertTrue((again.getFeatures() & VhostUserFrontend.VIRTIO_F_VERSION_1) != 0, "and serves the next");
            }
        } finally {
            Linux.close(err);
        }
    }

    @Test
    void theTableFollowsTheMapWithMemSlots() throws IOException {
        mapChange(VhostUserFrontend.PROTOCOL_F_REPLY_ACK | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS);
    }

    @Test
    void theTableFollowsTheMapWithSetMemTable() throws IOException {
        mapChange(VhostUserFrontend.PROTOCOL_F_REPLY_ACK);
    }

    /** A region added and one removed under a running device; requests to the new memory work. */
    private void mapChange(long protocol) throws IOException {
        Path image = tmp.resolve("disk.img");
        byte[] contents = imageBytes();
        Files.write(image, contents);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image)) {
            try (Guest g = new Guest(daemon.socket(), protocol, 0)) {
                assertEquals(0, g.request(T_IN, 0, 0x1000, 2 * MIB, SECTOR, true));
                MemoryRegion added = g.memfdRam("ram2", MIB);
                g.system.transaction(() -> {
                    g.root.addSubregion(4 * MIB, added);
                    g.root.delSubregion(g.ram1);
                });
                assertEquals(List.of("ram0", "ram2"), g.memory.regions().stream().map(VhostUserMemoryRegion::name)
                        .toList());
                assertTrue(g.fe.isOpen(), g.fe.closedReason());
                assertEquals(0, g.request(T_IN, 7, 0x1000, 4 * MIB + 0x800, 4 * SECTOR, true));
                assertArrayEquals(Arrays.copyOfRange(contents, 7 * SECTOR, 11 * SECTOR),
                        g.read(4 * MIB + 0x800, 4 * SECTOR));
                byte[] out = new byte[SECTOR];
                Arrays.fill(out, (byte) 0x5c);
                assertEquals(MemTxResult.OK, g.as.write(4 * MIB + 0x8000, ATTRS, out, 0, SECTOR));
                assertEquals(0, g.request(T_OUT, 1, 0x1000, 4 * MIB + 0x8000, SECTOR, false));
                assertEquals(0, g.request(T_FLUSH, 0, 0x1000, 0, 0, false));
                assertArrayEquals(out, Arrays.copyOfRange(Files.readAllBytes(image), SECTOR, 2 * SECTOR));
            }
        }
    }

    @Test
    void ramWithoutAnFdIsRefusedByName() throws IOException {
        Path image = tmp.resolve("disk.img");
        Files.write(image, new byte[4096]);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image);
             VhostUserFrontend fe = VhostUserFrontend.connect(daemon.socket(), VhostUserNegotiationTest.TIMEOUT,
                     VhostUserPeer.sameUser())) {
            fe.setProtocolFeatures(fe.getProtocolFeatures() & VhostUserFrontend.PROTOCOL_F_REPLY_ACK);
            fe.setOwner();
            MemorySystem system = new MemorySystem();
            MemoryRegion root = system.container("system", U64.SIZE_2_64);
            MemoryRegion shared = system.ram("shared", MIB, HostMemoryBackend.memfd().build());
            MemoryRegion plain = system.ram("plain", MIB);   // Arena RAM: nothing another process can map
            system.transaction(() -> {
                root.addSubregion(0, shared);
                root.addSubregion(MIB, plain);
            });
            AddressSpace as = system.addressSpace("memory", root);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> VhostUserMemoryListener.attach(fe, as));
            assertTrue(e.getMessage().startsWith("region=plain guest=0x100000: RAM without a shared fd"),
                    e.getMessage());
            assertTrue(as.listeners().isEmpty(), "a refused attach leaves no listener");

            // Mapped later: the connection closes with the same reason, and the map change itself goes through.
            system.transaction(() -> root.delSubregion(plain));
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            assertEquals(1, memory.regions().size());
            system.transaction(() -> root.addSubregion(MIB, plain));
            assertFalse(fe.isOpen());
            assertTrue(fe.closedReason().contains("region=plain"), fe.closedReason());
            assertNotNull(as.flatView().lookup(MIB));
            GuestRam.release(system, shared, plain);
        }
    }
}
