package dev.guestmem.offheap.migration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryListener;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pre-copy migration with vCPU-like writer threads storing into the source through its address space the whole
 * time, to a destination in this process over a real socket.
 */
class PreCopyTest {
    static final int PAGE_BITS = 12;

    @TempDir
    Path dir;

    /**
     * The claim of every round: a page written after one dirty sync ended and before the next began is sent in the
     * round after that next sync. Writes, syncs and the destination's view of each round are all recorded; the
     * migration is kept from converging (a target downtime of 1 ns, and a progress callback that lets each round end
     * only after the writers wrote again), so it runs the whole round limit.
     */
    @Test
    void everyRoundSendsEveryPageWrittenBeforeItAndTheDestinationEndsEqual() throws Exception {
        int maxRounds = 6;
        try (Machine src = Machine.threeBackends(); Machine dst = Machine.threeBackends();
             Transport.Pair link = Transport.tcp()) {
            src.fillRandom(7);
            AtomicLong clock = new AtomicLong();
            List<Long> syncStarts = new CopyOnWriteArrayList<>();
            List<Long> syncEnds = new CopyOnWriteArrayList<>();
            Writers writers = new Writers(src, clock, 2, 1 << 19, null).recordLater();
            MemoryListener syncs = new MemoryListener() {
                @Override
                public void logSyncGlobal() {
                    writers.recordFromNowOn(); // stores before the first sync all go in round 0 anyway
                    syncStarts.add(clock.incrementAndGet());
                }

                @Override
                public void logGlobalAfterSync() {
                    syncEnds.add(clock.incrementAndGet());
                }
            };
            src.as.registerListener(syncs);
            List<BitSet> sent = new ArrayList<>();
            Map<String, Long> srcOffsets = offsets(src);
            FutureTask<RestoreReport> restore = Transport.start("restore", () -> RamMigration.restore(
                    dst.ramList(), link.destination(), RamMigration.DEFAULT_IO_TIMEOUT,
                    (round, block, first, count, zero) -> {
                        while (sent.size() <= round) {
                            sent.add(new BitSet());
                        }
                        long page = (srcOffsets.get(block.idstr()) >>> PAGE_BITS) + first;
                        sent.get(round).set((int) page, (int) (page + count));
                    }));
            List<RoundReport> progress = new ArrayList<>();
            AtomicInteger pauses = new AtomicInteger();
            AtomicInteger resumes = new AtomicInteger();
            writers.start();
            MigrationReport report = PreCopy.of(src.system).withMaxRounds(maxRounds)
                    .withTargetDowntime(Duration.ofNanos(1))
                    .withProgress(r -> {
                        progress.add(r);
                        if (!r.vmStopped()) {
                            writers.awaitMoreWrites();
                        }
                    })
                    .migrate(link.source(), () -> {
                        pauses.incrementAndGet();
                        writers.stop();
                    }, resumes::incrementAndGet);
            RestoreReport loaded = restore.get(120, TimeUnit.SECONDS);

            assertEquals(Optional.empty(), RamMigration.compare(src.ramList(), dst.ramList()));
            assertEquals(1, pauses.get());
            assertEquals(1, resumes.get());
            assertEquals(0, src.system.globalDirtyTracking(), "dirty logging is off again");
            assertEquals(report.rounds(), progress);
            assertEquals(maxRounds + 1, report.rounds().size());
            assertFalse(report.converged());
            assertEquals(maxRounds + 1, loaded.rounds());
            assertEquals(report.pagesSent(), loaded.pages());
            assertEquals(report.bytesSent(), loaded.bytes());
            for (int i = 0; i < report.rounds().size(); i++) {
                RoundReport r = report.rounds().get(i);
                assertEquals(i, r.round());
                assertEquals(i == maxRounds, r.vmStopped());
                assertEquals(sent.get(i).cardinality(), r.pagesSent(), "round " + i);
                if (i < maxRounds) {
                    assertTrue(r.dirtyPagesRemaining() > 0, "the writers wrote during round " + i);
                    long next = report.rounds().get(i + 1).pagesSent();
                    assertTrue(i + 1 == maxRounds ? next >= r.dirtyPagesRemaining()
                            : next == r.dirtyPagesRemaining(), "round " + (i + 1) + " sends what round " + i
                            + " left dirty");
                }
            }
            assertEquals(0, report.rounds().get(maxRounds).dirtyPagesRemaining());
            assertEquals((6L << 20) >>> PAGE_BITS, report.rounds().get(0).pagesSent());
            assertTrue(report.downtime().compareTo(report.totalTime()) < 0);
            // Syncs: one before the first round (its pages all go in round 0), one after each round with the vCPUs
            // running, one after the pause.
            assertEquals(maxRounds + 2, syncStarts.size());
            assertEquals(maxRounds + 2, syncEnds.size());
            int exact = writers.checkCovered(syncStarts, syncEnds, sent);
            assertTrue(exact > maxRounds, "writes that fell between two syncs: " + exact);
            src.as.unregisterListener(syncs);
        }
    }

