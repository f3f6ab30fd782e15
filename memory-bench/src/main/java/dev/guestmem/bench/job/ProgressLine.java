package dev.guestmem.bench.job;

import java.io.PrintStream;
import java.util.Locale;

/**
 * The main job's live progress line (elapsed time, guest instructions per second, migration round). On a terminal it
 * is one line redrawn in place with a carriage return; anywhere else (a log file, a pipe, a CI console) a carriage
 * return would pile every redraw into one line, so it is a new line once per second of the run instead.
 *
 * <p>Threading: {@link #update} from the sampling thread, {@link #finish} once that thread has ended.
 */
public final class ProgressLine {
    private final PrintStream out;
    private final boolean terminal;
    /** Whole seconds of the last line written when not on a terminal; -1 before the first. */
    private long lastSecond = -1;
    private boolean drawn;

    /**
     * @param out      where the line goes
     * @param terminal whether {@code out} is a terminal (redraw in place) or not (a line per second)
     */
    public ProgressLine(PrintStream out, boolean terminal) {
        this.out = out;
        this.terminal = terminal;
    }

    /** A line for {@code out}, redrawn when this process runs on a terminal ({@link System#console()}). */
    public static ProgressLine of(PrintStream out) {
        java.io.Console console = System.console();
        return new ProgressLine(out, console != null && console.isTerminal());
    }

    /** The state at {@code elapsedSeconds} since the start. */
    void update(double elapsedSeconds, double mips, String migration) {
        String line = String.format(Locale.ROOT, "%6.1f s  %8.1f M guest instructions/s  migration: %-10s",
                elapsedSeconds, mips, migration);
        if (terminal) {
            out.print("\r" + line);
            drawn = true;
        } else {
            long second = (long) elapsedSeconds;
            if (second == lastSecond) {
                return;
            }
            lastSecond = second;
            out.println(line.stripTrailing());
        }
        out.flush();
    }

    /** Ends a line redrawn in place, so that what follows starts on a line of its own. */
    void finish() {
        if (terminal && drawn) {
            out.println();
            out.flush();
        }
    }
}
