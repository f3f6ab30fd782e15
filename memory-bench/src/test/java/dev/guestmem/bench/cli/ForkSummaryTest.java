package dev.guestmem.bench.cli;

import dev.guestmem.bench.cli.ForkSummary.Baseline;
import dev.guestmem.bench.cli.ForkSummary.Row;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The per-fork table of {@code guestmem bench}, from rows made by hand. */
class ForkSummaryTest {

    private static Map<String, String> params(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    private static final Row RAW_1M = new Row("rawLoad", params("workingSet", "1048576"), "ns/op",
            new double[] {0.6, 0.5, 0.7});
    private static final Row RAW_64M = new Row("rawLoad", params("workingSet", "67108864"), "ns/op",
            new double[] {5.0, 6.0});
    private static final Row TLB_1M = new Row("hostTlbLoad", params("workingSet", "1048576", "tlbEntries", "1024"),
            "ns/op", new double[] {2.2, 3.3, 2.0, 2.4});
    private static final Row TLB_64M = new Row("hostTlbLoad", params("workingSet", "67108864", "tlbEntries", "1024"),
            "ns/op", new double[] {30.5});
    private static final ForkSummary SUMMARY = new ForkSummary(List.of(RAW_1M, RAW_64M, TLB_1M, TLB_64M),
            List.of("workingSet", "tlbEntries"));

    @Test
    void medianIsTheMiddleForkOrTheMeanOfTheTwoMiddleOnes() {
        assertEquals(0.6, RAW_1M.median(), 1e-12);
        assertEquals(5.5, RAW_64M.median(), 1e-12);
        assertEquals(2.3, TLB_1M.median(), 1e-12);
        assertEquals(2.0, TLB_1M.min(), 0);
        assertEquals(3.3, TLB_1M.max(), 0);
    }

    @Test
    void theBaselineIsTheRowWithTheSameValuesOfItsOwnParameters() {
        assertSame(RAW_1M, SUMMARY.baselineOf(TLB_1M, Baseline.parse("rawLoad")));
        assertSame(RAW_64M, SUMMARY.baselineOf(TLB_64M, Baseline.parse("rawLoad")));
        assertSame(RAW_64M, SUMMARY.baselineOf(RAW_64M, Baseline.parse("rawLoad")));
        // A baseline's parameter that the row lacks does not separate them; one the row has at another value does.
        assertSame(TLB_1M, SUMMARY.baselineOf(RAW_1M, Baseline.parse("hostTlbLoad")));
        assertNull(SUMMARY.baselineOf(RAW_1M, Baseline.parse("limitLoad")));
    }

    @Test
    void aBaselineMayFixParametersAndBeEachRowsOwnBenchmark() {
        Baseline small = Baseline.parse("*:workingSet=1048576");
        assertSame(RAW_1M, SUMMARY.baselineOf(RAW_64M, small));
        assertSame(TLB_1M, SUMMARY.baselineOf(TLB_64M, small));
        assertSame(TLB_1M, SUMMARY.baselineOf(TLB_1M, small));
        assertSame(RAW_1M, SUMMARY.baselineOf(TLB_64M, Baseline.parse("rawLoad:workingSet=1048576")));
        // A fixed parameter the baseline does not have, or a value nothing ran with: no baseline.
        assertNull(SUMMARY.baselineOf(TLB_1M, Baseline.parse("rawLoad:tlbEntries=1024")));
        assertNull(SUMMARY.baselineOf(TLB_1M, Baseline.parse("*:workingSet=4096")));
        String table = SUMMARY.table(List.of(Baseline.parse("*:workingSet=1048576"), Baseline.parse("rawLoad")));
        assertTrue(table.contains("| max | x *:workingSet=1048576 | x rawLoad |\n"), table);
        assertTrue(table.contains("| hostTlbLoad | 67108864 | 1024 | ns/op | 30.5 | 30.5 | 30.5 | 30.5 | 13.26x | "
                + "5.55x |\n"), table);
        assertTrue(table.contains("| rawLoad | 67108864 |  | ns/op | 5.00 6.00 | 5.50 | 5.00 | 6.00 | 9.17x | 1.00x |\n"),
                table);
    }

    @Test
    void aBaselineSpecThatIsNotOneIsRefusedByName() {
        for (String bad : new String[] {"", ":x=1", "limitLoad:", "limitLoad:x", "limitLoad:x=", "limitLoad:=1",
                "limitLoad:x=1,x=2", "limit.Load"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Baseline.parse(bad));
            assertEquals("--baseline " + bad + ": not NAME or NAME:param=value,... (e.g. limitLoad, *:clients=0)",
                    e.getMessage());
        }
        assertEquals(Map.of("clients", "0", "fence", "membarrier"),
                Baseline.parse("*:clients=0,fence=membarrier").fixed());
    }

    @Test
    void tableGivesEveryForkTheMedianTheRangeAndTheRatio() {
        String table = SUMMARY.table(List.of(Baseline.parse("rawLoad")));
        assertEquals("""
                Per fork: each fork's score (the mean of its measurement iterations), their median and range; \
                x BASELINE: the median over the baseline's median with the same parameters, in this run

                | benchmark | workingSet | tlbEntries | unit | forks | median | min | max | x rawLoad |
                | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |
                | rawLoad | 1048576 |  | ns/op | 0.600 0.500 0.700 | 0.600 | 0.500 | 0.700 | 1.00x |
                | rawLoad | 67108864 |  | ns/op | 5.00 6.00 | 5.50 | 5.00 | 6.00 | 1.00x |
                | hostTlbLoad | 1048576 | 1024 | ns/op | 2.20 3.30 2.00 2.40 | 2.30 | 2.00 | 3.30 | 3.83x |
                | hostTlbLoad | 67108864 | 1024 | ns/op | 30.5 | 30.5 | 30.5 | 30.5 | 5.55x |
                """, table);
        String plain = SUMMARY.table(List.of());
        assertTrue(plain.startsWith("Per fork: each fork's score (the mean of its measurement iterations), their "
                + "median and range\n\n| benchmark | workingSet | tlbEntries | unit | forks | median | min | max |\n"),
                plain);
        assertEquals("", new ForkSummary(List.of(), List.of()).table(List.of(Baseline.parse("rawLoad"))));
    }

    @Test
    void aBaselineThatDidNotRunIsNamedInTheError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SUMMARY.table(List.of(Baseline.parse("limitLoad"))));
        assertEquals("--baseline limitLoad: no such benchmark ran (ran: rawLoad, hostTlbLoad)", e.getMessage());
        IllegalArgumentException fixed = assertThrows(IllegalArgumentException.class,
                () -> SUMMARY.table(List.of(Baseline.parse("*:workingSet=4096"))));
        assertEquals("--baseline *:workingSet=4096: no such benchmark ran (ran: rawLoad, hostTlbLoad, with parameters "
                + "workingSet, tlbEntries)", fixed.getMessage());
    }

    @Test
    void aRowWithoutForksIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new Row("x", Map.of(), "ns/op", new double[0]));
    }
}
