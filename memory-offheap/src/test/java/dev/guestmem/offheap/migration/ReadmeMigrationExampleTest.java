package dev.guestmem.offheap.migration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.MemorySystem;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.FutureTask;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Runs README.md's migration example, the code between the markers below, with a vCPU thread storing into the source
 * until the pause; memory-bench's {@code ReadmeExampleTest} checks that the README shows it verbatim.
 */
class ReadmeMigrationExampleTest {
    /** The VMM's vCPUs: here one thread storing into the source's RAM. */
    private static final class Vcpus {
        private final Writers writers;
        private boolean resumed;

        Vcpus(Writers writers) {
            this.writers = writers;
        }

        void pause() {
            writers.stop();
        }

        void resume() {
            resumed = true; // a VMM would start the destination's vCPUs here
        }
    }

    @Test
    void theExampleMigratesARunningMachine() throws Exception {
        try (Machine src = Machine.threeBackends(); Machine dst = Machine.threeBackends();
             Transport.Pair link = Transport.tcp()) {
            src.fillRandom(11);
            MemorySystem source = src.system;
            MemorySystem destination = dst.system;
            SocketChannel toDestination = link.source();
            SocketChannel fromSource = link.destination();
            Writers writers = new Writers(src, new AtomicLong(), 1, 0, null);
            Vcpus vcpus = new Vcpus(writers);
            writers.start();
            // README example begin
            // Destination, its vCPUs stopped, on another thread: reads one stream, up to its end and no further
            FutureTask<RestoreReport> loaded = new FutureTask<>(() -> RamMigration.restore(destination, fromSource));
            Thread.ofPlatform().start(loaded);

            // Source, running: all of RAM, then the pages dirtied meanwhile, round after round; then pause, last pages
            MigrationReport report = PreCopy.of(source)
                    .withTargetDowntime(Duration.ofMillis(300))        // QEMU's downtime-limit (the default)
                    .withMaxRounds(30)                                 // then pause anyway (report.converged() false)
                    .withProgress(r -> System.out.println("round " + r.round() + ": " + r.pagesSent() + " pages, "
                            + r.dirtyPagesRemaining() + " dirty left"))
                    .migrate(toDestination, vcpus::pause, vcpus::resume);

            // With both machines stopped: the first byte that differs, if any
            RestoreReport restored = loaded.get();
            Optional<RamDifference> difference = RamMigration.compare(source.ramList(), destination.ramList());
            // README example end

            assertEquals(Optional.empty(), difference);
            assertEquals(report.rounds().size(), restored.rounds());
            assertTrue(vcpus.resumed);
            assertTrue(writers.writes() > 0);
        }
    }
}
