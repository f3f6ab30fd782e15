package dev.guestmem.bench.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Unmatched;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Stand-in for {@code import-qemu} until the importer ({@code dev.guestmem.memory.mtree.QemuMtreeImporter}) is in
 * the build; the real command is memory-bench/src/pending/java/dev/guestmem/bench/cli/ImportQemuCommand.java and
 * replaces this file.
 */
@Command(name = "import-qemu",
        description = "Turn QEMU's 'info mtree' dump into a machine map (not in this build yet).")
final class ImportQemuCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Unmatched
    List<String> ignored = new ArrayList<>();

    @Override
    public Integer call() {
        spec.commandLine().getErr().println("guestmem import-qemu: the QEMU importer is not in this build yet");
        return 1;
    }
}
