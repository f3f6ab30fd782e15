package dev.guestmem.bench.cli;

import dev.guestmem.bench.MapLoadBenchmark;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ./guestmem mtree -f}, {@code mtree} and {@code import-qemu} on a flat map of many regions (MapLoadBenchmark's:
 * RAM and I/O of 4 KiB side by side in a 2^64 container), each in its own JVM with a heap of at most
 * {@value #HEAP}, as a user runs them: each must succeed and print every region; the tree view, imported as a QEMU
 * dump, must print the same flat view again. Each command's time and the most heap its JVM had in use (from its GC
 * log) are printed, not asserted: they depend on the machine.
 *
 * <p>{@value #DEFAULT_REGIONS} regions by default; the scale run is
 * {@code ./guestmem test -pl memory-bench -am -Dtest=MapScaleSoakTest -Dsurefire.failIfNoSpecifiedTests=false
 * -Dguestmem.scale.regions=1000000}. The map is generated here, never kept.
 */
class MapScaleSoakTest {
    static final int DEFAULT_REGIONS = 20_000;
    static final String HEAP = "2g";
    private static final int REGIONS = Integer.getInteger("guestmem.scale.regions", DEFAULT_REGIONS);
    private static final Pattern GC_HEAP = Pattern.compile("(\\d+)M->(\\d+)M\\((\\d+)M\\)");

    @Test
    void aLargeFlatMapPrintsAndImportsWithinTheHeap(@TempDir Path dir) throws Exception {
        Path map = dir.resolve("map.json");
        try (Writer w = Files.newBufferedWriter(map, StandardCharsets.UTF_8)) {
            MapLoadBenchmark.writeMapJson(REGIONS, w);
        }
        Path flat = run(dir, "mtree-f", "mtree", "-f", map.toString());
        assertEquals(REGIONS + 4, lines(flat), "FlatView #0, AS, Root memory region, every region, a blank line");
        assertEquals(String.format("  %016x-%016x (prio 0, %s): r%d", (long) (REGIONS - 1) << 12,
                ((long) REGIONS << 12) - 1, REGIONS % 2 == 0 ? "i/o" : "ram", REGIONS - 1), lastRange(flat));

        Path tree = run(dir, "mtree", "mtree", map.toString());
        assertEquals(REGIONS + 3, lines(tree), "address-space, the root, every region, a blank line");

        Path imported = dir.resolve("imported.json");
        run(dir, "import-qemu", "import-qemu", "-o", imported.toString(), tree.toString());
        Path again = run(dir, "mtree-f-imported", "mtree", "-f", imported.toString());
        assertEquals(-1L, Files.mismatch(flat, again), "the imported tree view prints the same flat view");
    }

    /** Runs the tool's command in a JVM of {@link #HEAP}; returns the file its standard output went to. */
    private static Path run(Path dir, String label, String... args) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElseThrow();
        String classpath = String.join(File.pathSeparator, System.getProperty("java.class.path"),
                codeSource(GuestmemCli.class));
        Path out = dir.resolve(label + ".out");
        Path err = dir.resolve(label + ".err");
        Path gc = dir.resolve(label + ".gc");
        List<String> command = new ArrayList<>(List.of(java, "-Xmx" + HEAP, "-Xlog:gc:file=" + gc,
                "--enable-native-access=ALL-UNNAMED", "-cp", classpath, GuestmemCli.class.getName()));
        command.addAll(List.of(args));
        long start = System.nanoTime();
        Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        try {
            assertTrue(p.waitFor(30, TimeUnit.MINUTES), label + " finished");
        } finally {
            p.destroyForcibly();
            p.getOutputStream().close();
        }
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertEquals(0, p.exitValue(), label + ": " + Files.readString(err));
        System.out.printf("%s of %,d regions: %,d ms, at most %,d MiB of heap in use (-Xmx%s)%n", label, REGIONS, ms,
                peakHeapMib(gc), HEAP);
        return out;
    }

    /** The most heap in use before any collection the log shows (the last figure before a pause's arrow). */
    private static long peakHeapMib(Path gcLog) throws IOException {
        long peak = 0;
        for (String line : Files.readAllLines(gcLog)) {
            Matcher m = GC_HEAP.matcher(line);
            while (m.find()) {
                peak = Math.max(peak, Long.parseLong(m.group(1)));
            }
        }
        return peak;
    }

    private static long lines(Path file) throws IOException {
        try (BufferedReader r = Files.newBufferedReader(file)) {
            return r.lines().count();
        }
    }

    private static String lastRange(Path file) throws IOException {
        try (BufferedReader r = Files.newBufferedReader(file)) {
            return r.lines().filter(l -> l.startsWith("  ")).reduce((a, b) -> b).orElse("");
        }
    }

    private static String codeSource(Class<?> c) {
        try {
            return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
