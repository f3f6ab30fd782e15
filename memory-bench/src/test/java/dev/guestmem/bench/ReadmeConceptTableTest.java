package dev.guestmem.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Keeps README.md's "Where each QEMU concept lives" honest: every type its tables name on the guestmem side
 * ({@code MemoryRegion}, {@code MemoryRegion.Kind}, {@code internal.render.RegionChecks},
 * {@code dev.guestmem.memory.mtree.QemuMtreeImporter}, a test such as {@code LdStFamiliesTest}) is a source file of
 * the repository, or a type declared in one, in the package the table gives when it gives one; every member written
 * after a type ({@code MemorySystem.container}) appears in that type's source; the few JDK types named
 * ({@code MemorySegment}) are the JDK's. Bare method names after a type in a list ({@code rom}, {@code io}) and QEMU's
 * own names are prose, not checked.
 */
class ReadmeConceptTableTest {
    private static final Path ROOT = Path.of(System.getProperty("basedir", System.getProperty("user.dir")))
            .resolve("..").normalize();
    private static final Pattern CODE = Pattern.compile("`([^`]+)`");
    /** A type, with the package the table may give it and the members it may name after it. */
    private static final Pattern TYPE = Pattern.compile(
            "((?:dev\\.guestmem\\.[a-z.]+\\.)|(?:internal\\.[a-z]+\\.))?([A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*)"
                    + "((?:\\.[A-Za-z_][A-Za-z0-9_]*)*)(\\(.*\\))?");
    private static final String[] JDK_PACKAGES = {"java.lang.", "java.lang.foreign.", "java.util.", "java.io."};

    @Test
    void everyTypeTheConceptTablesNameExists() throws IOException {
        String readme = Files.readString(ROOT.resolve("README.md"));
        int start = readme.indexOf("## Where each QEMU concept lives");
        assertTrue(start >= 0, "README.md has no section \"Where each QEMU concept lives\"");
        int end = readme.indexOf("\n## ", start + 1);
        Sources sources = new Sources(ROOT);
        List<String> missing = new ArrayList<>();
        int checked = 0;
        for (String row : readme.substring(start, end < 0 ? readme.length() : end).split("\n")) {
            if (!row.startsWith("| ") || row.startsWith("| ---") || row.startsWith("| QEMU |")
                    || row.startsWith("| 2012 / 2018 name |")) {
                continue;
            }
            String guestmem = row.substring(row.lastIndexOf('|', row.length() - 2) + 1);
            Matcher code = CODE.matcher(guestmem);
            while (code.find()) {
                // `coalescedIoAdd`/`Del`: the part after the slash shortens the name before it.
                boolean shorthand = code.start() > 0 && guestmem.charAt(code.start() - 1) == '/';
                Matcher type = TYPE.matcher(code.group(1));
                if (shorthand || !type.matches()) {
                    continue;
                }
                checked++;
                String problem = sources.check(type.group(1), type.group(2), type.group(3));
                if (problem != null) {
                    missing.add("`" + code.group(1) + "`: " + problem);
                }
            }
        }
        assertTrue(checked > 100, "only " + checked + " names found in the tables: is the section still a table?");
        assertEquals(List.of(), missing, "names in \"Where each QEMU concept lives\" that are not in the tree");
    }

    /** Planted names: a class that is not there, one in the wrong package, a member its class lacks. */
    @Test
    void theCheckFindsWhatIsNotThere() {
        Sources sources = new Sources(ROOT);
        assertNull(sources.check("internal.render.", "RegionChecks", ""));
        assertNull(sources.check(null, "MemoryRegion", ".Kind"));
        assertNull(sources.check(null, "MemorySegment", ""));
        assertEquals("no such type", sources.check(null, "NoSuchRegion", ""));
        assertEquals("no such type", sources.check("internal.dirty.", "RegionChecks", ""));
        assertEquals("no member noSuchMethod in MemorySystem", sources.check(null, "MemorySystem", ".noSuchMethod"));
    }

    /** The repository's Java sources, by simple type name. */
    private static final class Sources {
        private final Map<String, List<Path>> files = new HashMap<>();
        private final Map<Path, String> text = new HashMap<>();

        Sources(Path root) {
            try (Stream<Path> modules = Files.list(root)) {
                for (Path module : modules.filter(p -> p.getFileName().toString().startsWith("memory-")).toList()) {
                    try (Stream<Path> all = Files.walk(module.resolve("src"))) {
                        all.filter(p -> p.toString().endsWith(".java")).forEach(p -> {
                            String name = p.getFileName().toString();
                            files.computeIfAbsent(name.substring(0, name.length() - 5), k -> new ArrayList<>()).add(p);
                        });
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        /** Null when {@code pkg} (or any package) holds type {@code name} with every member of {@code members}. */
        String check(String pkg, String name, String members) {
            List<Path> found = new ArrayList<>(files.getOrDefault(name, List.of()));
            if (pkg != null) {
                String dir = (pkg.startsWith("dev.") ? pkg : "dev.guestmem.memory." + pkg).replace('.', '/');
                found.removeIf(p -> !p.toString().endsWith("/src/main/java/" + dir + name + ".java"));
            }
            if (found.isEmpty() && pkg == null) {
                Pattern nested = Pattern.compile("(class|interface|record|enum)\\s+" + name + "\\b");
                for (List<Path> ps : files.values()) {
                    for (Path p : ps) {
                        if (p.toString().contains("/src/main/") && nested.matcher(read(p)).find()) {
                            found.add(p);
                        }
                    }
                }
                if (found.isEmpty() && isJdkType(name)) {
                    return null;
                }
            }
            if (found.isEmpty()) {
                return "no such type";
            }
            for (String member : members.split("\\.")) {
                if (member.isEmpty()) {
                    continue;
                }
                Pattern word = Pattern.compile("\\b" + Pattern.quote(member) + "\\b");
                if (found.stream().noneMatch(p -> word.matcher(read(p)).find())) {
                    return "no member " + member + " in " + name;
                }
            }
            return null;
        }

        private String read(Path p) {
            return text.computeIfAbsent(p, q -> {
                try {
                    return Files.readString(q);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }

        private static boolean isJdkType(String name) {
            for (String pkg : JDK_PACKAGES) {
                try {
                    Class.forName(pkg + name, false, ClassLoader.getPlatformClassLoader());
                    return true;
                } catch (ClassNotFoundException e) {
                    // not in this package
                }
            }
            return false;
        }
    }
}
