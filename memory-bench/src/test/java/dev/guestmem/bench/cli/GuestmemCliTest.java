package dev.guestmem.bench.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.stream.Stream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tool's commands, run in-process as the launcher runs them. */
class GuestmemCliTest {

    record Result(int exitCode, String out, String err) {
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = GuestmemCli.commandLine();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        int code = cli.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void mtreeOfThePcMachinePrintsTheTreeAndTheFlatViews() {
        Result r = run("mtree", "--machine", "pc");
        assertEquals(0, r.exitCode(), r.err());
        String out = r.out();
        assertTrue(out.startsWith("address-space: memory\n"
                + "  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n"), out);
        assertTrue(out.contains("      00000000000e0000-00000000000fffff (prio 1, rom): alias isa-bios @pc.bios "
                + "0000000000020000-000000000003ffff\n"), out);
        assertTrue(out.contains("address-space: I/O\n"), out);
        Result flat = run("mtree", "-f", "--machine", "pc");
        assertEquals(0, flat.exitCode(), flat.err());
        assertTrue(flat.out().startsWith("FlatView #0\n AS \"memory\", root: system\n Root memory region: system\n"
                + "  0000000000000000-000000000009ffff (prio 0, ram): pc.ram\n"), flat.out());
        assertTrue(flat.out().contains("FlatView #1\n AS \"I/O\", root: io\n"), flat.out());
        assertTrue(flat.out().endsWith("  00000000000003f8-00000000000003ff (prio 0, i/o): serial\n\n"), flat.out());
    }

    @Test
    void mtreeWithoutAMapPrintsTheMainJobsMachine() {
        Result r = run("mtree", "-f");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("(prio 0, ram): virt.fb\n"), r.out());
        assertTrue(r.out().contains("0000000041000000-0000000041000fff (prio 0, i/o): movable-bar\n"), r.out());
        assertEquals(2, run("mtree", "--machine", "vax").exitCode());
        assertEquals(2, run("mtree", "--machine", "pc", "some-map.json").exitCode());
    }

    @Test
    void runRefusesBadFlagsWithOneLine() {
        for (String[] args : new String[][] {{"run", "--vcpus", "0"}, {"run", "--seconds", "-1"},
                {"run", "--ram", "3M"}, {"run", "--ram", "lots"}, {"run", "--ram-backend", "tape"},
                {"run", "--tlb", "segment"},
                {"run", "--disk", "no-such-disk.img"},
                {"run", "--disk", "pom.xml", "--ram-backend", "anonymous"},
                {"run", "--frobnicate"}}) {
            Result r = run(args);
            assertEquals(2, r.exitCode(), String.join(" ", args) + ": " + r.err());
            if (!args[1].equals("--frobnicate")) {
                assertEquals(1, r.err().strip().lines().count(), r.err());
                assertTrue(r.err().startsWith("guestmem run: ") && r.err().contains("="), r.err());
            }
        }
    }

    @Test
    void helpListsEveryCommand() {
        Result r = run("--help");
        assertEquals(0, r.exitCode());
        for (String command : new String[] {"run", "mtree", "import-qemu", "bench", "peers"}) {
            assertTrue(r.out().contains("  " + command + " "), r.out());
        }
    }

    @Test
    void mapCommandsFailCleanlyOnAMissingFile() {
        assertEquals(1, run("mtree", "no-such-map.json").exitCode());
        assertEquals(1, run("import-qemu", "no-such-dump.txt").exitCode());
    }

    @Test
    void mtreeDispatchTreesAtAChosenPageSize(@TempDir Path dir) throws IOException {
        Path map = dir.resolve("map.json");
        Files.writeString(map, """
                { "format": "guestmem-map/1",
                  "regions": { "sys": { "name": "system", "kind": "container", "size": "0x10000000000000000",
                                        "subregions": [ { "region": "uart", "addr": "0x1000" } ] },
                               "uart": { "name": "uart", "kind": "io", "size": "0x400" } },
                  "addressSpaces": [ { "name": "memory", "root": "sys" } ] }
                """);
        Result small = run("mtree", "-f", "-d", "--page-bits", "10", map.toString());
        assertEquals(0, small.exitCode(), small.err());
        assertTrue(small.out().contains("""
                  Dispatch
                    Physical sections
                      #0 @0000000000000000..ffffffffffffffff (noname) [unassigned]
                      #1 @0000000000001000..00000000000013ff uart [not dirty]
                    Nodes (9 bits per level, 6 levels) ptr=[5] skip=6
                """), small.out());
        Result x86 = run("mtree", "-f", "-d", map.toString());
        assertTrue(x86.out().contains("      #1 @0000000000001000..0000000000001fff (noname) [not dirty]\n"), x86.out());
        assertEquals(2, run("mtree", "-d", map.toString()).exitCode(), "-d without -f");
    }

