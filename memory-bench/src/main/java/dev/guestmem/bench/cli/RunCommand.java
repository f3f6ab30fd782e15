package dev.guestmem.bench.cli;

import dev.guestmem.bench.machine.DefaultPcMachine;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.mtree.MtreePrinter;
import dev.guestmem.offheap.HostMemoryBackend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

/**
 * The main job: builds the embedded default machine ({@link DefaultPcMachine}) with real RAM (anonymous mmap from
 * memory-offheap) and prints its {@code info mtree} and {@code info mtree -f}, in QEMU 7.2's text.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Build the embedded default machine (a PC memory map) and print its "
                + "'info mtree' and 'info mtree -f'.")
final class RunCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        // Lazily zeroed mmap RAM: the machine costs only the pages it touches.
        MemorySystem system = new MemorySystem(HostMemoryBackend.anonymous().build());
        DefaultPcMachine.build(system);
        PrintWriter out = spec.commandLine().getOut();
        out.print(MtreePrinter.mtree(system, false));
        out.print(MtreePrinter.flatViews(system));
        out.flush();
        return 0;
    }
}
