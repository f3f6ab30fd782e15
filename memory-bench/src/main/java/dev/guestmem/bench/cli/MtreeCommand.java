package dev.guestmem.bench.cli;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.memory.mtree.MtreePrinter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code info mtree} of a machine map: loads a {@code guestmem-map/1} JSON file into a layout-only memory system
 * (its RAM has sizes but no memory, so a map of a 64 GiB guest prints instantly) and prints the region tree, or with
 * {@code -f} the flat views (with {@code -d}, each with its dispatch tree), in QEMU 7.2's text.
 */
@Command(name = "mtree", mixinStandardHelpOptions = true,
        description = "Print 'info mtree' of a machine map (JSON), as QEMU 7.2 prints it.")
final class MtreeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "-f", description = "Print the flat views ('info mtree -f').")
    boolean flatViews;

    @Option(names = "-d", description = "With -f, print each view's dispatch tree too ('info mtree -f -d').")
    boolean dispatchTree;

    @Option(names = "--page-bits", paramLabel = "BITS", defaultValue = "12",
            description = "Page size of address spaces whose map entry gives none, as 2^BITS bytes (QEMU's "
                    + "TARGET_PAGE_BITS: 12 for x86, 10 for 32-bit Arm boards; default: ${DEFAULT-VALUE}).")
    int pageBits;

    @Option(names = "-D", description = "Show disabled regions too ('info mtree -D'); ignored with -f, as in QEMU.")
    boolean showDisabled;

    @Parameters(index = "0", paramLabel = "MAP.json", description = "The machine map.")
    Path map;

    @Override
    public Integer call() {
        MachineMap machine;
        try {
            machine = MachineMap.read(map, MemorySystem.LAYOUT_ONLY, pageBits);
        } catch (IOException e) {
            spec.commandLine().getErr().println("guestmem mtree: " + map + ": cannot read it (" + e + ")");
            return 1;
        } catch (IllegalArgumentException e) {
            spec.commandLine().getErr().println("guestmem mtree: " + map + ": " + e.getMessage());
            return 1;
        }
        MemorySystem system = machine.system();
        PrintWriter out = spec.commandLine().getOut();
        if (dispatchTree && !flatViews) {
            spec.commandLine().getErr()
                    .println("guestmem mtree: -d needs -f (as in QEMU, the dispatch is printed per flat view)");
            return 2;
        }
        out.print(flatViews ? MtreePrinter.flatViews(system, dispatchTree) : MtreePrinter.mtree(system, showDisabled));
        out.flush();
        return 0;
    }
}
