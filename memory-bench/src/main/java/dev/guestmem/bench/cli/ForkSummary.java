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
 * fork (the mean of its measurement iterations, as JMH reports a fork), their median and range, and, for each
 * baseline given ({@link Baseline}), the median over the baseline's median measured in the same run. On a
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
    }

    /**
     * What a ratio column divides by: {@code NAME} or {@code NAME:param=value,...}. The baseline of a row is the row
     * of benchmark {@code NAME} ({@code *}: the row's own benchmark) with those parameters at those values and, of
     * its other parameters, those the row has at the row's values.
     *
     * @param text      the spec as given, the column's title
     * @param benchmark the benchmark's method name, or {@code *}
     * @param fixed     the parameters the spec sets
     */
    record Baseline(String text, String benchmark, Map<String, String> fixed) {
        Baseline {
            fixed = Map.copyOf(fixed);
        }

        /**
         * @throws IllegalArgumentException naming {@code spec} when it is not {@code NAME[:param=value[,...]]}
         */
        static Baseline parse(String spec) {
            int colon = spec.indexOf(':');
            String name = colon < 0 ? spec : spec.substring(0, colon);
            if (name.isEmpty() || !(name.equals("*") || name.chars().allMatch(Character::isJavaIdentifierPart))) {
                throw malformed(spec);
            }
            Map<String, String> fixed = new LinkedHashMap<>();
            if (colon >= 0) {
                for (String kv : spec.substring(colon + 1).split(",", -1)) {
                    int eq = kv.indexOf('=');
                    if (eq <= 0 || eq == kv.length() - 1
                            || fixed.put(kv.substring(0, eq), kv.substring(eq + 1)) != null) {
                        throw malformed(spec);
                    }
                }
            }
            return new Baseline(spec, name, fixed);
        }

        private static IllegalArgumentException malformed(String spec) {
            return new IllegalArgumentException("--baseline " + spec
                    + ": not NAME or NAME:param=value,... (e.g. limitLoad, *:clients=0)");
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

    /** The baseline of {@code row} under {@code spec} (see {@link Baseline}), or null when there is none. */
    Row baselineOf(Row row, Baseline spec) {
        String name = spec.benchmark.equals("*") ? row.benchmark : spec.benchmark;
        for (Row b : rows) {
            if (b.benchmark.equals(name) && matches(b, row, spec.fixed)) {
                return b;
            }
        }
        return null;
    }

    private static boolean matches(Row b, Row row, Map<String, String> fixed) {
        for (Map.Entry<String, String> p : b.params.entrySet()) {
            String want = fixed.containsKey(p.getKey()) ? fixed.get(p.getKey()) : row.params.get(p.getKey());
            if (want != null && !want.equals(p.getValue())) {
                return false;
            }
        }
        return b.params.keySet().containsAll(fixed.keySet());
    }

    /**
     * The table in Markdown, or the empty string for no rows.
     *
     * @param baselines a ratio column for each: the row's median over its baseline's median ("n/a" for a row without
     *                  one)
     * @throws IllegalArgumentException when a baseline is the baseline of no row of the run
     */
    String table(List<Baseline> baselines) {
        if (rows.isEmpty()) {
            return "";
        }
        for (Baseline b : baselines) {
            if (rows.stream().noneMatch(r -> baselineOf(r, b) != null)) {
                throw new IllegalArgumentException("--baseline " + b.text + ": no such benchmark ran (ran: "
                        + String.join(", ", rows.stream().map(Row::benchmark).distinct().toList())
                        + (b.fixed.isEmpty() ? "" : ", with parameters " + String.join(", ", paramOrder)) + ")");
            }
        }
        StringBuilder out = new StringBuilder();
        out.append("Per fork: each fork's score (the mean of its measurement iterations), their median and range");
        if (!baselines.isEmpty()) {
            out.append("; x BASELINE: the median over the baseline's median with the same parameters, in this run");
        }
        out.append("\n\n");
        StringJoiner header = new StringJoiner(" | ", "| ", " |\n");
        header.add("benchmark");
        paramOrder.forEach(header::add);
        header.add("unit").add("forks").add("median").add("min").add("max");
        baselines.forEach(b -> header.add("x " + b.text));
        out.append(header);
        StringJoiner rule = new StringJoiner(" | ", "| ", " |\n");
        rule.add("---");
        paramOrder.forEach(p -> rule.add("---"));
        rule.add("---").add("---").add("---:").add("---:").add("---:");
        baselines.forEach(b -> rule.add("---:"));
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
            for (Baseline spec : baselines) {
                Row b = baselineOf(row, spec);
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
