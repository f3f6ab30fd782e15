package dev.guestmem.bench.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
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
}
