package dev.guestmem.bench.peers;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The one table of the peer comparison, as Markdown: for each row (raw segment, guestmem's address space and soft
 * TLB, Unicorn, vm-memory) and each column (8-byte read and write, 4 KiB read and write, 8-byte write with dirty
 * logging on), nanoseconds per access for 1 / 100 / 1,000 regions, and under it the row's ratio to raw and to
 * vm-memory. A row whose peer could not be had says so in its cells, with the reason in a note under the table.
 *
 * <p>Threading: filled and rendered by one thread.
 */
final class PeersTable {
    /** The region counts of the pattern, in column order within a cell. */
    static final List<Integer> REGIONS = List.of(1, 100, 1000);

    /** A column: the JMH method suffix and the harness's op name. */
    enum Column {
        READ8("8-byte read", "Read8", "read8"),
        WRITE8("8-byte write", "Write8", "write8"),
        READ4K("4 KiB read", "Read4k", "read4k"),
        WRITE4K("4 KiB write", "Write4k", "write4k"),
        WRITE8_DIRTY("8-byte write, dirty logging on", "Write8Dirty", "write8-dirty");

        final String title;
        final String jmhSuffix;
        final String harnessOp;

        Column(String title, String jmhSuffix, String harnessOp) {
            this.title = title;
            this.jmhSuffix = jmhSuffix;
            this.harnessOp = harnessOp;
        }

        /** The column of JMH method suffix or harness op {@code name}, or null. */
        static Column of(String name) {
            for (Column c : values()) {
                if (c.jmhSuffix.equals(name) || c.harnessOp.equals(name)) {
                    return c;
                }
            }
            return null;
        }
    }

    /** A row: its label and the JMH method prefix (none for vm-memory, which the harness measures). */
    enum Row {
        RAW("raw `MemorySegment` (the limit)", "raw"),
        ADDRESS_SPACE("guestmem `AddressSpace`", "addressSpace"),
        SOFT_TLB("guestmem `SoftTlb`", "softTlb"),
        UNICORN("Unicorn `uc_mem_read`/`uc_mem_write`", "unicorn"),
        VM_MEMORY("vm-memory `read_obj`/`write_obj`, `read_slice`/`write_slice`", null);

        final String label;
        final String jmhPrefix;

        Row(String label, String jmhPrefix) {
            this.label = label;
            this.jmhPrefix = jmhPrefix;
        }
    }

    private final Map<Row, Map<Column, double[]>> ns = new EnumMap<>(Row.class);
    private final Map<Row, String> labels = new EnumMap<>(Row.class);
    private final Map<Row, String> unavailable = new EnumMap<>(Row.class);
    private final List<String> notes = new ArrayList<>();

    PeersTable() {
        for (Row row : Row.values()) {
            Map<Column, double[]> cells = new EnumMap<>(Column.class);
            for (Column c : Column.values()) {
                double[] v = new double[REGIONS.size()];
                Arrays.fill(v, Double.NaN);
                cells.put(c, v);
            }
            ns.put(row, cells);
            labels.put(row, row.label);
        }
    }

    /**
     * Records {@code nanos} per access of {@code row} in {@code column} for {@code regions} regions, or for every
     * region count when {@code regions} is null (the raw baseline, which has no regions).
     *
     * @throws IllegalArgumentException for a region count that is not a column
     */
    void put(Row row, Column column, Integer regions, double nanos) {
        double[] cell = ns.get(row).get(column);
        if (regions == null) {
            Arrays.fill(cell, nanos);
            return;
        }
        int i = REGIONS.indexOf(regions);
        if (i < 0) {
            throw new IllegalArgumentException("regions=" + regions + ": the table has " + REGIONS);
        }
        cell[i] = nanos;
    }

    /** Replaces {@code row}'s label (to add a version or a hit rate). */
    void label(Row row, String label) {
        labels.put(row, label);
    }

    /** Marks {@code row} as not measured: its cells say {@code n/a}, and {@code reason} becomes a note. */
    void unavailable(Row row, String reason) {
        unavailable.put(row, reason);
    }

