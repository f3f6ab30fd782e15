package dev.guestmem.offheap;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/** The contract on file backends: each region maps a new file holding {@link #pattern} from {@link #OFFSET} on. */
abstract class FileBackendContract extends RamBackendContract {
    /** Where in each file the RAM starts. */
    static final long OFFSET = 0x10000;

    @TempDir
    Path dir;
    private int files;

    /** A new file of {@code OFFSET + SIZE} bytes holding the pattern. */
    Path newFile() {
        byte[] content = new byte[(int) (OFFSET + SIZE)];
        for (int i = 0; i < SIZE; i++) {
            content[(int) OFFSET + i] = pattern(i);
        }
        try {
            return Files.write(dir.resolve("ram-" + files++), content);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    protected byte initialByte(long offset) {
        return pattern(offset);
    }

    @Override
    protected boolean mayFault() {
        return true;
    }

    @Override
    protected boolean hasFd() {
        return true;
    }
}
