package dev.guestmem.bench.cli;

import dev.guestmem.bench.machine.DefaultPcMachine;
import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.memory.mtree.MtreePrinter;
import dev.guestmem.offheap.HostMemoryBackend;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.util.concurrent.Callable;

/**
 * {@code info mtree} of a machine map: loads a {@code guestmem-map/1} JSON file into a layout-only memory system
 * (its RAM has sizes but no memory, so a map of a 64 GiB guest prints instantly) and prints the region tree, or with
 * {@code -f} the flat views (with {@code -d}, each with its dispatch tree), in QEMU 7.2's text. Without a file, the
 * same for a built-in machine as built with its device models: {@code riscv-virt}, the main job's machine
 * ({@link RiscvVirtMachine}, the default), or {@code pc} ({@link DefaultPcMachine}).
 */
@Command(name = "mtree", mixinStandardHelpOptions = true,
        description = "Print 'info mtree' of a machine map (JSON), or of a built-in machine, as QEMU 7.2 prints it.",
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

    @Option(names = "--machine", paramLabel = "NAME", description = "Without MAP.json: the built-in machine, "
            + "riscv-virt (the main job's, the default) or pc (a PC memory map in the shape of QEMU's i440fx).")
    String machineName;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MAP.json",
            description = "The machine map; - reads standard input.")
    String map;

    @Override
    public Integer call() {
        if (dispatchTree && !flatViews) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "-d needs -f (as in QEMU, the dispatch is printed per flat view)");
        }
        if (map != null && machineName != null) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "machine=" + machineName + " map=" + map + ": give a map or a machine, not both");
        }
        String printed;
        if (map == null) {
            MemorySystem system = builtIn(machineName == null ? "riscv-virt" : machineName);
            printed = flatViews ? MtreePrinter.flatViews(system, dispatchTree) : MtreePrinter.mtree(system, showDisabled);
        } else {
            MemorySystem system;
            try (InputStream in = InputText.open(map, System.in)) {
                // Read as a stream of tokens: the text of a large map is never held whole.
                system = MachineMap.read(in, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES, pageBits)
                        .system();
            } catch (IOException e) {
                return fail("cannot read it: " + InputText.describe(e));
            } catch (IllegalArgumentException | IllegalStateException e) {
                return fail(e.getMessage());
            }
            // Printed as it goes: the text of a million regions is never held whole. A tree too deep for the tree
            // view is refused before anything is printed.
            PrintWriter out = spec.commandLine().getOut();
            try {
                if (flatViews) {
                    MtreePrinter.flatViews(system, dispatchTree, out);
                } else {
                    MtreePrinter.mtree(system, showDisabled, out);
                }
            } catch (IOException e) {
                return fail("cannot print it: " + InputText.describe(e));
            } catch (IllegalArgumentException | IllegalStateException e) {
                return fail(e.getMessage());
            }
            out.flush();
            return 0;
        }
        PrintWriter out = spec.commandLine().getOut();
        out.print(printed);
        out.flush();
        return 0;
    }

    private MemorySystem builtIn(String name) {
        switch (name) {
            case "riscv-virt" -> {
                return RiscvVirtMachine.create().system();
            }
            case "pc" -> {
                // Lazily zeroed mmap RAM: the machine costs only the pages it touches.
                MemorySystem system = new MemorySystem(HostMemoryBackend.anonymous().build());
                DefaultPcMachine.build(system);
                return system;
            }
            default -> throw new CommandLine.ParameterException(spec.commandLine(),
                    "machine=" + name + ": riscv-virt or pc");
        }
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
