package dev.guestmem.bench.cli;

import dev.guestmem.bench.machine.DefaultPcMachine;
import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.memory.mtree.MtreePrinter;
import dev.guestmem.offheap.HostMemoryBackend;
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
 * {@code -f} the flat views (with {@code -d}, each with its dispatch tree), in QEMU 7.2's text. Without a file, the
 * same for a built-in machine as built with its device models: {@code riscv-virt}, the main job's machine
 * ({@link RiscvVirtMachine}, the default), or {@code pc} ({@link DefaultPcMachine}).
 */
@Command(name = "mtree", mixinStandardHelpOptions = true,
        description = "Print 'info mtree' of a machine map (JSON), or of a built-in machine, as QEMU 7.2 prints it.")
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

    @Option(names = "--machine", paramLabel = "NAME", description = "Without MAP.json: the built-in machine, "
            + "riscv-virt (the main job's, the default) or pc (a PC memory map in the shape of QEMU's i440fx).")
    String machineName;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MAP.json", description = "The machine map.")
    Path map;

    @Override
    public Integer call() {
        if (map != null && machineName != null) {
            spec.commandLine().getErr().println("guestmem mtree: machine=" + machineName + " map=" + map
                    + ": give a map or a machine, not both");
            return 2;
        }
        MemorySystem system;
        if (map == null) {
            String name = machineName == null ? "riscv-virt" : machineName;
            switch (name) {
                case "riscv-virt" -> system = RiscvVirtMachine.create().system();
                case "pc" -> {
                    // Lazily zeroed mmap RAM: the machine costs only the pages it touches.
                    system = new MemorySystem(HostMemoryBackend.anonymous().build());
                    DefaultPcMachine.build(system);
                }
                default -> {
                    spec.commandLine().getErr().println("guestmem mtree: machine=" + name + ": riscv-virt or pc");
                    return 2;
                }
            }
        } else {
            try {
                system = MachineMap.read(map, MemorySystem.LAYOUT_ONLY, pageBits).system();
            } catch (IOException e) {
                spec.commandLine().getErr().println("guestmem mtree: " + map + ": cannot read it (" + e + ")");
                return 1;
            } catch (IllegalArgumentException e) {
                spec.commandLine().getErr().println("guestmem mtree: " + map + ": " + e.getMessage());
                return 1;
            }
        }
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
