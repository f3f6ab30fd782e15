package dev.guestmem.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code scripts/build-hsdis.sh} builds a disassembler the JVM loads: a JVM given its directory prints a method C2
 * compiled as x86 instructions, where without it it prints only the raw bytes.
 */
class HsdisPluginTest {
    private static final Path SCRIPT = Path.of("../scripts/build-hsdis.sh");

    /** A method hot enough for C2, whose compiled code the child JVM prints. */
    public static final class Hot {
        static long sum(long[] values) {
            long s = 0;
            for (long v : values) {
                s += v * 31;
            }
            return s;
        }

        public static void main(String[] args) {
            long[] values = new long[1000];
            long s = 0;
            for (int i = 0; i < 20_000; i++) {
                values[i % values.length] = i;
                s += sum(values);
            }
            System.out.println("sum=" + s);
        }
    }

    @Test
    void theJvmPrintsCompiledCodeAsInstructionsWithThePlugin() throws IOException, InterruptedException {
        Process build = new ProcessBuilder("bash", SCRIPT.toString()).redirectErrorStream(true).start();
        String built = new String(build.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertTrue(build.waitFor(300, TimeUnit.SECONDS), "build-hsdis.sh did not finish");
        // 3: Capstone cannot be had here (not root, or not x86_64); any other failure, a build that broke, fails.
        Assumptions.assumeTrue(build.exitValue() != 3, "no disassembler: " + built);
        assertEquals(0, build.exitValue(), built);
        String dir = built.lines().reduce((a, b) -> b).orElseThrow();

        String with = printAssembly(dir);
        assertTrue(with.contains("sum="), with);
        assertTrue(with.contains("HsdisPluginTest$Hot::sum"), "the method was not printed:\n" + with);
        assertFalse(with.contains("Loading hsdis library failed"), with);
        assertTrue(with.contains("[Disassembly]"), with);
        // Instructions with operands, as Capstone prints them: "mov      rax, qword ptr [...]" and a return.
        assertTrue(Pattern.compile("(?m)^\\s+0x[0-9a-f]+:\\s+mov\\w*\\s+\\w+, ").matcher(with).find(),
                "no decoded instruction:\n" + with);
        assertTrue(Pattern.compile("(?m)^\\s+0x[0-9a-f]+:\\s+ret\\b").matcher(with).find(), with);

        String without = printAssembly("/nonexistent");
        assertTrue(without.contains("Loading hsdis library failed") && without.contains("[MachCode]")
                && !without.contains("[Disassembly]"), "a JVM without the plugin decoded anyway:\n" + without);
    }

    private static String printAssembly(String libraryPath) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String classes = Path.of(Hot.class.getProtectionDomain().getCodeSource().getLocation().getPath()).toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-XX:+UnlockDiagnosticVMOptions",
                "-XX:CompileCommand=quiet", "-XX:CompileCommand=print," + Hot.class.getName() + "::sum",
                "-XX:-TieredCompilation", "-cp", classes, Hot.class.getName()).redirectErrorStream(true);
        pb.environment().put("LD_LIBRARY_PATH", libraryPath);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the JVM did not finish");
        assertEquals(0, p.exitValue(), out);
        return out;
    }
}
