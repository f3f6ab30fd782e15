package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.GuestProgram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramIterationValue;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.labels.StandardCategoryItemLabelGenerator;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.Plot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.category.CategoryItemRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The main job's report: {@code index.html} with the summary table and plots made by JFreeChart (PNG files beside
 * it): latency distributions, MIPS over time, dirty pages per migration round, commit latency over time, the display's
 * dirty pages per refresh, and the framebuffer's last frame (the guest's own pixels). Rendered headless.
 *
 * <p>Threading: one thread, after the job.
 */
public final class JobReport {
    private static final int WIDTH = 900;
    private static final int HEIGHT = 450;

    private JobReport() {
    }

    /** Writes the report into {@code dir} (created if missing); returns the HTML page's path. */
    public static Path write(JobResult result, Path dir) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Files.createDirectories(dir);
        List<String> sections = new ArrayList<>();
        save(latencyChart(result), dir, "latency.png");
        sections.add(figure("latency.png", "Latency distributions (1 vCPU access in " + CountingGuestMemory.SAMPLE_EVERY
                + " timed, clock reads included; every commit of the device thread)"));
        save(mipsChart(result), dir, "mips.png");
        sections.add(figure("mips.png", "Guest instructions per second, per vCPU, every "
                + MainJob.SAMPLE_MILLIS + " ms"));
        if (result.migration().ran()) {
            save(migrationChart(result), dir, "migration.png");
            sections.add(figure("migration.png", "Pages sent per migration round (the last with the vCPUs paused)"));
        } else {
            sections.add("<p>No migration ran: " + escape(result.migration().why()) + ".</p>");
        }
        save(commitChart(result), dir, "commits.png");
        sections.add(figure("commits.png", "Commit latency of the device thread's map changes over time"));
        save(displayChart(result), dir, "display.png");
        sections.add(figure("display.png", "Dirty framebuffer pages per VGA snapshot (" + Display.HZ + " Hz)"));
        int[] frame = result.display().lastFrame();
        if (frame != null) {
            BufferedImage image = new BufferedImage(GuestProgram.FB_WIDTH, GuestProgram.FB_HEIGHT,
                    BufferedImage.TYPE_INT_RGB);
            image.setRGB(0, 0, GuestProgram.FB_WIDTH, GuestProgram.FB_HEIGHT, frame, 0, GuestProgram.FB_WIDTH);
            ImageIO.write(image, "png", dir.resolve("frame.png").toFile());
            sections.add("<figure><img src=\"frame.png\" width=\"640\" style=\"image-rendering: pixelated\">"
                    + "<figcaption>The framebuffer's last frame (320x240), as the display took it</figcaption>"
                    + "</figure>");
        }
        StringWriter summary = new StringWriter();
        result.printSummary(new PrintWriter(summary));
        String html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>guestmem main job</title>"
                + "<style>body{font-family:sans-serif;max-width:960px;margin:auto}pre{background:#f4f4f4;"
                + "padding:1em;overflow-x:auto}figure{margin:2em 0}</style></head><body>\n"
                + "<h1>guestmem main job: " + (result.passed() ? "PASS" : "FAIL") + "</h1>\n<pre>"
                + escape(summary.toString()) + "</pre>\n" + String.join("\n", sections) + "\n</body></html>\n";
        Path page = dir.resolve("index.html");
        Files.writeString(page, html, StandardCharsets.UTF_8);
        return page;
    }

    private static String figure(String png, String caption) {
        return "<figure><img src=\"" + png + "\" width=\"" + WIDTH + "\"><figcaption>" + escape(caption)
                + "</figcaption></figure>";
    }

    private static void save(JFreeChart chart, Path dir, String name) throws IOException {
        chart.setBackgroundPaint(Color.WHITE);
        Plot plot = chart.getPlot();
        plot.setBackgroundPaint(Color.WHITE);
        if (plot instanceof XYPlot xy) {
            xy.setDomainGridlinePaint(Color.LIGHT_GRAY);
            xy.setRangeGridlinePaint(Color.LIGHT_GRAY);
        } else if (plot instanceof CategoryPlot category) {
            category.setRangeGridlinePaint(Color.LIGHT_GRAY);
        }
        ChartUtils.saveChartAsPNG(dir.resolve(name).toFile(), chart, WIDTH, HEIGHT);
    }

    /** A base-10 logarithmic axis with a tick at each power of ten, labelled in plain numbers (1, 10, 100). */
    private static LogAxis logAxis(String label, double smallest) {
        LogAxis axis = new LogAxis(label);
        axis.setBase(10);
        axis.setSmallestValue(smallest);
        axis.setTickUnit(new NumberTickUnit(1));
        axis.setNumberFormatOverride(new DecimalFormat("#,##0.###", DecimalFormatSymbols.getInstance(Locale.ROOT)));
        return axis;
    }

    /** Percent of samples per logarithmic latency bucket, one line per histogram, on a logarithmic ns axis. */
    private static JFreeChart latencyChart(JobResult result) {
        XYSeriesCollection data = new XYSeriesCollection();
        addDistribution(data, "slow-path accesses", result.merged(true));
        addDistribution(data, "TLB hits", result.merged(false));
        addDistribution(data, "commits", result.devices().commitNanos());
        if (result.disk() != null) {
            addDistribution(data, "vhost-user disk reads", result.disk().latency());
        }
        JFreeChart chart = ChartFactory.createXYLineChart("Latency distributions", "latency (ns, log scale)",
                "% of samples", data, PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        plot.setDomainAxis(logAxis("latency (ns, log scale)", 1));
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true);
        plot.setRenderer(renderer);
        return chart;
    }

    private static void addDistribution(XYSeriesCollection data, String name, Histogram h) {
        long total = h.getTotalCount();
        if (total == 0) {
            return;
        }
        XYSeries series = new XYSeries(name + " (" + total + ")", false);
        for (HistogramIterationValue v : h.logarithmicBucketValues(Math.max(1, h.getMinNonZeroValue()), 1.5)) {
            if (v.getCountAddedInThisIterationStep() > 0) {
                series.add(Math.max(1, v.getValueIteratedTo()), 100.0 * v.getCountAddedInThisIterationStep() / total);
            }
        }
        data.addSeries(series);
    }

    private static JFreeChart mipsChart(JobResult result) {
        XYSeriesCollection data = new XYSeriesCollection();
        int n = result.vcpus().size();
        XYSeries total = new XYSeries("all vCPUs");
        for (int i = 0; i < n; i++) {
            XYSeries s = new XYSeries("vCPU " + i);
            for (MainJob.Sample sample : result.timeline()) {
                s.add(sample.atMillis() / 1e3, sample.mips()[i]);
            }
            data.addSeries(s);
        }
        for (MainJob.Sample sample : result.timeline()) {
            double sum = 0;
            for (double m : sample.mips()) {
                sum += m;
            }
            total.add(sample.atMillis() / 1e3, sum);
        }
        data.addSeries(total);
        return ChartFactory.createXYLineChart("Guest instructions per second", "time (s)",
                "million guest instructions / s", data, PlotOrientation.VERTICAL, true, false, false);
    }

    private static JFreeChart migrationChart(JobResult result) {
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        List<Long> pages = result.migration().pagesPerRound();
        for (int i = 0; i < pages.size(); i++) {
            String round = (i + 1) + (i == pages.size() - 1 ? " (paused)" : "");
            data.addValue(pages.get(i), "pages (4 KiB)", round);
        }
        JFreeChart chart = ChartFactory.createBarChart("Pages sent per migration round", "round", "pages (4 KiB)",
                data, PlotOrientation.VERTICAL, false, false, false);
        // The later rounds are a few pages against a whole RAM: their bars are too short to read, their labels not.
        CategoryItemRenderer renderer = chart.getCategoryPlot().getRenderer();
        renderer.setDefaultItemLabelGenerator(new StandardCategoryItemLabelGenerator());
        renderer.setDefaultItemLabelsVisible(true);
        return chart;
    }

    private static JFreeChart commitChart(JobResult result) {
        XYSeriesCollection data = new XYSeriesCollection();
        List<DeviceThread.Commit> commits = result.devices().commits();
        for (String kind : List.of("bar move", "bar", "romd", "ram")) {
            XYSeries s = new XYSeries(switch (kind) {
                case "bar move" -> "BAR move";
                case "bar" -> "BAR enable/disable";
                case "romd" -> "flash romd on/off";
                default -> "RAM hot-add/remove";
            });
            for (DeviceThread.Commit c : commits) {
                boolean match = kind.equals("bar") ? c.change().startsWith("bar ") && !c.change().equals("bar move")
                        : c.change().startsWith(kind);
                if (match) {
                    s.add(c.atMillis() / 1e3, c.nanos() / 1e3);
                }
            }
            data.addSeries(s);
        }
        JFreeChart chart = ChartFactory.createScatterPlot("Commit latency over time", "time (s)",
                "commit latency (us, log scale)", data, PlotOrientation.VERTICAL, true, false, false);
        chart.getXYPlot().setRangeAxis(logAxis("commit latency (us, log scale)", 0.1));
        return chart;
    }

    private static JFreeChart displayChart(JobResult result) {
        XYSeries s = new XYSeries("dirty pages");
        for (Display.Refresh r : result.display().refreshes()) {
            s.add(r.atMillis() / 1e3, r.dirtyPages());
        }
        return ChartFactory.createXYLineChart("Dirty framebuffer pages per VGA snapshot", "time (s)",
                "dirty pages (4 KiB) of " + result.display().pages(),
                new XYSeriesCollection(s), PlotOrientation.VERTICAL, false, false, false);
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }

    /**
     * The default report directory: {@code guestmem-run} in the build directory the launcher names (system property
     * {@code guestmem.target}, memory-bench's {@code target}), else in {@code target} under the working directory.
     * Each run replaces the files of the last.
     */
    public static Path defaultDirectory() {
        return Path.of(System.getProperty("guestmem.target", "target"), "guestmem-run");
    }
}
