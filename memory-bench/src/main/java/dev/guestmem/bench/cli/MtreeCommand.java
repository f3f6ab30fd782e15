package dev.guestmem.bench.cli;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.memory.mtree.MtreePrinter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.concurrent.Callable;

/**
 * {@code info mtree} of a machine map: loads a {@code guestmem-map/1} JSON file into a layout-only memory system
 * (its RAM has sizes but no memory, so a map of a 64 GiB guest prints instantly) and prints the region tree, or with
 * {@code -f} the flat views (with {@code -d}, each with its dispatch tree), in QEMU 7.2's text.
 */
@Command(name = "mtree", mixinStandardHelpOptions = true,
        description = "Print 'info mtree' of a machine map (JSON), as QEMU 7.2 prints it.",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:printed", "1:the map cannot be read or is not a valid map", "2:bad usage"})
final class MtreeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "-f", description = "Print the flat views ('info mtree -f').")
    boolean flatViews;

    @Option(names = "-d", description = "With -f, print each view's dispatch tree too ('info mtree -f -d').")
    boolean dispatchTree;

    @Option(names = "--page-bits", paramLabel = "BITS", defaultValue = "12", converter = PageBits.class,
            description = "Page size of address spaces whose map entry gives none, as 2^BITS bytes (QEMU's "
                    + "TARGET_PAGE_BITS: 12 for x86, 10 for 32-bit Arm boards; default: ${DEFAULT-VALUE}).")
    int pageBits;

    @Option(names = "-D", description = "Show disabled regions too ('info mtree -D'); ignored with -f, as in QEMU.")
    boolean showDisabled;

    @Parameters(index = "0", paramLabel = "MAP.json", description = "The machine map; - reads standard input.")
    String map;

    @Override
    public Integer call() {
        if (dispatchTree && !flatViews) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "-d needs -f (as in QEMU, the dispatch is printed per flat view)");
        }
        String text;
        try {
            text = InputText.read(map, System.in);
        } catch (IOException e) {
            return fail("cannot read it: " + InputText.describe(e));
        } catch (IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        String printed;
        try {
            MemorySystem system = MachineMap.parse(text, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES,
                    pageBits).system();
            printed = flatViews ? MtreePrinter.flatViews(system, dispatchTree) : MtreePrinter.mtree(system, showDisabled);
        } catch (IllegalArgumentException | IllegalStateException e) {
            return fail(e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        out.print(printed);
        out.flush();
        return 0;
    }

    private int fail(String why) {
        spec.commandLine().getErr().println("guestmem mtree: map=" + map + ": " + why);
        return 1;
    }

    /** Refuses a page size the library does not support while the command line is parsed, naming the range. */
    static final class PageBits implements CommandLine.ITypeConverter<Integer> {
        @Override
        public Integer convert(String value) {
            int bits;
            try {
                bits = Integer.parseInt(value);
            } catch (NumberFormatException e) {
                throw new CommandLine.TypeConversionException("'" + value + "' is not an integer");
            }
            // The library is the authority on page sizes: ask it with an empty address space.
            MemorySystem probe = new MemorySystem(MemorySystem.LAYOUT_ONLY);
            try {
                probe.addressSpace("page-bits", probe.container("page-bits", 0), bits);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
            return bits;
        }
    }
}
