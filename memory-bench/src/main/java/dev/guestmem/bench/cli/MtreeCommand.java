package dev.guestmem.bench.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Unmatched;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Stand-in for {@code mtree} until machine maps ({@code dev.guestmem.memory.map.MachineMap}) are in the build; the
 * real command is memory-bench/src/pending/java/dev/guestmem/bench/cli/MtreeCommand.java and replaces this file.
 */
@Command(name = "mtree", description = "Print 'info mtree' of a machine map (not in this build yet).")
final class MtreeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Unmatched
    List<String> ignored = new ArrayList<>();

    @Override
    public Integer call() {
        spec.commandLine().getErr().println("guestmem mtree: machine maps are not in this build yet");
        return 1;
    }
}
