package dev.guestmem.memory.internal.access;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The warnings {@link RamFaults} logs during one test, caught through java.util.logging (the default backend of
 * {@code System.Logger}). Register with {@code @RegisterExtension}.
 */
public final class RamFaultWarnings extends Handler implements BeforeEachCallback, AfterEachCallback {
    /** Held strongly, so that the handler stays on the logger the library's System.Logger writes to. */
    private final Logger logger = Logger.getLogger("dev.guestmem.memory.RamFaults");
    private final List<String> messages = new CopyOnWriteArrayList<>();

    @Override
    public void beforeEach(ExtensionContext context) {
        logger.addHandler(this);
        logger.setUseParentHandlers(false);
    }

    @Override
    public void afterEach(ExtensionContext context) {
        logger.removeHandler(this);
        logger.setUseParentHandlers(true);
    }

    /** Every message logged since the test began, in order. */
    public List<String> messages() {
        return List.copyOf(messages);
    }

    /** How many warnings name block {@code idstr}. */
    public long count(String idstr) {
        return messages.stream().filter(m -> m.startsWith("block=" + idstr + " ")).count();
    }

    @Override
    public void publish(LogRecord record) {
        messages.add(record.getMessage());
    }

    @Override
    public void flush() {
    }

    @Override
    public void close() {
    }
}
