package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.offheap.vhost.SplitVirtqueue;
import dev.guestmem.offheap.vhost.VhostUserFrontend;
import dev.guestmem.offheap.vhost.VhostUserMemoryListener;
import dev.guestmem.offheap.vhost.VhostUserPeer;
import dev.guestmem.offheap.vhost.VhostUserVring;
import org.HdrHistogram.Histogram;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

/**
 * The vhost-user disk of the main job: Debian's {@code qemu-storage-daemon} exports the image read-only as a
 * vhost-user-blk device; the front-end ({@code dev.guestmem.offheap.vhost}) hands it the machine's memory table,
 * which follows every map change of the device thread, and a virtqueue in the last MiB of guest RAM. A disk thread
 * plays the guest's driver: reads of 4 KiB at random sectors into guest RAM, 0.5 ms apart, each compared with the
 * image's bytes.
 * The daemon writes guest RAM behind the access path; the thread marks what a request wrote dirty
 * ({@code memory_region_set_dirty}), as QEMU merges a vhost device's dirty log, so a migration sends it again.
 * Requests stop at the vCPUs' check point ({@link VcpuGate}), as QEMU stops devices with the vCPUs.
 *
 * <p>Threading: {@link #start} and {@link #stop}/{@link #close} on the job's thread; the disk thread is this
 * class's own.
 */
final class VhostDisk implements AutoCloseable {
    static final long RING_OFFSET_FROM_END = 1L << 20;
    static final int SECTOR = 512;
    static final int READ_BYTES = 4096;
    /** Between two reads. */
    static final long PAUSE_NANOS = 500_000;
    static final String MISSING = "qemu-storage-daemon missing: apt-get install qemu-system-common";

    /**
     * What the disk did.
     *
     * @param requests  reads completed and compared
     * @param bytes     bytes read
     * @param failures  the first failures (a wrong status, wrong bytes, no answer), empty if none
     * @param latency   request latency, kick to used buffer, ns
     */
    record Result(long requests, long bytes, List<String> failures, Histogram latency) {
    }

    private final RiscvVirtMachine machine;
    private final VcpuGate gate;
    private final Path dir;
    private final Process daemon;
    private final RandomAccessFile image;
    private final long sectors;
    private VhostUserFrontend frontend;
    private VhostUserMemoryListener listener;
    private VhostUserVring vring;
    private SplitVirtqueue queue;
    private Thread thread;
    private volatile boolean stop;
    private final Histogram latency = new Histogram(3);
    private final java.util.ArrayList<String> failures = new java.util.ArrayList<>();
    private long requests;

    private VhostDisk(RiscvVirtMachine machine, VcpuGate gate, Path dir, Process daemon, RandomAccessFile image,
                      long sectors) {
        this.machine = machine;
        this.gate = gate;
        this.dir = dir;
        this.daemon = daemon;
        this.image = image;
        this.sectors = sectors;
    }

    /** The daemon's executable on PATH, or {@code null}. */
    static Path daemonExecutable() {
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(d.isEmpty() ? "." : d, "qemu-storage-daemon");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    /**
     * Starts the daemon on {@code imagePath}, connects, and starts the disk thread. The machine's RAM must be
     * shareable (memfd or a shared file) and hold at least 16 MiB.
     */
    static VhostDisk start(RiscvVirtMachine machine, VcpuGate gate, Path imagePath) throws IOException,
            InterruptedException {
        Path exe = daemonExecutable();
        if (exe == null) {
            throw new IllegalStateException(MISSING);
        }
        RandomAccessFile image = new RandomAccessFile(imagePath.toFile(), "r");
        long sectors = image.length() / SECTOR;
        if (sectors < READ_BYTES / SECTOR) {
            image.close();
            throw new IllegalArgumentException("disk=" + imagePath + " size=" + image.length()
                    + ": the image needs at least " + READ_BYTES + " bytes");
        }
        Path dir = Files.createTempDirectory("guestmem-disk",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Path socket = dir.resolve("blk.sock");
        Process p = new ProcessBuilder(List.of(exe.toString(),
                "--blockdev", "driver=file,node-name=file0,filename=" + imagePath.toAbsolutePath() + ",read-only=on",
                "--blockdev", "driver=raw,node-name=disk0,file=file0,read-only=on",
                "--export", "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=" + socket))
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(true).redirectOutput(dir.resolve("daemon.log").toFile()).start();
        VhostDisk disk = new VhostDisk(machine, gate, dir, p, image, sectors);
        try {
            disk.connect(socket);
        } catch (IOException | RuntimeException | InterruptedException e) {
            disk.close();
            throw e;
        }
        disk.thread = Thread.ofPlatform().name("vhost-disk").daemon(true).start(disk::loop);
        return disk;
    }

    private void connect(Path socket) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(socket) || !listening(socket)) {
            if (!daemon.isAlive()) {
                throw new IllegalStateException("qemu-storage-daemon exited with " + daemon.exitValue() + ": "
                        + Files.readString(dir.resolve("daemon.log")).strip().replace('\n', ' '));
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("qemu-storage-daemon: no socket after 30 s");
            }
            Thread.sleep(10);
        }
        AddressSpace as = machine.memory();
        frontend = VhostUserFrontend.connect(socket, Duration.ofSeconds(5), VhostUserPeer.sameUser());
        frontend.setProtocolFeatures(frontend.getProtocolFeatures() & (VhostUserFrontend.PROTOCOL_F_REPLY_ACK
                | VhostUserFrontend.PROTOCOL_F_CONFIGURE_MEM_SLOTS));
        frontend.setOwner();
        frontend.setFeatures(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES);
        listener = VhostUserMemoryListener.attach(frontend, as);
        queue = new SplitVirtqueue(as, ringBase(), 16);
        vring = VhostUserVring.start(frontend, listener, queue, 0, false);
    }

