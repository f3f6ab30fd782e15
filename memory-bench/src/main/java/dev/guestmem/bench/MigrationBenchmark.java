package dev.guestmem.bench;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.offheap.migration.RamMigration;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.Semaphore;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Migration bandwidth over loopback, in guest pages (4 KiB) per second: {@code save} is
 * {@link RamMigration#save} of 64 MiB of guest RAM to a destination in the same JVM that runs
 * {@link RamMigration#restore} on a thread of its own (one connection carries stream after stream, as a restore
 * reads nothing past its stream's end); an operation ends when the destination has checked the end of the stream.
 * The baseline, {@code rawCopy}, moves the same bytes over the same kind of socket from the source's memory into the
 * destination's with plain channel writes and reads: the limit of the transport, without a format, checksums or
 * zero-page tests. {@code content}: {@code random} pages (nothing to compress) or {@code halfZero} (every other
 * page zero, which the stream sends as a record header and the raw copy sends whole).
 *
 * <p>Run: {@code ./guestmem bench MigrationBenchmark}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class MigrationBenchmark {
    static final int PAGE = 4096;
    /** Guest pages migrated per operation: 64 MiB. */
    static final int PAGES = 16384;
    static final long SIZE = (long) PAGES * PAGE;

    @Param({"tcp", "unix"})
    public String transport;

    @Param({"random", "halfZero"})
    public String content;

    MemorySystem source;
    MemorySystem destination;
    MemoryRegion sourceRam;
    MemoryRegion destinationRam;
    private Path socketDir;
    private SocketChannel out;
    private SocketChannel in;
    private final SynchronousQueue<String> work = new SynchronousQueue<>();
    private final Semaphore done = new Semaphore(0);
    private Thread receiver;
    private volatile Throwable receiverFailure;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        source = new MemorySystem();
        destination = new MemorySystem();
        sourceRam = source.ram("ram", SIZE);
        destinationRam = destination.ram("ram", SIZE);
        MemorySegment m = sourceRam.ramSegment();
        SplittableRandom rnd = new SplittableRandom(1);
        for (long off = 0; off < SIZE; off += 8) {
            boolean zero = "halfZero".equals(content) && ((off / PAGE) & 1) == 0;
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, off, zero ? 0 : rnd.nextLong() | 1);
        }
        connect();
        receiver = new Thread(this::receive, "migration-destination");
        receiver.setDaemon(true);
        receiver.start();
    }

    private void connect() throws IOException {
        if ("unix".equals(transport)) {
            socketDir = Files.createTempDirectory("guestmem-migration");
            UnixDomainSocketAddress address = UnixDomainSocketAddress.of(socketDir.resolve("s"));
            try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
                server.bind(address);
                out = SocketChannel.open(address);
                in = server.accept();
            }
        } else if ("tcp".equals(transport)) {
            try (ServerSocketChannel server = ServerSocketChannel.open()) {
                server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                out = SocketChannel.open(server.getLocalAddress());
                in = server.accept();
            }
        } else {
            throw new IllegalArgumentException("transport=" + transport + ": expected tcp or unix");
        }
    }

    /** The destination: one stream (or raw copy) per operation, until told to stop. */
    private void receive() {
        try {
            ByteBuffer dst = destinationRam.ramSegment().asByteBuffer();
            for (String op; !"stop".equals(op = work.take()); ) {
                if ("save".equals(op)) {
                    RamMigration.restore(destination, in);
                } else {
                    dst.clear();
                    while (dst.hasRemaining()) {
                        if (in.read(dst) < 0) {
                            throw new IOException("the source closed the socket");
                        }
                    }
                }
                done.release();
            }
        } catch (Throwable t) {
            receiverFailure = t;
            done.release();
        }
    }

    private void awaitDestination() {
        done.acquireUninterruptibly();
        if (receiverFailure != null) {
            throw new IllegalStateException("the destination failed", receiverFailure);
        }
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public void save() throws IOException, InterruptedException {
        work.put("save");
        RamMigration.save(source, out);
        awaitDestination();
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public void rawCopy() throws IOException, InterruptedException {
        work.put("raw");
        ByteBuffer src = sourceRam.ramSegment().asByteBuffer();
        while (src.hasRemaining()) {
            out.write(src);
        }
        awaitDestination();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException, InterruptedException {
        work.put("stop");
        receiver.join();
        out.close();
        in.close();
        if (socketDir != null) {
            Files.deleteIfExists(socketDir.resolve("s"));
            Files.delete(socketDir);
        }
        sourceRam.destroy();
        destinationRam.destroy();
    }

    /** Bytes of the source's RAM, for the benchmark's test. */
    byte[] sourceBytes() {
        return sourceRam.ramSegment().toArray(ValueLayout.JAVA_BYTE);
    }

    /** Bytes of the destination's RAM, for the benchmark's test. */
    byte[] destinationBytes() {
        return destinationRam.ramSegment().toArray(ValueLayout.JAVA_BYTE);
    }
}
