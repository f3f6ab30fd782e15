package dev.guestmem.bench.cli;

import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.results.BenchmarkResult;
import org.openjdk.jmh.results.RunResult;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.StringJoiner;

/**
 * The table {@code guestmem bench} prints after JMH's own: for each benchmark and parameter set, the score of each
 * fork (the mean of its measurement iterations, as JMH reports a fork), their median and range, and, given a
 * baseline benchmark, the median over the baseline's median measured in the same run with the same parameters. On a
 * machine where one fork of a row can be 1.5x another, the median of several forks and the ratio to a baseline run
 * beside it are the figures worth quoting; JMH's own "score ± error" pools every iteration of every fork.
 *
 * <p>Threading: stateless.
 */
final class ForkSummary {
    /**
     * One row: a benchmark (its method name) with one set of parameters, and the score of each of its forks.
     *
     * @param benchmark the method's name, without its class
     * @param params    the parameters in JMH's order, name to value
     * @param unit      the score's unit, e.g. {@code ns/op}
     * @param forks     each fork's score, in the order the forks ran
     */
    record Row(String benchmark, Map<String, String> params, String unit, double[] forks) {
        Row {
            params = Map.copyOf(params);
            forks = forks.clone();
            if (forks.length == 0) {
                throw new IllegalArgumentException("benchmark=" + benchmark + ": no fork");
            }
        }

        double median() {
            double[] s = forks.clone();
            Arrays.sort(s);
            int n = s.length;
            return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        }

        double min() {
            return Arrays.stream(forks).min().orElseThrow();
        }

        double max() {
            return Arrays.stream(forks).max().orElseThrow();
        }

        /** Whether this row was run with every parameter {@code other} has at the value {@code other} has. */
        boolean sharesParamsOf(Row other) {
            for (Map.Entry<String, String> p : other.params.entrySet()) {
                String mine = params.get(p.getKey());
                if (mine != null && !mine.equals(p.getValue())) {
                    return false;
                }
            }
            return true;
        }
    }

    private final List<Row> rows;
    private final List<String> paramOrder;

    ForkSummary(List<Row> rows, List<String> paramOrder) {
        this.rows = List.copyOf(rows);
        this.paramOrder = List.copyOf(paramOrder);
    }

    /** The rows of a JMH run, in the order it ran them. */
    static ForkSummary of(Collection<RunResult> results) {
        List<Row> rows = new ArrayList<>();
        List<String> order = new ArrayList<>();
        for (RunResult result : results) {
            BenchmarkParams params = result.getParams();
            Map<String, String> values = new LinkedHashMap<>();
            for (String key : params.getParamsKeys()) {
                values.put(key, params.getParam(key));
                if (!order.contains(key)) {
                    order.add(key);
                }
            }
            Collection<BenchmarkResult> forks = result.getBenchmarkResults();
            if (forks.isEmpty()) {
                continue;
            }
            double[] scores = forks.stream().mapToDouble(f -> f.getPrimaryResult().getScore()).toArray();
            String name = params.getBenchmark();
            rows.add(new Row(name.substring(name.lastIndexOf('.') + 1), values,
                    forks.iterator().next().getPrimaryResult().getScoreUnit(), scores));
        }
        return new ForkSummary(rows, order);
    }

    List<Row> rows() {
        return rows;
    }

    /**
     * The baseline of {@code row}: the row of benchmark {@code baseline} whose parameters {@code row} shares (see
     * {@link Row#sharesParamsOf}), or null when there is none.
     */
    Row baselineOf(Row row, String baseline) {
        for (Row b : rows) {
            if (b.benchmark.equals(baseline) && row.sharesParamsOf(b)) {
                return b;
            }
        }
        return null;
    }

    /**
     * The table in Markdown, or the empty string for no rows.
     *
     * @param baseline a benchmark's method name whose median divides the others', or null for no ratio column
     * @throws IllegalArgumentException when {@code baseline} names no row of the run
     */
    String table(String baseline) {
        if (rows.isEmpty()) {
            return "";
        }
        if (baseline != null && rows.stream().noneMatch(r -> r.benchmark.equals(baseline))) {
            throw new IllegalArgumentException("--baseline " + baseline + ": no benchmark of that name ran (ran: "
                    + String.join(", ", rows.stream().map(Row::benchmark).distinct().toList()) + ")");
        }
        StringBuilder out = new StringBuilder();
        out.append("Per fork: each fork's score (the mean of its measurement iterations), their median and range");
        if (baseline != null) {
            out.append("; x ").append(baseline).append(": the median over ").append(baseline)
                    .append("'s median with the same parameters, in this run");
        }
        out.append("\n\n");
        StringJoiner header = new StringJoiner(" | ", "| ", " |\n");
        header.add("benchmark");
        paramOrder.forEach(header::add);
        header.add("unit").add("forks").add("median").add("min").add("max");
        if (baseline != null) {
            header.add("x " + baseline);
        }
        out.append(header);
        StringJoiner rule = new StringJoiner(" | ", "| ", " |\n");
        rule.add("---");
        paramOrder.forEach(p -> rule.add("---"));
        rule.add("---").add("---").add("---:").add("---:").add("---:");
        if (baseline != null) {
            rule.add("---:");
        }
        out.append(rule);
        for (Row row : rows) {
            StringJoiner line = new StringJoiner(" | ", "| ", " |\n");
            line.add(row.benchmark);
            for (String p : paramOrder) {
                line.add(row.params.getOrDefault(p, ""));
            }
            line.add(row.unit);
            StringJoiner forks = new StringJoiner(" ");
            for (double f : row.forks) {
                forks.add(number(f));
            }
            line.add(forks.toString()).add(number(row.median())).add(number(row.min())).add(number(row.max()));
            if (baseline != null) {
                Row b = baselineOf(row, baseline);
                line.add(b == null ? "n/a" : String.format(Locale.ROOT, "%.2fx", row.median() / b.median()));
            }
            out.append(line);
        }
        return out.toString();
    }

    /** Three significant digits, at most three decimals; no grouping, so the table is easy to parse. */
    static String number(double v) {
        double a = Math.abs(v);
        int decimals = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
        return String.format(Locale.ROOT, "%." + decimals + "f", v);
    }
}
