package dev.guestmem.bench;

import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryListener;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemoryRegionSection;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.mtree.MtreePrinter;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Keeps README.md honest: its API example is the code between the markers below, character for character, and
 * the outputs it shows are what that code and {@code ./guestmem mtree -f} print.
 */
class ReadmeExampleTest {
    private static final Path MODULE_DIR = Path.of(System.getProperty("basedir", System.getProperty("user.dir")));
    private static final Path README = MODULE_DIR.resolve("../README.md");
    private static final Path THIS_SOURCE =
            MODULE_DIR.resolve("src/test/java/dev/guestmem/bench/ReadmeExampleTest.java");

    @Test
    void theExampleRunsAndPrintsWhatTheReadmeShows() throws IOException {
        // README example begin
        StringBuilder console = new StringBuilder();
        MemorySystem system = new MemorySystem();                   // guest RAM comes from an Arena
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x10_0000);            // 1 MiB of zeroed RAM
        MemoryRegion uart = system.io("uart", 8, MemoryRegionOps.builder()
                .read((addr, size) -> addr == 5 ? 0x60 : 0)         // LSR: transmitter empty
                .write((addr, data, size) -> console.append((char) data))
                .valid(1, 1, false)                                 // byte accesses only
                .build());
        system.transaction(() -> {                                  // rendered once, at commit
            root.addSubregion(0, ram);
            root.addSubregionOverlap(0x1000, uart, 1);              // priority 1: above the RAM
            root.addSubregion(0x10_0000, system.alias("ram-mirror", ram, 0, 0x1000));
        });
        AddressSpace memory = system.addressSpace("memory", root);

        FlatView view = memory.flatView();                          // lock-free, immutable snapshot
        FlatRange hit = view.lookup(0x1004);                        // uart: 0x1000-0x1007
        String flat = MtreePrinter.flatViews(system);               // info mtree -f, shown below

        List<String> removed = new ArrayList<>();
        memory.registerListener(new MemoryListener() {
            @Override
            public void regionDel(MemoryRegionSection section) {
                removed.add(section.region().name());
            }
        });
        uart.setEnabled(false);                                     // one change, one commit
        // removed is [ram, uart, ram]: the RAM around the hole became one range;
        // view, loaded before the change, still shows the uart.
        // README example end

        assertSame(uart, hit.region());
        assertEquals(0x1000, hit.start());
        assertEquals(0x1007, hit.last());
        assertEquals(List.of("ram", "uart", "ram"), removed);
        assertSame(uart, view.lookup(0x1004).region());
        assertSame(ram, memory.flatView().lookup(0x1004).region());
        assertEquals("", console.toString());
        assertEquals(readmeBlock("text", "<!-- output of the example -->"), flat);
    }

    @Test
    void theReadmeShowsThisExampleVerbatim() throws IOException {
        assertEquals(exampleIn(THIS_SOURCE), readmeBlock("java", "<!-- the example: ReadmeExampleTest -->"));
    }

    @Test
    void theReadmeShowsTheBackendExampleVerbatim() throws IOException {
        // memory-offheap's ReadmeBackendExampleTest runs it; its module cannot see this one, so the check is here.
        Path source = MODULE_DIR.resolve(
                "../memory-offheap/src/test/java/dev/guestmem/offheap/ReadmeBackendExampleTest.java");
        assertEquals(exampleIn(source),
                readmeBlock("java", "<!-- the backends example: ReadmeBackendExampleTest -->"));
    }

    @Test
    void theReadmeShowsTheVhostUserExampleVerbatim() throws IOException {
        // memory-offheap's ReadmeVhostExampleTest runs it against qemu-storage-daemon, inside a try block.
        assertOffheapExample("vhost/ReadmeVhostExampleTest.java", "the vhost-user example");
    }

    @Test
    void theReadmeShowsTheMigrationExampleVerbatim() throws IOException {
        // memory-offheap's ReadmeMigrationExampleTest runs it with a vCPU thread storing until the pause.
        assertOffheapExample("migration/ReadmeMigrationExampleTest.java", "the migration example");
    }

    /** The README block after {@code <!-- what: Test -->} is the example of memory-offheap's test {@code path}. */
    private static void assertOffheapExample(String path, String what) throws IOException {
        Path source = MODULE_DIR.resolve("../memory-offheap/src/test/java/dev/guestmem/offheap/" + path);
        String test = source.getFileName().toString().replace(".java", "");
        assertEquals(exampleIn(source, 12), readmeBlock("java", "<!-- " + what + ": " + test + " -->"));
    }

    private static String exampleIn(Path source) throws IOException {
        return exampleIn(source, 8);
    }

    /** The lines of a test's body between its README markers, without the {@code indent} of the markers. */
    private static String exampleIn(Path source, int indent) throws IOException {
        List<String> lines = Files.readAllLines(source);
        String margin = " ".repeat(indent);
        int begin = lines.indexOf(margin + "// README example begin");
        int end = lines.indexOf(margin + "// README example end");
        assertTrue(begin >= 0 && end > begin, "markers in " + source);
        StringBuilder code = new StringBuilder();
        for (String line : lines.subList(begin + 1, end)) {
            code.append(line.length() >= indent ? line.substring(indent) : line.strip()).append('\n');
        }
        return code.toString();
    }

    @Test
    void theReadmeShowsWhatMtreePrintsOfTheMainJobsMachine() throws IOException {
        MemorySystem system = RiscvVirtMachine.create().system();
        String shown = readmeBlock("text", "<!-- output of ./guestmem mtree -f (the main job's machine) -->");
        assertEquals(MtreePrinter.flatViews(system), shown);
    }

    /** The fenced block of {@code language} that follows the line {@code marker} in the README. */
    private static String readmeBlock(String language, String marker) throws IOException {
        List<String> lines = Files.readAllLines(README);
        int at = lines.indexOf(marker);
        assertTrue(at >= 0, "README.md has no line " + marker);
        assertEquals("```" + language, lines.get(at + 1), "a ```" + language + " block follows " + marker);
        StringBuilder block = new StringBuilder();
        for (int i = at + 2; !lines.get(i).equals("```"); i++) {
            block.append(lines.get(i)).append('\n');
        }
        return block.toString();
    }
}
