/**
 * guestmem's benchmarks, the embedded default machine and the {@code ./guestmem} tool.
 *
 * <p>The tool and JMH run on the class path (the launcher's choice: JMH forks its measurement JVMs with the class
 * path, and its generated code is not written for modules); this descriptor still checks at compile time that the
 * module only uses the exported API of memory-core.
 */
module dev.guestmem.bench {
    requires transitive dev.guestmem.core; // the exported machine hands out core types
    requires dev.guestmem.tools;
    requires dev.guestmem.offheap; // OS-backed RAM for the backend benchmarks
    requires info.picocli;
    requires jmh.core;
    requires HdrHistogram;
    requires org.jfree.jfreechart;
    requires java.desktop; // the report's images (headless)

    exports dev.guestmem.bench.machine;

    opens dev.guestmem.bench.cli to info.picocli;
}