    @Test
    void unknownCommandIsAUsageError() {
        assertEquals(2, run("frobnicate").exitCode());
    }

    private static final String SMALL_MAP = """
            { "format": "guestmem-map/1",
              "regions": { "sys": { "name": "system", "kind": "container", "size": "0x10000000000000000",
                                    "subregions": [ { "region": "uart", "addr": "0x1000" } ] },
                           "uart": { "name": "uart", "kind": "io", "size": "0x400" } },
              "addressSpaces": [ { "name": "memory", "root": "sys" } ] }
            """;

    @Test
    void everyCommandPrintsTheVersion() {
        for (String[] args : new String[][] {{"--version"}, {"-V"}, {"run", "-V"}, {"mtree", "--version"},
                {"import-qemu", "-V"}, {"bench", "-V"}}) {
            Result r = run(args);
            assertEquals(0, r.exitCode(), String.join(" ", args));
            assertTrue(r.out().matches("guestmem \\d+\\.\\d+\\.\\d+(-SNAPSHOT)?\nJava 25.*\n"), r.out());
        }
    }

    @Test
    void helpOfACommandIsThatCommandsHelp() {
        Result r = run("help", "mtree");
        assertEquals(0, r.exitCode());
        assertTrue(r.out().startsWith("Usage: guestmem mtree "), r.out());
        Result bench = run("bench", "--help");
        assertEquals(0, bench.exitCode(), bench.err());
        assertTrue(bench.out().startsWith("Usage: guestmem bench [-hV] [--baseline NAME[:PARAM=VALUE,...]]... [JMH-ARGUMENT...]\n"), bench.out());
        assertTrue(bench.out().endsWith("JMH's options:\n"), bench.out());
    }

    @Test
    void benchRunsJmhAndPrintsEachForkWithTheRatioToTheBaseline() {
        Result r = run("bench", "HostTlbBenchmark.(rawLoad|limitLoad)$", "-f", "2", "-wi", "0", "-i", "1",
                "-r", "100ms", "-p", "workingSet=1048576", "--baseline", "rawLoad");
        assertEquals(0, r.exitCode(), r.err());
        List<String> lines = r.out().lines().toList();
        int header = lines.indexOf("| benchmark | tlbEntries | workingSet | unit | forks | median | min | max "
                + "| x rawLoad |");
        assertTrue(header > 0, r.out());
        List<String> rows = lines.subList(header + 2, lines.size());
        assertEquals(2, rows.size(), r.out());
        for (String row : rows) {
            String[] cells = cells(row);
            assertEquals(9, cells.length, row);
            assertEquals("1048576", cells[2], row);
            assertEquals("ns/op", cells[3], row);
            double[] forks = Stream.of(cells[4].split(" ")).mapToDouble(Double::parseDouble).toArray();
            assertEquals(2, forks.length, row); // one score per fork
            double median = Double.parseDouble(cells[5]);
            assertEquals((forks[0] + forks[1]) / 2, median, 0.02 * median, row);
            assertTrue(median > 0, row);
        }
        assertTrue(rows.get(0).startsWith("| limitLoad | 1024 | 1048576 |"), r.out());
        assertTrue(rows.get(1).startsWith("| rawLoad |  | 1048576 |") && rows.get(1).endsWith(" | 1.00x |"), r.out());
        double limit = Double.parseDouble(cells(rows.get(0))[5]);
        double raw = Double.parseDouble(cells(rows.get(1))[5]);
        String ratio = cells(rows.get(0))[8];
        assertTrue(ratio.endsWith("x"), ratio);
        assertEquals(limit / raw, Double.parseDouble(ratio.substring(0, ratio.length() - 1)),
                0.01 + 0.02 * limit / raw, r.out());
    }

    private static String[] cells(String row) {
        return row.substring(2, row.length() - 2).split(" \\| ", -1);
    }

