package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.internal.linux.Linux;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Guest RAM shared with another process: a second JVM ({@link PeerMain}) maps the guest's memfd (through
 * /proc/PID/fd/N) or file and sees the guest's writes byte for byte, and the guest sees the peer's; and a sealed
 * memfd cannot be shrunk or grown by another process ({@code truncate} gets EPERM), while an unsealed one can.
 */
class PeerProcessTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final long SIZE = 8L << 20;
    private static final long BASE = 0x8000_0000L;

    private final MemorySystem sys = new MemorySystem();
    private final MemoryRegion root = sys.container("system", U64.SIZE_2_64);
    private final List<MemoryRegion> made = new ArrayList<>();

    @TempDir
    Path dir;

    @AfterEach
    void destroy() {
        for (MemoryRegion mr : made) {
            if (mr.container() != null) {
                root.delSubregion(mr);
            }
            mr.destroy();
        }
        sys.rcu().barrier();
    }

    private AddressSpace map(MemoryRegion ram) {
        made.add(ram);
        root.addSubregion(BASE, ram);
        return sys.addressSpace("memory", root);
    }

    private static Path fdPath(int fd) {
        return Path.of("/proc/" + ProcessHandle.current().pid() + "/fd/" + fd);
    }

    /** Runs {@code command}; returns its exit code and output (stdout and stderr together). */
    private static Object[] run(List<String> command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("command=" + command + ": still running after 120 s");
        }
        return new Object[] {p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8)};
    }

    private void guestAndPeerSeeEachOther(MemoryRegion ram, Path path, long fileOffset)
            throws IOException, InterruptedException, URISyntaxException {
        AddressSpace as = map(ram);
        long split = SIZE / 2 + 12345;
        byte[] buf = new byte[(int) SIZE];
        for (int i = 0; i < split; i++) {
            buf[i] = PeerMain.pattern(1, i);
        }
        assertEquals(MemTxResult.OK, as.write(BASE, U, buf, 0, (int) split));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String classes = Path.of(PeerMain.class.getProtectionDomain().getCodeSource().getLocation().toURI())
                .toString();
        Object[] r = run(List.of(java, "-cp", classes, PeerMain.class.getName(), path.toString(),
                Long.toString(fileOffset), Long.toString(SIZE), "1", "2", Long.toString(split)));
        assertEquals(0, r[0], "peer output: " + r[1]);
        assertEquals("OK", ((String) r[1]).strip(), "the peer saw every byte the guest wrote");
        assertEquals(MemTxResult.OK, as.read(BASE, U, buf, 0, buf.length));
        for (int i = 0; i < SIZE; i++) {
            byte expected = PeerMain.pattern(i < split ? 1 : 2, i);
            if (buf[i] != expected) {
                assertEquals(expected, buf[i], "offset=" + i + ": the guest sees the peer's writes");
            }
        }
    }

    @Test
    void aSecondJvmSharesAMemfdByteForByte() throws Exception {
        MemoryRegion ram = sys.ram("shared", SIZE, HostMemoryBackend.memfd().build());
        guestAndPeerSeeEachOther(ram, fdPath(ram.getFd()), 0);
    }

    @Test
    void aSecondJvmSharesAFileAtAnOffsetByteForByte() throws Exception {
        Path file = dir.resolve("guest.ram");
        long offset = 0x20000;
        MemoryRegion ram = sys.ram("shared", SIZE,
                HostMemoryBackend.file(file).share(true).create(true).offset(offset).build());
        guestAndPeerSeeEachOther(ram, file, offset);
    }

    @Test
    void aSealedMemfdCannotBeResizedByAnotherProcess() throws IOException, InterruptedException {
        MemoryRegion sealed = sys.ram("sealed", SIZE, HostMemoryBackend.memfd().build());
        map(sealed);
        int fd = sealed.getFd();
        assertEquals(Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW, Linux.fcntl(fd, Linux.F_GET_SEALS, 0));
        for (String size : new String[] {"0", "4096", Long.toString(SIZE + 4096)}) {
            Object[] r = run(List.of("truncate", "-s", size, fdPath(fd).toString()));
            assertNotEquals(0, r[0], "truncate -s " + size + " of a sealed memfd");
            assertTrue(((String) r[1]).contains("Operation not permitted"), "EPERM: " + r[1]);
            assertEquals(SIZE, Linux.fstat(fd).size());
        }
        assertEquals(MemTxResult.OK, sys.addressSpace("memory", root).stqLe(BASE + SIZE - 8, 7, U),
                "the guest's RAM is whole");

        // The same truncate does grow an unsealed memfd (growing is harmless to the mapping): the check above can fail.
        MemoryRegion unsealed = sys.ram("unsealed", SIZE, HostMemoryBackend.memfd().seal(false).build());
        made.add(unsealed);
        Object[] r = run(List.of("truncate", "-s", Long.toString(SIZE + 4096), fdPath(unsealed.getFd()).toString()));
        assertEquals(0, r[0], "truncate of an unsealed memfd: " + r[1]);
        assertEquals(SIZE + 4096, Linux.fstat(unsealed.getFd()).size());
        int seals = Linux.fcntl(unsealed.getFd(), Linux.F_GET_SEALS, 0);
        assertEquals(0, seals & (Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW));
        assertTrue(Files.exists(fdPath(fd)));
    }
}
