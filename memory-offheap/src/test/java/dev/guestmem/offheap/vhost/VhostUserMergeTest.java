package dev.guestmem.offheap.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Sections that continue one mapping are one region of the memory table, as QEMU's vhost merges them: 2 MiB of memfd
 * RAM mapped through two aliases, the upper one read-only (as a PC maps its PAM aliases of low RAM), is two sections
 * of the address space (the flat view cannot merge a read-only range with a writable one) and one region for the
 * backend; unmergeable RAM stays two.
 */
class VhostUserMergeTest {
    private static final long MIB = 1 << 20;
    private static final long AT = 4 * MIB;

    @TempDir
    Path tmp;

    /**
     * {@code pc.ram} (2 MiB, memfd) at {@link #AT} as two aliases, the second read-only; returns the aliases and
     * pc.ram, in the order they are destroyed.
     */
    static List<MemoryRegion> splitRam(MemorySystem system, MemoryRegion root) {
        MemoryRegion ram = system.ram("pc.ram", 2 * MIB, HostMemoryBackend.memfd().build());
        MemoryRegion lo = system.alias("ram-lo", ram, 0, MIB);
        MemoryRegion hi = system.alias("ram-hi", ram, MIB, MIB);
        hi.setReadonly(true);
        system.transaction(() -> {
            root.addSubregion(AT, lo);
            root.addSubregion(AT + MIB, hi);
        });
        return List.of(lo, hi, ram);
    }

    private static List<String> regions(List<VhostUserMemoryRegion> table) {
        return table.stream().map(r -> r.name() + "@" + U64.hex(r.guestAddress()) + "+" + U64.hex(r.size())).toList();
    }

    @ParameterizedTest(name = "protocol={0}")
    @ValueSource(longs = {VhostUserFrontend.PROTOCOL_F_REPLY_ACK,
            VhostUserFrontend.PROTOCOL_F_REPLY_ACK | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS})
    void theDaemonGetsOneRegionForTwoSections(long protocol) throws IOException {
        Path image = tmp.resolve("disk.img");
        byte[] contents = VhostUserBlkTest.imageBytes();
        Files.write(image, contents);
        try (QemuStorageDaemon daemon = QemuStorageDaemon.start(tmp, image);
             VhostUserBlkTest.Guest g = new VhostUserBlkTest.Guest(daemon.socket(), protocol, 0)) {
            List<MemoryRegion> split = splitRam(g.system, g.root);
            g.made.addAll(split);
            MemoryRegion ram = split.getLast();
            assertEquals(2, g.as.flatView().ranges().stream().filter(r -> r.region() == ram).count(),
                    "two sections in the address space");
            assertEquals(List.of("ram0@0x0+0x100000", "ram1@0x200000+0x100000", "pc.ram@0x400000+0x200000"),
                    regions(g.memory.regions()));
            assertTrue(g.fe.isOpen(), g.fe.closedReason());
            // 8 KiB across the sections' boundary, into guest RAM.
            long dst = AT + MIB - 4096;
            assertEquals(0, g.request(VhostUserBlkTest.T_IN, 24, 0x1000, dst, 8192, true));
            int at = 24 * VhostUserBlkTest.SECTOR;
            assertArrayEquals(Arrays.copyOfRange(contents, at, at + 8192), g.read(dst, 8192));
            assertTrue(daemon.isAlive(), daemon.log());
        }
    }

    @Test
    void theJavaBackendGetsOneRegionUntilTheRamIsUnmergeable() throws IOException {
        Path dir = Files.createTempDirectory(tmp, "backend",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Path socket = dir.resolve("echo.sock");
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        MemoryRegion low = system.ram("low", MIB, HostMemoryBackend.memfd().build());
        system.transaction(() -> root.addSubregion(0, low));
        List<MemoryRegion> split = splitRam(system, root);
        MemoryRegion ram = split.getLast();
        AddressSpace as = system.addressSpace("memory", root);
        try (VhostUserBackend backend = VhostUserBackend.listen(socket, VhostUserPeer.sameUser(),
                VhostUserJavaBackendTest.ECHO);
             VhostUserFrontend fe = VhostUserFrontend.connect(socket, Duration.ofSeconds(20),
                     VhostUserPeer.sameUser())) {
            fe.setProtocolFeatures(fe.getProtocolFeatures() & (VhostUserFrontend.PROTOCOL_F_REPLY_ACK
                    | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS));
            fe.setOwner();
            fe.setFeatures(fe.getFeatures());
            VhostUserMemoryListener memory = VhostUserMemoryListener.attach(fe, as);
            List<String> merged = List.of("low@0x0+0x100000", "pc.ram@0x400000+0x200000");
            assertEquals(merged, regions(memory.regions()));
            assertEquals(List.of("0x0+0x100000", "0x400000+0x200000"), guestRanges(backend));
            SplitVirtqueue queue = new SplitVirtqueue(as, 0, 8);
            byte[] hello = "one region, two sections".getBytes(StandardCharsets.US_ASCII);
            assertEquals(MemTxResult.OK, as.write(AT + 0x1000, MemTxAttrs.UNSPECIFIED, hello, 0, hello.length));
            try (VhostUserVring vring = VhostUserVring.start(fe, memory, queue, 0, false)) {
                VhostUserJavaBackendTest.echo(as, queue, vring, AT + 0x1000, hello, AT + MIB - 8);

                // Unmergeable RAM: each section its own region, on both sides (REM_MEM_REG, then two ADD_MEM_REG).
                ram.setUnmergeable(true);
                assertTrue(fe.isOpen(), fe.closedReason());
                assertEquals(List.of("low@0x0+0x100000", "pc.ram@0x400000+0x100000", "pc.ram@0x500000+0x100000"),
                        regions(memory.regions()));
                assertEquals(List.of("0x0+0x100000", "0x400000+0x100000", "0x500000+0x100000"),
                        guestRanges(backend));
                VhostUserJavaBackendTest.echo(as, queue, vring, AT + 0x1000, hello, AT + MIB + 0x100);

                ram.setUnmergeable(false);
                assertEquals(merged, regions(memory.regions()));
                assertEquals(List.of("0x0+0x100000", "0x400000+0x200000"), guestRanges(backend));
                VhostUserJavaBackendTest.echo(as, queue, vring, AT + 0x1000, hello, AT + 0x3000);
                assertEquals(3, vring.stop());
            }
            assertEquals(null, backend.lastError());
            memory.detach();
        }
        GuestRam.release(system, low, split.get(0), split.get(1), ram);
    }

    /** The guest-physical ranges of the backend's table, in address order. */
    private static List<String> guestRanges(VhostUserBackend backend) {
        return backend.table().regions().stream().sorted((a, b) -> Long.compareUnsigned(a.guestAddress(),
                b.guestAddress())).map(r -> U64.hex(r.guestAddress()) + "+" + U64.hex(r.size())).toList();
    }
}
