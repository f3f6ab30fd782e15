package dev.guestmem.bench.peers;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The Rust harness of {@code peers/vm-memory-bench}: rust-vmm's vm-memory (Debian's {@code librust-vm-memory-dev}) on
 * {@link PeersPattern}, built offline with {@code cargo} from Debian's directory registry and run as a separate
 * process. Its output is one {@code key=value} line per measure ({@code peer=vm-memory version=0.10.0 regions=100
 * op=read8 ns=30.125 ...}); {@link #parse} reads them.
 *
 * <p>Every process gets a deadline and is killed when it passes it; its output goes to a temporary file, deleted
 * afterwards. Failures are {@link HarnessException}s whose message is one line: the command and the last line the
 * process printed (cargo's or the harness's own error).
 *
 * <p>Threading: stateless; each call runs its own processes.
 */
final class VmMemoryHarness {
    private static final String BINARY = "target/release/vm-memory-bench";
    /** The line of the harness's {@code .cargo/config.toml} naming the directory registry it builds from. */
    private static final Pattern REGISTRY_LINE =
            Pattern.compile("^\\s*directory\\s*=\\s*\"([^\"]+)\"", Pattern.MULTILINE);
    private static final long BUILD_MINUTES = 15;
    /** One pass of a measure takes well under a second; this bounds a whole bench run with room for a loaded host. */
    private static final long RUN_MINUTES = 30;

    /** One measure of the harness: nanoseconds per access of {@code op} over {@code regions} regions. */
    record Measure(String version, int regions, String op, double ns) {
    }

    /** A harness that could not be built or run; the message is one line. */
    static final class HarnessException extends Exception {
        private static final long serialVersionUID = 1L;

        HarnessException(String message) {
            super(message);
        }
    }

    private final Path dir;
    private final String cargo;

    /** The harness in {@code dir}, built with {@code cargo} (a command on {@code PATH} or a path). */
    VmMemoryHarness(Path dir, String cargo) {
        this.dir = dir;
        this.cargo = cargo;
    }

    /** The harness in {@code dir}, built with {@code $CARGO} when set, else {@code cargo} on {@code PATH}. */
    static VmMemoryHarness in(Path dir) {
        String cargo = System.getenv("CARGO");
        return new VmMemoryHarness(dir, cargo == null || cargo.isBlank() ? "cargo" : cargo);
    }

    /** Why the harness cannot be built here (no manifest, no cargo, no vm-memory crate), or null when it can. */
    String missingTools() {
        if (!Files.isRegularFile(dir.resolve("Cargo.toml"))) {
            return "harness=" + dir + ": no Cargo.toml (run from the repository, or pass --harness DIR)";
        }
        if (!cargo.contains("/") && !onPath(cargo)) {
            return "cargo=" + cargo + " not on PATH: install it with 'apt-get install cargo librust-vm-memory-dev'";
        }
        Path registry = registry();
        if (registry == null) {
            return "config=" + dir.resolve(".cargo/config.toml") + ": no directory registry named";
        }
        if (!hasCrate(registry, "vm-memory-")) {
            return "crate=vm-memory not in " + registry + ": install it with 'apt-get install librust-vm-memory-dev'";
        }
        return null;
    }

    /** Builds the harness ({@code cargo build --release --offline}); a no-op when it is up to date. */
    void build() throws HarnessException {
        String missing = missingTools();
        if (missing != null) {
            throw new HarnessException(missing);
        }
        run(List.of(cargo, "build", "--release", "--offline", "--quiet"), BUILD_MINUTES,
                "is Debian's librust-vm-memory-dev installed? (apt-get install librust-vm-memory-dev)");
    }

    /** Runs the built harness's measures over {@code regions}, each for about {@code seconds}. */
    List<Measure> bench(List<Integer> regions, double seconds) throws HarnessException {
        List<String> lines = run(List.of(dir.resolve(BINARY).toString(), "bench", "--regions", join(regions),
                "--seconds", Double.toString(seconds)), RUN_MINUTES, null);
        return parse(lines);
    }

    /** The harness's checksum of the 8-byte words it reads at the pattern's addresses for {@code seed}. */
    long checksum(int regions, long seed) throws HarnessException {
        List<String> lines = run(List.of(dir.resolve(BINARY).toString(), "checksum", "--regions",
                Integer.toString(regions), "--seed", Long.toString(seed)), RUN_MINUTES, null);
        for (String line : lines) {
            Map<String, String> kv = fields(line);
            if ("vm-memory".equals(kv.get("peer")) && kv.containsKey("checksum")) {
                return Long.parseUnsignedLong(kv.get("checksum").substring(2), 16);
            }
        }
        throw new HarnessException("checksum: no checksum= line in the harness's output " + lines);
    }

    /** The measures among {@code lines} (lines that are not the harness's are ignored). */
    static List<Measure> parse(List<String> lines) {
        List<Measure> out = new ArrayList<>();
        for (String line : lines) {
            Map<String, String> kv = fields(line);
            if ("vm-memory".equals(kv.get("peer")) && kv.containsKey("op") && kv.containsKey("ns")) {
                out.add(new Measure(kv.getOrDefault("version", "?"), Integer.parseInt(kv.get("regions")),
                        kv.get("op"), Double.parseDouble(kv.get("ns"))));
            }
        }
        return out;
    }

    private static Map<String, String> fields(String line) {
        Map<String, String> kv = new HashMap<>();
        for (String token : line.trim().split("\\s+")) {
            int eq = token.indexOf('=');
            if (eq > 0) {
                kv.put(token.substring(0, eq), token.substring(eq + 1));
            }
        }
        return kv;
    }

    /** Runs {@code command} in the harness's directory; returns its output lines (stdout and stderr). */
    private List<String> run(List<String> command, long minutes, String hint) throws HarnessException {
        Path log = null;
        try {
            log = Files.createTempFile("vm-memory-bench", ".log");
            Process process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(log.toFile()).start();
            boolean done;
            try {
                done = process.waitFor(minutes, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new HarnessException("command=" + String.join(" ", command) + ": interrupted");
            }
            if (!done) {
                process.destroyForcibly();
                throw new HarnessException("command=" + String.join(" ", command) + ": no exit after " + minutes
                        + " min, killed");
            }
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            if (process.exitValue() != 0) {
                String last = lines.isEmpty() ? "(no output)" : lines.get(lines.size() - 1).trim();
                throw new HarnessException("command=" + String.join(" ", command) + " exit=" + process.exitValue()
                        + ": " + last + (hint == null ? "" : "; " + hint));
            }
            return lines;
        } catch (IOException e) {
            throw new HarnessException("command=" + String.join(" ", command) + ": " + e.getMessage());
        } finally {
            if (log != null) {
                try {
                    Files.deleteIfExists(log);
                } catch (IOException e) {
                    log.toFile().deleteOnExit(); // a second chance; the command's own outcome matters more
                }
            }
        }
    }

    /** The directory registry the harness's cargo configuration names (Debian's), or null. */
    private Path registry() {
        try {
            Matcher m = REGISTRY_LINE.matcher(Files.readString(dir.resolve(".cargo/config.toml")));
            return m.find() ? Path.of(m.group(1)) : null;
        } catch (IOException e) {
            return null;
        }
    }

    private static boolean hasCrate(Path registry, String prefix) {
        try (var entries = Files.list(registry)) {
            return entries.anyMatch(p -> String.valueOf(p.getFileName()).startsWith(prefix));
        } catch (IOException e) {
            return false;
        }
    }

    private static boolean onPath(String command) {
        String path = System.getenv("PATH");
        if (path == null) {
            return false;
        }
        for (String entry : path.split(java.io.File.pathSeparator)) {
            if (!entry.isEmpty() && Files.isExecutable(Path.of(entry, command))) {
                return true;
            }
        }
        return false;
    }

    private static String join(List<Integer> regions) {
        return regions.stream().map(String::valueOf).collect(Collectors.joining(","));
    }
}
