package dev.guestmem.bench.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
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
    void runPrintsTheTreeThenTheFlatViews() {
        Result r = run("run");
        assertEquals(0, r.exitCode(), r.err());
        String out = r.out();
        assertTrue(out.startsWith("address-space: memory\n"
                + "  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n"), out);
        assertTrue(out.contains("      00000000000e0000-00000000000fffff (prio 1, rom): alias isa-bios @pc.bios "
                + "0000000000020000-000000000003ffff\n"), out);
        assertTrue(out.contains("address-space: I/O\n"), out);
        int flat = out.indexOf("FlatView #0\n AS \"memory\", root: system\n Root memory region: system\n"
                + "  0000000000000000-000000000009ffff (prio 0, ram): pc.ram\n");
        assertTrue(flat > out.indexOf("address-space: I/O"), out);
        assertTrue(out.contains("FlatView #1\n AS \"I/O\", root: io\n"), out);
        assertTrue(out.endsWith("  00000000000003f8-00000000000003ff (prio 0, i/o): serial\n\n"), out);
    }

    @Test
    void helpListsEveryCommand() {
        Result r = run("--help");
        assertEquals(0, r.exitCode());
        for (String command : new String[] {"run", "mtree", "import-qemu", "bench"}) {
            assertTrue(r.out().contains("  " + command + " "), r.out());
        }
    }

    @Test
    void mapCommandsFailCleanlyOnAMissingFile() {
        assertEquals(1, run("mtree", "no-such-map.json").exitCode());
        assertEquals(1, run("import-qemu", "no-such-dump.txt").exitCode());
    }

    @Test
    void unknownCommandIsAUsageError() {
        assertEquals(2, run("frobnicate").exitCode());
    }
}
