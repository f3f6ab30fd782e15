package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A listener that throws while {@code registerListener} replays the view to it (QEMU's
 * {@code listener_add_address_space}, whose callbacks cannot fail) is not left registered: for each callback of the
 * replay, the registration throws an {@link IllegalStateException} naming the listener and the callback, with the
 * listener's own exception as the cause; the address space's listeners are as before the call, the view is unchanged,
 * later commits and dirty-bit clears do not reach the listener, and the same listener object can be registered again.
 */
class ListenerReplayFailureTest {
    /** A recording listener that throws from the callback logged as {@code throwFrom} while armed. */
    private static final class Thrower extends RecordingListener {
        private final String throwFrom;
        boolean armed = true;

        Thrower(List<String> log, String throwFrom) {
            super("T", 5, log);
            this.throwFrom = throwFrom;
        }

        @Override
        void recorded(String event) {
            if (armed && (event.equals(throwFrom) || event.startsWith(throwFrom + " "))) {
                throw new IllegalArgumentException("planted failure in " + throwFrom);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"begin, begin", "logGlobalStart, log_global_start", "regionAdd, add", "logStart, log_start",
        "commit, commit"})
    void aListenerThatThrowsDuringItsReplayIsNotRegistered(String callback, String logWord) {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", 0x100000);
        AddressSpace as = sys.addressSpace("memory", root);
        MemoryRegion ram0 = sys.ram("ram0", 0x1000);
        MemoryRegion ram1 = sys.ram("ram1", 0x1000);
        root.addSubregion(0x1000, ram0);
        root.addSubregion(0x2000, ram1);
        ram0.setLog(true, DirtyMemoryClient.VGA);
        sys.globalDirtyLogStart(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        List<String> log = new ArrayList<>();
        RecordingListener a = new RecordingListener("A", 0, log);
        RecordingListener b = new RecordingListener("B", 10, log);
        as.registerListener(a);
        as.registerListener(b);
        String viewBefore = as.flatView().ranges().toString();
        log.clear();

        Thrower t = new Thrower(log, logWord);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> as.registerListener(t));
        assertTrue(e.getMessage().startsWith("listener=T callback=" + callback + " addressSpace=memory: the listener"
                + " threw "), e.getMessage());
        assertTrue(e.getMessage().endsWith("it is not registered"), e.getMessage());
        assertEquals("planted failure in " + logWord, e.getCause().getMessage());
        assertEquals(1, log.stream().filter(s -> s.equals("T " + logWord) || s.startsWith("T " + logWord + " "))
                .count(), "the replay stopped at the first throw: " + log);
        assertTrue(log.stream().allMatch(s -> s.startsWith("T ")), "only T heard the replay: " + log);
        assertEquals(List.of(a, b), as.listeners(), "the listeners are as before the call");
        assertEquals(viewBefore, as.flatView().ranges().toString());
        log.clear();

        // T hears nothing more: not a commit, not a clear of dirty bits (logClear), not a global stop.
        MemoryRegion dev = sys.io("dev", 0x100, MemoryRegionOps.UNASSIGNED);
        root.addSubregion(0x3000, dev);
        ram0.clearDirtyBitmap(0, 0x1000);
        sys.globalDirtyLogStop(MemorySystem.GLOBAL_DIRTY_MIGRATION);
        assertTrue(log.stream().noneMatch(s -> s.startsWith("T ")), log.toString());
        assertTrue(log.contains("A add " + RecordingListener.describe(as.flatView().section(2))), log.toString());
        assertTrue(log.stream().anyMatch(s -> s.startsWith("A log_clear ")), "A implements logClear: " + log);
        log.clear();

        // Not half registered: the same object registers again, in its place between A and B, and hears the view.
        t.armed = false;
        as.registerListener(t);
        assertEquals(List.of(a, t, b), as.listeners());
        assertTrue(log.contains("T add " + RecordingListener.describe(as.flatView().section(0))), log.toString());
        assertEquals("T commit", log.get(log.size() - 1));
        log.clear();
        ram0.clearDirtyBitmap(0, 0x1000);
        assertTrue(log.stream().anyMatch(s -> s.startsWith("T log_clear ")), log.toString());
    }
}
