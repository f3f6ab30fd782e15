package dev.guestmem.bench.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The progress line: redrawn in place on a terminal, a line per second of the run in a log. */
class ProgressLineTest {
    private static String drive(boolean terminal) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ProgressLine line = new ProgressLine(new PrintStream(bytes, true, StandardCharsets.UTF_8), terminal);
        // Four samples a second, as the job takes them, for 2.5 s.
        for (int i = 1; i <= 10; i++) {
            line.update(i * 0.25, 10.0 + i, i < 6 ? "round " + (i / 2 + 1) : "done");
        }
        line.finish();
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void aLogGetsOneWholeLinePerSecondAndNoCarriageReturns() {
        String log = drive(false);
        assertFalse(log.contains("\r"), log);
        String[] lines = log.split("\n");
        assertEquals(3, lines.length, log); // seconds 0, 1 and 2
        assertTrue(lines[0].startsWith("   0.3 s      11.0 M guest instructions/s  migration: round 1"), lines[0]);
        assertTrue(lines[1].startsWith("   1.0 s      14.0 M guest instructions/s  migration: round 3"), lines[1]);
        assertTrue(lines[2].startsWith("   2.0 s      18.0 M guest instructions/s  migration: done"), lines[2]);
        assertEquals(lines[2], lines[2].stripTrailing());
    }

    @Test
    void aTerminalGetsEverySampleRedrawnInPlaceThenOneNewLine() {
        String tty = drive(true);
        assertEquals(10, tty.chars().filter(c -> c == '\r').count());
        assertTrue(tty.endsWith("migration: done      \n"), tty);
        assertEquals(1, tty.chars().filter(c -> c == '\n').count());
    }
}
