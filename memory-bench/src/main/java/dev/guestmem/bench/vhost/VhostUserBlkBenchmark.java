package dev.guestmem.bench.vhost;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import dev.guestmem.offheap.vhost.SplitVirtqueue;
import dev.guestmem.offheap.vhost.VhostUserFrontend;
import dev.guestmem.offheap.vhost.VhostUserMemoryListener;
import dev.guestmem.offheap.vhost.VhostUserPeer;
import dev.guestmem.offheap.vhost.VhostUserVring;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.File;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Reads of a raw image through a real vhost-user device: guestmem's front-end hands memfd guest RAM and one split
 * virtqueue to Debian's unmodified {@code qemu-storage-daemon} exporting the image as {@code vhost-user-blk}, and each
 * operation is one virtio-blk IN request (header and status in guest RAM, a kick, the daemon's read into guest RAM, a
 * call): 4 KiB at random 4 KiB-aligned offsets ({@code vhostRandom4k}) and 64 KiB in sequence, wrapping at the end
 * ({@code vhostSequential64k}). The baseline in the same run is what a device model in this process would do instead:
 * {@code pread} of the same image file, at the same offsets, into the same guest RAM ({@code preadRandom4k},
 * {@code preadSequential64k}, through {@link FileChannel#read(ByteBuffer, long)} over the RAM's segment). The image
 * (64 MiB) is written before the run, so both read it from the page cache. Times are per request, sampled, so JMH
 * prints percentiles beside the mean; read the vhost rows as ratios to the pread rows.
 *
 * <p>Not covered: more than one request in flight or more than one queue (each request waits for its call, so this
 * is latency-bound), writes and flushes, the disk itself (page cache only, no {@code O_DIRECT}), event-index
 * notification suppression (not negotiated), and QEMU itself as the front-end (the daemon's side is the same; the
 * guest's side here is this process, not a vCPU).
 *
 * <p>Needs {@code qemu-storage-daemon} on the PATH ({@code scripts/setup-host.sh} installs it). Run:
 * {@code ./guestmem bench VhostUserBlkBenchmark}.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Thread)
public class VhostUserBlkBenchmark {
    static final int SECTOR = 512;
    static final long IMAGE_BYTES = 64L << 20;
    static final long RAM_BYTES = 1L << 20;
    /** Guest-physical addresses: the request header (16 bytes, then the status byte), and the data. */
    static final long HEADER = 0x1000;
    static final long DATA = 0x10000;
    static final int RANDOM_OFFSETS = 1 << 12;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final int T_IN = 0;
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    /** The image's size in bytes: {@link #IMAGE_BYTES} for the benchmark, a report may choose (whole MiB). */
    long imageBytes = IMAGE_BYTES;
    Path dir;
    Path image;
    Process daemon;
    MemorySystem system;
    MemoryRegion ram;
    AddressSpace as;
    VhostUserFrontend frontend;
    VhostUserMemoryListener memory;
    SplitVirtqueue queue;
    VhostUserVring vring;
    FileChannel file;
    long[] randomOffsets;
    int nextRandom;
    long nextSequential;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        dir = Files.createTempDirectory("guestmem-vhost-bench",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        image = dir.resolve("disk.img");
        byte[] chunk = new byte[1 << 20];
        SplittableRandom random = new SplittableRandom(12);
        try (FileChannel out = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long at = 0; at < imageBytes; at += chunk.length) {
                random.nextBytes(chunk);
                out.write(ByteBuffer.wrap(chunk), at);
            }
        }
        randomOffsets = new long[RANDOM_OFFSETS];
        for (int i = 0; i < randomOffsets.length; i++) {
            randomOffsets[i] = (long) random.nextInt((int) (imageBytes / 4096)) * 4096;
        }
        file = FileChannel.open(image, StandardOpenOption.READ);
        Path socket = dir.resolve("blk.sock");
        daemon = new ProcessBuilder(List.of(executable(), "--blockdev", "driver=file,node-name=file0,filename=" + image,
                "--blockdev", "driver=raw,node-name=disk0,file=file0", "--export",
                "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=" + socket + ",writable=off"))
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(true).redirectOutput(dir.resolve("daemon.log").toFile()).start();
        frontend = connect(socket);

        system = new MemorySystem();
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        ram = system.ram("ram", RAM_BYTES, HostMemoryBackend.memfd().build());
        system.transaction(() -> root.addSubregion(0, ram));
        as = system.addressSpace("memory", root);
        frontend.setProtocolFeatures(frontend.getProtocolFeatures() & VhostUserFrontend.PROTOCOL_F_REPLY_ACK);
        frontend.setOwner();
        frontend.setFeatures(VhostUserFrontend.VIRTIO_F_VERSION_1 | VhostUserFrontend.VHOST_USER_F_PROTOCOL_FEATURES);
        memory = VhostUserMemoryListener.attach(frontend, as);
        queue = new SplitVirtqueue(as, 0, 16);
        vring = VhostUserVring.start(frontend, memory, queue, 0, false);
    }

    /** The daemon on the PATH, or a one-line reason to install it. */
    private static String executable() {
        for (String p : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path exe = Path.of(p.isEmpty() ? "." : p, "qemu-storage-daemon");
            if (Files.isExecutable(exe)) {
                return exe.toString();
            }
        }
        throw new IllegalStateException("qemu-storage-daemon=missing: install it with 'apt-get install"
                + " qemu-system-common' (scripts/setup-host.sh does it as root)");
    }

    /** Connects once the daemon listens (it binds its socket when ready; a connect before that is refused). */
    private VhostUserFrontend connect(Path socket) throws IOException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();   // a start-up bound, not a measurement
        while (true) {
            try {
                return VhostUserFrontend.connect(socket, TIMEOUT, VhostUserPeer.sameUser());
            } catch (IllegalArgumentException notYet) {
                if (!daemon.isAlive() || System.nanoTime() > deadline) {
                    throw new IllegalStateException("socket=" + socket + " daemon=" + (daemon.isAlive() ? "running"
                            : "exited") + ": no vhost-user socket: " + Files.readString(dir.resolve("daemon.log")),
                            notYet);
                }
                try {
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException, InterruptedException {
        if (vring != null) {
            vring.close();
        }
        if (frontend != null) {
            frontend.close();
        }
        if (memory != null) {
            memory.detach();
        }
        if (daemon != null) {
            daemon.destroy();
            if (!daemon.waitFor(10, TimeUnit.SECONDS)) {
                daemon.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
        if (file != null) {
            file.close();
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private long nextRandom() {
        long offset = randomOffsets[nextRandom];
        nextRandom = (nextRandom + 1) & (RANDOM_OFFSETS - 1);
        return offset;
    }

    private long nextSequential() {
        long offset = nextSequential;
        nextSequential = (offset + 65536) % imageBytes;
        return offset;
    }

    @Benchmark
    public int vhostRandom4k() {
        return vhostRead(nextRandom(), 4096);
    }

    @Benchmark
    public int vhostSequential64k() {
        return vhostRead(nextSequential(), 65536);
    }

    @Benchmark
    public int preadRandom4k() throws IOException {
        return pread(nextRandom(), 4096);
    }

    @Benchmark
    public int preadSequential64k() throws IOException {
        return pread(nextSequential(), 65536);
    }

    /**
     * One virtio-blk IN of {@code len} bytes from image byte {@code offset} into guest RAM at {@link #DATA}, through
     * the daemon; returns the status byte the device wrote (0: VIRTIO_BLK_S_OK).
     */
    int vhostRead(long offset, int len) {
        as.stlLe(HEADER, T_IN, U);
        as.stqLe(HEADER + 8, offset / SECTOR, U);
        as.stb(HEADER + 16, 0xff, U);   // not a status the device writes
        queue.add(List.of(new SplitVirtqueue.Buffer(HEADER, 16, false), new SplitVirtqueue.Buffer(DATA, len, true),
                new SplitVirtqueue.Buffer(HEADER + 16, 1, true)));
        vring.kick();
        while (queue.poll() == null) {
            if (!vring.awaitCall(TIMEOUT.toMillis())) {
                throw new IllegalStateException("offset=" + offset + " len=" + len + " timeout=" + TIMEOUT
                        + ": the daemon did not use the request");
            }
        }
        int[] result = new int[1];
        int status = as.ldub(HEADER + 16, U, result);
        if (result[0] != MemTxResult.OK) {
            throw new IllegalStateException("status=" + U64.hex(HEADER + 16) + ": not readable");
        }
        return status;
    }

    /** The same bytes read in this process: {@code pread} into guest RAM at {@link #DATA}; returns the bytes read. */
    int pread(long offset, int len) throws IOException {
        MemorySegment data = ram.ramSegment().asSlice(DATA, len);
        ByteBuffer into = data.asByteBuffer();
        int n = 0;
        while (into.hasRemaining()) {
            int r = file.read(into, offset + n);
            if (r < 0) {
                throw new IOException("image=" + image + " offset=" + (offset + n) + ": end of file");
            }
            n += r;
        }
        return n;
    }
}