    /**
     * The destination in a second JVM: it restores the pre-copy, then saves its RAM back over the same connection
     * into a third machine here, which must equal the source.
     */
    @Test
    void aDestinationInASecondJvm() throws Exception {
        try (Machine src = Machine.threeBackends(); Machine back = Machine.threeBackends();
             ServerSocketChannel server = ServerSocketChannel.open()) {
            src.fillRandom(10);
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
            String java = ProcessHandle.current().info().command().orElseThrow();
            String classpath = String.join(File.pathSeparator, System.getProperty("java.class.path"),
                    codeSource(DestinationMain.class), codeSource(RamMigration.class), codeSource(MemorySystem.class));
            Process p = new ProcessBuilder(java, "-ea", "--enable-native-access=ALL-UNNAMED", "-cp", classpath,
                    DestinationMain.class.getName(), Integer.toString(port))
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            Writers writers = new Writers(src, new AtomicLong(), 2, 0, null);
            try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8))) {
                server.socket().setSoTimeout(60_000); // a child that never connects fails the accept, not the build
                try (SocketChannel ch = server.socket().accept().getChannel()) {
                    writers.start();
                    MigrationReport report = PreCopy.of(src.system).withMaxRounds(4)
                            .migrate(ch, writers::stop, () -> { });
                    RestoreReport returned = RamMigration.restore(back.system, ch);
                    assertEquals(1, returned.rounds());
                    assertEquals(Optional.empty(), RamMigration.compare(src.ramList(), back.ramList()));
                    assertEquals("restored rounds=" + report.rounds().size() + " pages=" + report.pagesSent(),
                            out.readLine());
                }
                assertTrue(p.waitFor(60, TimeUnit.SECONDS));
                assertEquals(0, p.exitValue());
            } finally {
                writers.stop();
                p.destroyForcibly();
                p.getOutputStream().close();
            }
        }
    }

    private static String codeSource(Class<?> c) throws Exception {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    /** A guest that dirties a few pages slowly converges: two rounds, and the downtime of a few pages. */
    @Test
    void aQuietGuestConvergesOverAUnixSocket() throws Exception {
        try (Machine src = Machine.threeBackends(); Machine dst = Machine.threeBackends();
             Transport.Pair link = Transport.unix(dir)) {
            src.fillRandom(8);
            dst.fill((byte) 0x11);
            Writers writers = new Writers(src, new AtomicLong(), 1, 0, 8);
            FutureTask<RestoreReport> restore = Transport.start("restore",
                    () -> RamMigration.restore(dst.system, link.destination()));
            writers.start();
            writers.awaitMoreWrites();
            MigrationReport report = PreCopy.of(src.system).withTargetDowntime(Duration.ofSeconds(10))
                    .migrate(link.source(), writers::stop, () -> { });
            restore.get(120, TimeUnit.SECONDS);
            assertTrue(report.converged());
            assertEquals(2, report.rounds().size());
            assertTrue(report.rounds().get(1).pagesSent() <= 8, "at most the hot pages are left for the pause");
            assertEquals(Optional.empty(), RamMigration.compare(src.ramList(), dst.ramList()));
            assertEquals(0, src.system.globalDirtyTracking());
        }
    }

    @Test
    void aDestinationThatClosesMidMigrationFailsItAndLeavesTheSourceRunning() throws Exception {
        // A Unix socket holds a few hundred KiB in flight, far less than the 4 MiB of data pages of the first round:
        // the source cannot finish it before the destination closes.
        try (Machine src = Machine.threeBackends(); Transport.Pair link = Transport.unix(dir)) {
            src.fillRandom(9);
            Writers writers = new Writers(src, new AtomicLong(), 1, 0, null);
            FutureTask<Long> reader = Transport.readThenClose(link.destination(), 1 << 20);
            AtomicInteger pauses = new AtomicInteger();
            writers.start();
            try {
                MigrationException e = assertThrows(MigrationException.class, () -> PreCopy.of(src.system)
                        .migrate(link.source(), pauses::incrementAndGet, pauses::incrementAndGet));
                assertTrue(e.getMessage().matches("streamOffset=\\d+: writing the stream failed: .*"),
                        e.getMessage());
                assertTrue(reader.get(60, TimeUnit.SECONDS) >= 1 << 20);
                assertEquals(0, pauses.get(), "the vCPUs were never paused, nor resumed");
                assertEquals(0, src.system.globalDirtyTracking(), "dirty logging is off again");
                long before = writers.writes();
                writers.awaitMoreWrites();
                assertTrue(writers.writes() > before, "the guest still runs");
            } finally {
                writers.stop();
            }
        }
    }

    @Test
    void aBlockResizedWhileTheVcpusArePausedFailsTheMigrationAndResumesThem() throws Exception {
        MemorySystem src = new MemorySystem();
        MemoryRegion ram = src.resizeableRam("res", 1 << 20, 2 << 20, null);
        try (Transport.Pair link = Transport.tcp()) {
            FutureTask<Long> drain = Transport.start("drain", () -> {
                ByteBuffer b = ByteBuffer.allocate(64 << 10);
                long n = 0;
                for (int k; (k = link.destination().read(b.clear())) >= 0; ) {
                    n += k;
                }
                return n;
            });
            List<String> hooks = new ArrayList<>();
            MigrationException e = assertThrows(MigrationException.class, () -> PreCopy.of(src)
                    .migrate(link.source(), () -> {
                        hooks.add("pause");
                        ram.ramResize(1 << 21);
                    }, () -> hooks.add("resume")));
            assertEquals("block=res usedLength=0x100000 now=0x200000: resized during the migration", e.getMessage());
            assertEquals(List.of("pause", "resume"), hooks);
            assertEquals(0, src.globalDirtyTracking());
            link.source().close();
            assertTrue(drain.get(60, TimeUnit.SECONDS) > 0);
            // A second migration of the same system runs: nothing of the first is left behind.
            MigrationReport again = PreCopy.of(src).migrate(Channels.newChannel(new ByteArrayOutputStream()),
                    () -> { }, () -> { });
            assertEquals(2L << 20 >>> PAGE_BITS, again.rounds().get(0).pagesSent());
        } finally {
            ram.destroy();
        }
    }

    @Test
    void oneMigrationAtATime() throws Exception {
        MemorySystem system = new MemorySystem();
        system.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        try {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> PreCopy.of(system).migrate(Channels.newChannel(new ByteArrayOutputStream()), () -> { },
                            () -> { }));
            assertEquals("globalDirtyTracking=0x1: a migration is already logging this memory system's dirty pages",
                    e.getMessage());
        } finally {
            system.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        }
    }

    private static Map<String, Long> offsets(Machine m) {
        Map<String, Long> out = new HashMap<>();
        for (RamBlock b : m.ramList().blocks()) {
            out.put(b.idstr(), b.offset());
        }
        return out;
    }
}
