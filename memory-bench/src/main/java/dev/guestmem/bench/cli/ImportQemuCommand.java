package dev.guestmem.bench.cli;

import dev.guestmem.memory.mtree.QemuMtreeImporter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * Turns the text of QEMU's {@code info mtree} (from QEMU 7.2's monitor) into a {@code guestmem-map/1} machine map,
 * which {@code mtree} then prints back, so a real machine's map can be checked against QEMU's own
 * {@code info mtree -f}.
 */
@Command(name = "import-qemu", mixinStandardHelpOptions = true,
        description = "Turn QEMU's 'info mtree' dump into a machine map (JSON).")
final class ImportQemuCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DUMP", description = "Text of QEMU's 'info mtree'; - reads standard input.")
    String dump;

    @Option(names = {"-o", "--output"}, paramLabel = "MAP.json", description = "Write the map here, not to standard output.")
    Path output;

    @Override
    public Integer call() {
        String json;
        try {
            String text = "-".equals(dump)
                    ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8)
                    : Files.readString(Path.of(dump));
            json = QemuMtreeImporter.importDump(text);
            if (output != null) {
                Files.writeString(output, json);
                return 0;
            }
        } catch (IOException | IllegalArgumentException e) {
            spec.commandLine().getErr().println("guestmem import-qemu: " + dump + ": " + (e instanceof IOException ? "cannot read it (" + e + ")" : e.getMessage()));
            return 1;
        }
        PrintWriter out = spec.commandLine().getOut();
        out.print(json);
        out.flush();
        return 0;
    }
}