    /** Guest-physical address of the virtqueue's rings: the last MiB of RAM, above what the programs use. */
    private long ringBase() {
        return RiscvVirtMachine.RAM_BASE + machine.ram().size() - RING_OFFSET_FROM_END;
    }

    /** Whether a socket bound to {@code path} listens (/proc/net/unix flags it with __SO_ACCEPTCON). */
    private static boolean listening(Path path) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/net/unix"))) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 8 && f[7].equals(path.toString()) && f[3].equals("00010000")) {
                return true;
            }
        }
        return false;
    }

    private void loop() {
        AddressSpace as = machine.memory();
        long header = ringBase() + 0x1_0000;
        long status = header + 0x10;
        long buffer = ringBase() + 0x2_0000;
        long bufferOffset = buffer - RiscvVirtMachine.RAM_BASE;
        SplittableRandom random = new SplittableRandom(0x5eed);
        byte[] expected = new byte[READ_BYTES];
        byte[] got = new byte[READ_BYTES];
        int[] result = new int[1];
        while (!stop && failures.size() < 10 && frontend.isOpen()) {
            long sector = random.nextLong(sectors - READ_BYTES / SECTOR + 1);
            try {
                gate.enter();
            } catch (InterruptedException e) {
                return;
            }
            try {
                as.stlLe(header, 0, MemTxAttrs.UNSPECIFIED); // VIRTIO_BLK_T_IN
                as.stlLe(header + 4, 0, MemTxAttrs.UNSPECIFIED);
                as.stqLe(header + 8, sector, MemTxAttrs.UNSPECIFIED);
                as.stb(status, 0xff, MemTxAttrs.UNSPECIFIED);
                long t0 = System.nanoTime();
                queue.add(List.of(new SplitVirtqueue.Buffer(header, 16, false),
                        new SplitVirtqueue.Buffer(buffer, READ_BYTES, true),
                        new SplitVirtqueue.Buffer(status, 1, true)));
                vring.kick();
                SplitVirtqueue.Used used = null;
                long waitUntil = t0 + TimeUnit.SECONDS.toNanos(5);
                while (used == null && System.nanoTime() - waitUntil < 0) {
                    vring.awaitCall(100);
                    used = queue.poll();
                }
                latency.recordValue(System.nanoTime() - t0);
                if (used == null) {
                    failures.add("sector " + sector + ": no answer in 5 s");
                    break;
                }
                // The daemon wrote these bytes behind the access path: as QEMU merges a vhost log, mark them.
                machine.ram().setDirty(bufferOffset, READ_BYTES);
                machine.ram().setDirty(status - RiscvVirtMachine.RAM_BASE, 1);
                int s = as.ldub(status, MemTxAttrs.UNSPECIFIED, result);
                image.seek(sector * SECTOR);
                image.readFully(expected);
                int r = as.read(buffer, MemTxAttrs.UNSPECIFIED, got, 0, READ_BYTES);
                if (s != 0 || r != MemTxResult.OK || !Arrays.equals(expected, got)) {
                    failures.add("sector " + sector + ": status=" + s + " result=" + r + " bytesEqual="
                            + Arrays.equals(expected, got));
                }
                requests++;
            } catch (IOException e) {
                failures.add("image: " + e);
            } catch (RuntimeException e) {
                failures.add("request: " + e);
            } finally {
                gate.exit();
            }
            // A driver with work to do, not a load generator: leave the cores to the vCPUs between reads.
            LockSupport.parkNanos(PAUSE_NANOS);
        }
        if (!frontend.isOpen() && !stop) {
            failures.add("connection closed: " + frontend.closedReason());
        }
    }

    /** Stops the disk thread and waits for it. */
    void stop() throws InterruptedException {
        stop = true;
        if (thread != null) {
            thread.join();
        }
    }

    /** What the disk did; after {@link #stop}. */
    Result result() {
        return new Result(requests, requests * READ_BYTES, List.copyOf(failures), latency);
    }

    @Override
    public void close() {
        stop = true;
        if (vring != null) {
            vring.close();
        }
        if (listener != null) {
            listener.detach();
        }
        if (frontend != null) {
            frontend.close();
        }
        daemon.destroy();
        try {
            if (!daemon.waitFor(10, TimeUnit.SECONDS)) {
                daemon.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
            image.close();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(f);
                }
            } catch (IOException e) {
                // the directory is in the temporary directory; nothing of the guest is in it
            }
        }
    }
}
