package dev.guestmem.memory.map;

import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.mtree.MtreePrinter;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Loading, printing and saving a large flat map cost in proportion to its regions: what the thread allocates to
 * read 100,000 regions from a stream, print {@code info mtree} and {@code info mtree -f} and save the map is at most
 * {@value #MAX_RATIO} times what 50,000 take (a step that is quadratic in the regions, such as trying every
 * {@code #n} suffix of a name from the start, makes it 4), and below {@value #MAX_BYTES_PER_REGION} bytes per region.
 * Allocation, not time: it does not depend on the machine's load. The regions of the I/O half share one name, so
 * the saved ids are {@code uart#2} to {@code uart#50000}.
 *
 * <p>The million-region run, through the command line in a JVM of 2 GiB, is {@code MapScaleSoakTest} in
 * memory-bench.
 */
class MapScaleTest {
    static final double MAX_RATIO = 2.4;
    static final long MAX_BYTES_PER_REGION = 6_000;

    @Test
    void twiceTheRegionsCostTwiceTheAllocation() {
        work(10_000); // class loading and the first compilations
        long half = work(50_000);
        long full = work(100_000);
        double ratio = (double) full / half;
        System.out.printf("MapScaleTest: %,d bytes allocated for 50,000 regions, %,d for 100,000 (%.2f times)%n",
                half, full, ratio);
        assertTrue(ratio < MAX_RATIO, "allocated " + half + " bytes for 50,000 regions and " + full
                + " for 100,000: " + ratio + " times");
        assertTrue(full / 100_000 < MAX_BYTES_PER_REGION, (full / 100_000) + " bytes per region");
    }

    /** The saved map loads back to the same flat view, and the view has every region. */
    @Test
    void aLargeMapSavesAndLoadsBack() {
        int n = 20_000;
        MemorySystem system = read(flatMap(n));
        FlatView v = system.addressSpaces().get(0).flatView();
        assertEquals(n, v.rangeCount());
        assertEquals("uart", v.range(n - 1).region().name());
        String saved = MachineMap.write(system);
        assertTrue(saved.contains("\"uart#" + (n / 2) + "\" : {"), "the last I/O region's id");
        assertEquals(MtreePrinter.flatViews(system), MtreePrinter.flatViews(read(saved)));
    }

    /** Bytes this thread allocated to read, print and save a map of {@code n} regions. */
    private static long work(int n) {
        byte[] json = flatMap(n).getBytes(StandardCharsets.UTF_8);
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = threads.getCurrentThreadAllocatedBytes();
        MemorySystem system;
        try {
            system = MachineMap.read(new ByteArrayInputStream(json), MemorySystem.LAYOUT_ONLY,
                    MachineMap.UNIMPLEMENTED_DEVICES, MemorySystem.DEFAULT_PAGE_BITS).system();
            MtreePrinter.flatViews(system, false, Writer.nullWriter());
            MachineMap.write(system, Writer.nullWriter());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int lines = MtreePrinter.mtree(system, false).split("\n", -1).length;
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertEquals(n + 4, lines, "address-space, the root, n regions, a blank line and the end");
        return allocated;
    }

    private static MemorySystem read(String json) {
        return MachineMap.parse(json, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES).system();
    }

    /**
     * A 2^64 container holding {@code n} regions of 4 KiB side by side, RAM and I/O alternately; every I/O region is
     * named {@code uart}.
     */
    static String flatMap(int n) {
        StringWriter w = new StringWriter(130 * n);
        w.append("{ \"format\": \"guestmem-map/1\", \"regions\": {\n \"sys\": { \"name\": \"system\", \"kind\": "
                + "\"container\", \"size\": \"0x10000000000000000\", \"subregions\": [");
        for (int i = 0; i < n; i++) {
            w.append(i == 0 ? "\n" : ",\n").append("  { \"region\": \"r").append(Integer.toString(i))
                    .append("\", \"addr\": \"0x").append(Long.toHexString((long) i << 12)).append("\" }");
        }
        w.append(" ] }");
        for (int i = 0; i < n; i++) {
            w.append(",\n \"r").append(Integer.toString(i)).append("\": { \"name\": \"")
                    .append(i % 2 == 0 ? "r" + i : "uart").append("\", \"kind\": \"")
                    .append(i % 2 == 0 ? "ram" : "io").append("\", \"size\": \"0x1000\" }");
        }
        w.append(" },\n \"addressSpaces\": [ { \"name\": \"memory\", \"root\": \"sys\" } ] }\n");
        return w.toString();
    }
}
