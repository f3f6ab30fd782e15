package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A listener that throws from a callback during a commit leaves no disagreement behind: the commit still publishes
 * every view and makes every other listener call, then throws the first exception, naming the listener and the
 * callback. For each callback a commit makes, a script of changes runs twice over real anonymous RAM: once with a
 * listener that throws from that callback and once with the same listener quiet. Both runs must give every listener
 * (the thrower included, which records before it throws) the very same calls; after each step the tree and the
 * published view must agree (a leaf is in the view exactly when it is mapped) and a store to mapped RAM must land;
 * and a step must throw exactly when the quiet run shows the thrower hearing that callback in it.
 */
class ListenerFailureTest {
    /** One step of the script: a change made as its own transaction. */
    private record Step(String name, Consumer<Machine> change) {
    }

    /** A recording listener that throws from one callback (named by its log word, or null for none) once armed. */
    private static final class Thrower extends RecordingListener {
        private final String throwFrom;
        /** Set once registered: the registration's replay is not a commit. */
        boolean armed;

        Thrower(String name, int priority, List<String> log, String throwFrom) {
            super(name, priority, log);
            this.throwFrom = throwFrom;
        }

        @Override
        void recorded(String event) {
            if (armed && (event.equals(throwFrom) || event.startsWith(throwFrom + " "))) {
                throw new IllegalArgumentException("planted failure in " + throwFrom);
            }
        }
    }

    /** A machine with three listeners: the thrower between two quiet ones. */
    private static final class Machine {
        final MemorySystem sys = new MemorySystem();
        final MemoryRegion root = sys.container("root", 0x100000);
        final AddressSpace as = sys.addressSpace("memory", root);
        final MemoryRegion ram0 = sys.ram("ram0", 0x1000);
        final MemoryRegion ram1 = sys.ram("ram1", 0x1000);
        final MemoryRegion dev = sys.io("dev", 0x100, MemoryRegionOps.UNASSIGNED);
        final EventNotifier notifier = () -> { };
        final List<String> log = new ArrayList<>();

        /** @param throwFrom the log word of the callback the middle listener throws from, or null */
        Machine(String throwFrom) {
            root.addSubregion(0x1000, ram0);
            as.registerListener(new RecordingListener("A", 0, log));
            Thrower thrower = new Thrower("T", 5, log, throwFrom);
            as.registerListener(thrower);
            thrower.armed = true;
            as.registerListener(new RecordingListener("B", 10, log));
            log.clear();
        }

        /** Runs one step; returns what it threw, or null. */
        IllegalStateException run(Step step) {
            try {
                step.change().accept(this);
                return null;
            } catch (IllegalStateException e) {
                return e;
            }
        }

        /** The view agrees with the tree, and every mapped RAM region takes a store and gives it back. */
        void checkAgrees(String where) {
            for (MemoryRegion leaf : List.of(ram0, ram1, dev)) {
                long guest = 0x1000L * (leaf == ram0 ? 1 : leaf == ram1 ? 2 : 3);
                FlatRange fr = as.flatView().lookup(guest);
                boolean mapped = leaf.container() == root && leaf.isEnabled();
                assertEquals(mapped, fr != null && fr.region() == leaf, where + ": " + leaf.name() + " mapped="
                        + mapped + " but the view has " + fr);
                if (mapped && leaf.isRam()) {
                    long v = 0x1122334455667788L ^ guest;
                    assertEquals(MemTxResult.OK, as.stqLe(guest + 8, v, MemTxAttrs.UNSPECIFIED), where);
                    int[] result = new int[1];
                    assertEquals(v, as.ldqLe(guest + 8, MemTxAttrs.UNSPECIFIED, result), where);
                    assertEquals(MemTxResult.OK, result[0], where);
                }
            }
        }
    }

    private static final List<Step> SCRIPT = List.of(
            new Step("add ram1", m -> m.root.addSubregion(0x2000, m.ram1)),
            new Step("add dev", m -> m.root.addSubregion(0x3000, m.dev)),
            new Step("log ram0", m -> m.ram0.setLog(true, DirtyMemoryClient.VGA)),
            new Step("coalesce dev", m -> m.dev.addCoalescing(0, 0x10)),
            new Step("eventfd on dev", m -> m.dev.addEventfd(0x20, 4, false, 0, m.notifier)),
            new Step("disable ram1", m -> m.ram1.setEnabled(false)),
            new Step("enable ram1", m -> m.ram1.setEnabled(true)),
            new Step("stop logging ram0", m -> m.ram0.setLog(false, DirtyMemoryClient.VGA)),
            new Step("drop eventfd", m -> m.dev.delEventfd(0x20, 4, false, 0, m.notifier)),
            new Step("clear coalescing", m -> m.dev.clearCoalescing()),
            new Step("remove dev and ram0", m -> m.sys.transaction(() -> {
                m.root.delSubregion(m.dev);
                m.root.delSubregion(m.ram0);
            })),
            new Step("add ram0 back", m -> m.root.addSubregion(0x1000, m.ram0)));

    @ParameterizedTest
    @CsvSource({"begin, begin", "regionAdd, add", "regionDel, del", "regionNop, nop", "logStart, log_start",
        "logStop, log_stop", "eventfdAdd, eventfd_add", "eventfdDel, eventfd_del", "coalescedIoAdd, coalesced_add",
        "coalescedIoDel, coalesced_del", "commit, commit"})
    void aThrowingListenerLeavesTheTreeAndTheViewAgreeing(String callback, String logWord) {
        Machine quiet = new Machine(null);
        Machine failing = new Machine(logWord);
        boolean thrownOnce = false;
        for (Step step : SCRIPT) {
            assertNull(quiet.run(step), step.name());
            IllegalStateException e = failing.run(step);
            List<String> expected = List.copyOf(quiet.log);
            assertEquals(expected, failing.log, step.name() + ": every listener hears the same calls");
            boolean heard = expected.stream().anyMatch(s -> s.equals("T " + logWord) || s.startsWith("T " + logWord + " "));
            if (heard) {
                assertNotNull(e, step.name() + ": T heard " + callback + " and threw; commit must say so");
                assertTrue(e.getMessage().startsWith("listener=T callback=" + callback), e.getMessage());
                assertEquals("planted failure in " + logWord, e.getCause().getMessage());
                long throwsInStep = expected.stream()
                        .filter(s -> s.equals("T " + logWord) || s.startsWith("T " + logWord + " ")).count();
                assertEquals(throwsInStep - 1, e.getSuppressed().length == 0 ? 0
                        : e.getSuppressed().length - 1, step.name() + ": later failures are suppressed, then counted");
                thrownOnce = true;
            } else {
                assertNull(e, step.name());
            }
            quiet.checkAgrees(step.name() + " (quiet)");
            failing.checkAgrees(step.name() + " (failing on " + callback + ")");
            assertEquals(quiet.as.flatView().ranges().toString(), failing.as.flatView().ranges().toString(),
                    step.name());
            quiet.log.clear();
            failing.log.clear();
        }
        assertTrue(thrownOnce, "the script makes a " + callback + " call");
        // The lock was released after the failure: another thread can change the tree.
        Thread other = new Thread(() -> failing.root.delSubregion(failing.ram1));
        other.start();
        try {
            other.join();
        } catch (InterruptedException ie) {
            throw new AssertionError(ie);
        }
        assertSame(null, failing.ram1.container());
    }
}
