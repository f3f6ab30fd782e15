package dev.guestmem.bench.cli;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.memory.mtree.QemuMtreeImporter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.Callable;

/**
 * Turns the text of QEMU's {@code info mtree} (from QEMU 7.2's monitor) into a {@code guestmem-map/1} machine map,
 * which {@code mtree} then prints back, so a real machine's map can be checked against QEMU's own
 * {@code info mtree -f}.
 */
@Command(name = "import-qemu", mixinStandardHelpOptions = true,
        description = "Turn QEMU's 'info mtree' dump into a machine map (JSON).",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:imported", "1:the dump cannot be read or imported, or the map cannot be written",
                "2:bad usage"})
final class ImportQemuCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DUMP", description = "Text of QEMU's 'info mtree'; - reads standard input.")
    String dump;

    @Option(names = {"-o", "--output"}, paramLabel = "MAP.json",
            description = "Write the map here (replacing the file once the map is complete), not to standard output.")
    String output;

    @Override
    public Integer call() {
        MemorySystem system;
        try {
            system = QemuMtreeImporter.importToSystem(InputText.read(dump, System.in));
        } catch (IOException e) {
            return fail("dump=" + dump + ": cannot read it: " + InputText.describe(e));
        } catch (IllegalArgumentException | IllegalStateException e) {
            return fail("dump=" + dump + ": " + e.getMessage());
        }
        // The map is written as it is made, never held whole as text.
        if (output == null) {
            PrintWriter out = spec.commandLine().getOut();
            try {
                MachineMap.write(system, out);
            } catch (IOException e) {
                return fail("cannot write the map: " + InputText.describe(e));
            }
            out.flush();
            return 0;
        }
        try {
            write(Path.of(output), system);
        } catch (IOException e) {
            return fail("output=" + output + ": cannot write it: " + InputText.describe(e));
        } catch (InvalidPathException e) {
            return fail("output=" + output + ": not a valid path: " + e.getReason());
        }
        return 0;
    }

    /** Writes beside the target, then renames: a failed write leaves no partial map behind. */
    private static void write(Path target, MemorySystem system) throws IOException {
        Path name = target.getFileName();
        Path dir = target.toAbsolutePath().getParent();
        if (name == null || dir == null || Files.isDirectory(target)) {
            throw new IOException("it is a directory");
        }
        Path tmp = Files.createTempFile(dir, name + ".", ".tmp");
        try {
            // A temporary file is private to its owner; the map is an ordinary file.
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
            try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                MachineMap.write(system, w);
            }
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private int fail(String why) {
        spec.commandLine().getErr().println("guestmem import-qemu: " + why);
        return 1;
    }
}
