package dev.guestmem.bench.riscv;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The committed guest images are what their sources build: native-test-images/src/main/riscv/build.sh, run into a
 * fresh directory with Debian's riscv64-unknown-elf toolchain, gives the committed {@code .bin} files byte for byte.
 */
class GuestImagesRebuildTest {
    private static final String COMPILER = "riscv64-unknown-elf-gcc";

    @Test
    void committedImagesAreRebuiltByteForByte(@TempDir Path out) throws IOException, InterruptedException {
        Path sources = Path.of(System.getProperty("guestmem.riscv.sources", "../native-test-images/src/main/riscv"));
        if (!onPath(COMPILER)) {
            fail("rebuilding the guest images needs " + COMPILER
                    + ": run scripts/setup-riscv.sh (apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)");
        }
        Process build = new ProcessBuilder(sources.resolve("build.sh").toString(), out.toString())
                .redirectErrorStream(true).start();
        String log = new String(build.getInputStream().readAllBytes());
        assertTrue(build.waitFor(5, TimeUnit.MINUTES), "build.sh did not finish");
        assertEquals(0, build.exitValue(), "build.sh failed:\n" + log);
        for (GuestProgram program : GuestProgram.values()) {
            String file = program.imageName();
            assertArrayEquals(Files.readAllBytes(sources.resolve(file)), Files.readAllBytes(out.resolve(file)),
                    file + " differs from a rebuild of its sources: run build.sh and commit the image");
        }
        try (var built = Files.list(out)) {
            assertEquals(GuestProgram.values().length, built.count(), "build.sh makes exactly the known images");
        }
    }

    private static boolean onPath(String command) {
        String path = System.getenv().getOrDefault("PATH", "");
        return List.of(path.split(java.io.File.pathSeparator)).stream()
                .anyMatch(dir -> !dir.isEmpty() && Files.isExecutable(Path.of(dir, command)));
    }
}