    @Test
    void benchNamesABaselineThatDidNotRunAndABadOption() {
        Result r = run("bench", "HostTlbBenchmark.rawLoad$", "-f", "1", "-wi", "0", "-i", "1", "-r", "100ms",
                "-p", "workingSet=1048576", "--baseline", "limitLoad");
        assertEquals(1, r.exitCode(), r.out());
        assertTrue(r.out().contains("\n| rawLoad | 1048576 | ns/op | "), r.out()); // the table, without ratios
        assertEquals("guestmem bench: --baseline limitLoad: no such benchmark ran (ran: rawLoad)\n",
                r.err());
        Result spec = run("bench", "--baseline", "limitLoad:workingSet", "HostTlbBenchmark.rawLoad$");
        assertEquals(2, spec.exitCode());
        assertEquals("guestmem bench: --baseline limitLoad:workingSet: not NAME or NAME:param=value,... (e.g. "
                + "limitLoad, *:clients=0)\n", spec.err());
        Result bad = run("bench", "-f", "many");
        assertEquals(2, bad.exitCode());
        assertTrue(bad.err().startsWith("guestmem bench: ") && bad.err().contains("many"), bad.err());
        Result none = run("bench", "NoSuchBenchmark");
        assertEquals(2, none.exitCode());
        assertEquals("guestmem bench: no benchmark matches [NoSuchBenchmark] (./guestmem bench -l lists them)\n",
                none.err());
    }

    @Test
    void mtreeReadsStandardInput() {
        InputStream stdin = System.in;
        try {
            System.setIn(new ByteArrayInputStream(SMALL_MAP.getBytes(StandardCharsets.UTF_8)));
            Result r = run("mtree", "-");
            assertEquals(0, r.exitCode(), r.err());
            assertEquals("""
                    address-space: memory
                      0000000000000000-ffffffffffffffff (prio 0, i/o): system
                        0000000000001000-00000000000013ff (prio 0, i/o): uart

                    """, r.out());
        } finally {
            System.setIn(stdin);
        }
    }

    @Test
    void badInputIsOneLineNamingIt(@TempDir Path dir) throws IOException {
        Path binary = dir.resolve("binary.json");
        Files.write(binary, new byte[] {'{', (byte) 0xc3, 0x28, '}'});
        assertFails(1, "guestmem mtree: map=" + binary + ": not UTF-8 text: byte offset=1 is 0xc3\n",
                "mtree", binary.toString());
        assertFails(1, "guestmem import-qemu: dump=" + binary + ": not UTF-8 text: byte offset=1 is 0xc3\n",
                "import-qemu", binary.toString());
        assertFails(1, "guestmem mtree: map=" + dir + ": cannot read it: it is a directory\n", "mtree", dir.toString());
        assertFails(1, "guestmem mtree: map=no-such.json: cannot read it: no such file or directory\n",
                "mtree", "no-such.json");
        Path trailing = dir.resolve("trailing.json");
        Files.writeString(trailing, SMALL_MAP + "}");
        assertFails(1, "guestmem mtree: map=" + trailing + ": not valid JSON: text after the end of the map at line 6"
                + " column 1\n", "mtree", trailing.toString());
    }

    @Test
    void aBadPageSizeIsAUsageErrorNamingIt(@TempDir Path dir) throws IOException {
        Path map = dir.resolve("map.json");
        Files.writeString(map, SMALL_MAP);
        Result r = run("mtree", "--page-bits", "99", map.toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().startsWith("Invalid value for option '--page-bits': pageBits=99: supported page sizes are"),
                r.err());
    }

    @Test
    void importQemuBlamesTheOutputWhenTheOutputIsBad(@TempDir Path dir) throws IOException {
        Path dump = dir.resolve("dump.txt");
        Files.writeString(dump, "address-space: memory\n  0000000000000000-0000000000000fff (prio 0, ram): ram\n");
        Path bad = dir.resolve("no-such-dir").resolve("map.json");
        assertFails(1, "guestmem import-qemu: output=" + bad + ": cannot write it: no such file or directory\n",
                "import-qemu", "-o", bad.toString(), dump.toString());
        assertFails(1, "guestmem import-qemu: output=" + dir + ": cannot write it: it is a directory\n",
                "import-qemu", "-o", dir.toString(), dump.toString());
        Path out = dir.resolve("map.json");
        assertEquals(0, run("import-qemu", "-o", out.toString(), dump.toString()).exitCode());
        assertTrue(Files.readString(out).contains("\"format\" : \"guestmem-map/1\""));
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of("dump.txt", "map.json"), left.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no temporary file is left behind");
        }
    }

    private static void assertFails(int exitCode, String err, String... args) {
        Result r = run(args);
        assertEquals(exitCode, r.exitCode(), r.err());
        assertEquals(err, r.err());
        assertEquals("", r.out());
    }
}