    /** Adds a line under the table. */
    void note(String line) {
        notes.add(line);
    }

    /** The measured value, or NaN. */
    double get(Row row, Column column, int regionIndex) {
        return ns.get(row).get(column)[regionIndex];
    }

    /** The table and its notes, Markdown, lines ending in {@code \n}. */
    String render() {
        StringBuilder out = new StringBuilder();
        out.append("ns per access for 1 / 100 / 1,000 regions (64 MiB of RAM in all)\n\n");
        out.append("| | |");
        for (Column c : Column.values()) {
            out.append(' ').append(c.title).append(" |");
        }
        out.append("\n| --- | --- |");
        out.append(" ---: |".repeat(Column.values().length)).append('\n');
        for (Row row : Row.values()) {
            renderRow(out, row);
        }
        out.append('\n');
        out.append("(any): raw access does not depend on the regions. no log: there is nothing to log. "
                + "*: Unicorn keeps no dirty log; its plain write.\n");
        for (Row row : Row.values()) {
            String reason = unavailable.get(row);
            if (reason != null) {
                out.append(row.label).append(" not measured: ").append(reason).append('\n');
            }
        }
        for (String note : notes) {
            out.append(note).append('\n');
        }
        return out.toString();
    }

    private void renderRow(StringBuilder out, Row row) {
        String reason = unavailable.get(row);
        out.append("| ").append(labels.get(row)).append(" | ns |");
        for (Column c : Column.values()) {
            out.append(' ').append(reason != null ? "n/a" : cell(row, c, null)).append(" |");
        }
        out.append('\n');
        if (reason != null) {
            return;
        }
        for (Row base : new Row[] {Row.RAW, Row.VM_MEMORY}) {
            if (base == row || unavailable.containsKey(base)) {
                continue;
            }
            out.append("| | x ").append(base == Row.RAW ? "raw" : "vm-memory").append(" |");
            for (Column c : Column.values()) {
                out.append(' ').append(cell(row, c, base)).append(" |");
            }
            out.append('\n');
        }
    }

    /** One cell: nanoseconds when {@code base} is null, else the ratio to {@code base}'s figure in the column. */
    private String cell(Row row, Column column, Row base) {
        Column own = column;
        String mark = "";
        if (column == Column.WRITE8_DIRTY && row == Row.RAW) {
            return "no log";
        }
        if (column == Column.WRITE8_DIRTY && row == Row.UNICORN) {
            own = Column.WRITE8;
            mark = " *";
        }
        if ((column == Column.READ4K || column == Column.WRITE4K) && row == Row.SOFT_TLB) {
            return "no bulk API";
        }
        double[] v = ns.get(row).get(own);
        // A logged store's limit is the raw store: raw memory has nothing to log.
        Column baseColumn = base == Row.RAW && column == Column.WRITE8_DIRTY ? Column.WRITE8 : column;
        double[] b = base == null ? null : ns.get(base).get(baseColumn);
        if (base == null && row == Row.RAW) {
            return Double.isNaN(v[0]) ? "-" : nanos(v[0]) + " (any)";
        }
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < v.length; i++) {
            if (base == null) {
                parts.add(Double.isNaN(v[i]) ? "-" : nanos(v[i]));
            } else {
                parts.add(Double.isNaN(v[i]) || Double.isNaN(b[i]) ? "-" : ratio(v[i] / b[i]));
            }
        }
        return String.join(" / ", parts) + mark;
    }

    /** Nanoseconds: one decimal under 10, whole numbers above. */
    static String nanos(double v) {
        return v < 10 ? String.format(Locale.ROOT, "%.1f", v) : String.format(Locale.ROOT, "%.0f", v);
    }

    /** A ratio: two decimals under 10, one under 100, whole numbers above. */
    static String ratio(double v) {
        if (v < 10) {
            return String.format(Locale.ROOT, "%.2f", v);
        }
        return v < 100 ? String.format(Locale.ROOT, "%.1f", v) : String.format(Locale.ROOT, "%.0f", v);
    }
}
