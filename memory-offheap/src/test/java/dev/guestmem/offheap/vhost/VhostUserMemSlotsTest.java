package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A map with more RAM sections than the backend takes is refused, never sent in part, and never thrown into the
 * writer's commit: at attach with one line naming the count and the limit, and on a later commit by closing the
 * connection with that reason (the Java backend, which offers CONFIGURE_MEM_SLOTS with 32 slots).
 */
class VhostUserMemSlotsTest {
    private static final long REGION = 1 << 16;

    private final MemorySystem system = new MemorySystem();
    private final MemoryRegion root = system.container("system", U64.SIZE_2_64);
    private final List<MemoryRegion> made = new ArrayList<>();
    private Path dir;

    @AfterEach
    void cleanUp() throws IOException {
        for (MemoryRegion mr : made) {
            if (mr.container() != null) {
                root.delSubregion(mr);
            }
            mr.destroy();
        }
        if (dir != null) {
            try (var files = Files.list(dir)) {
                for (Path p : (Iterable<Path>) files::iterator) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(dir);
        }
    }

    private void mapRegions(int from, int to) {
        system.transaction(() -> {
            for (int i = from; i < to; i++) {
                MemoryRegion mr = system.ram("ram" + i, REGION, HostMemoryBackend.memfd().build());
                made.add(mr);
                root.addSubregion(i * 2 * REGION, mr); // apart, so no two sections touch
            }
        });
    }

    private VhostUserFrontend connect(Path socket, boolean memSlots) {
        VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(20), VhostUserPeer.sameUser());
        fe.getFeatures();
        long protocol = VhostUserFrontend.PROTOCOL_F_REPLY_ACK
                | (memSlots ? VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS : 0);
        fe.setProtocolFeatures(fe.getProtocolFeatures() & protocol);
        fe.setOwner();
        return fe;
    }

    private Path socket() throws IOException {
        dir = Files.createTempDirectory("vhost-slots-",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        return dir.resolve("b.sock");
    }

    @Test
    void withoutMemSlotsOneSetMemTableCarriesAtMostEightRegions() throws IOException {
        mapRegions(0, 9);
        AddressSpace as = system.addressSpace("memory", root);
        Path socket = socket();
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(),
                VhostUserJavaBackendTest.ECHO);
             VhostUserFrontend fe = connect(socket, false)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> VhostUserMemoryListener.attach(fe, as));
            assertEquals("socket=" + socket + " regions=9 max=8: the map has more RAM regions than the vhost-user "
                    + "backend takes in one SET_MEM_TABLE", e.getMessage());
            assertTrue(fe.isOpen(), "nothing was sent, so the connection stays usable");
            assertEquals(null, backend.lastError(), "the backend saw no bad message");
        }
    }

    @Test
    void aCommitThatGoesPastTheBackendsSlotsClosesTheConnectionInsteadOfThrowing() throws IOException {
        mapRegions(0, 30);
        AddressSpace as = system.addressSpace("memory", root);
        Path socket = socket();
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(),
                VhostUserJavaBackendTest.ECHO);
             VhostUserFrontend fe = connect(socket, true)) {
            assertEquals(32, fe.getMaxMemSlots());
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            assertEquals(30, memory.regions().size());
            mapRegions(30, 32); // 32 regions: still taken
            assertTrue(fe.isOpen());
            assertEquals(32, memory.regions().size());
            mapRegions(32, 33); // the commit returns normally; the backend cannot take a 33rd region
            assertFalse(fe.isOpen(), "the connection was closed with the reason");
            assertEquals(32, memory.regions().size(), "what the backend was told stays as it was");
            assertEquals(null, backend.lastError(), "the backend saw no bad message");
        }
    }

    @Test
    void aNinthRegionWithoutMemSlotsClosesTheConnectionInsteadOfThrowingIntoTheCommit() throws IOException {
        mapRegions(0, 8);
        AddressSpace as = system.addressSpace("memory", root);
        Path socket = socket();
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(),
                VhostUserJavaBackendTest.ECHO);
             VhostUserFrontend fe = connect(socket, false)) {
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            assertEquals(8, memory.regions().size());
            mapRegions(8, 9); // returns normally: the listener does not throw into the writer's commit
            assertFalse(fe.isOpen(), "the connection was closed with the reason");
            assertEquals(8, memory.regions().size());
            assertEquals(null, backend.lastError(), "nothing malformed reached the backend");
        }
    }
}
