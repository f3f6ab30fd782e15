package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.function.Predicate;

/**
 * A {@link RamDiscardListener} for tests: writes each notification into a log as {@code "NAME populate SECTION"} or
 * {@code "NAME discard SECTION"} (the section as {@link RecordingListener#describe} writes it), and keeps the picture
 * the notifications give, one bit per region-relative byte that it was told is populated.
 *
 * <p>It checks QEMU's contract as it goes: every section lies inside the one it registered for, a populate only ever
 * covers bytes it holds as discarded, and a discard covers only bytes it holds as populated unless it supports double
 * discards. A populate that {@link #refuse} matches is refused (and logged, and leaves the picture as it was).
 *
 * <p>Threading: called under the memory system's topology lock, like every discard listener.
 */
class RecordingDiscardListener implements RamDiscardListener {
    private final String name;
    private final List<String> log;
    private final boolean doubleDiscard;
    private final BitSet populated = new BitSet();
    /** The section registered for; set by the test before registering. */
    MemoryRegionSection registered;
    /** Which populates to refuse; none by default. */
    Predicate<MemoryRegionSection> refuse = s -> false;

    RecordingDiscardListener(String name, List<String> log, boolean doubleDiscard) {
        this.name = name;
        this.log = log;
        this.doubleDiscard = doubleDiscard;
    }

    RecordingDiscardListener(String name, List<String> log) {
        this(name, log, false);
    }

    /** Registers with {@code rdm} for {@code section}, remembering the section for the checks. */
    RecordingDiscardListener registerWith(RamDiscardManager rdm, MemoryRegionSection section) {
        registered = section;
        rdm.registerListener(this, section);
        return this;
    }

    @Override
    public boolean notifyPopulate(MemoryRegionSection section) {
        checkInside(section);
        log.add(name + " populate " + RecordingListener.describe(section));
        if (refuse.test(section)) {
            return false;
        }
        int from = from(section);
        int to = to(section);
        int already = populated.nextSetBit(from);
        assertTrue(already < 0 || already >= to, name + ": populate of populated byte " + U64.hex(already));
        populated.set(from, to);
        return true;
    }

    @Override
    public void notifyDiscard(MemoryRegionSection section) {
        checkInside(section);
        log.add(name + " discard " + RecordingListener.describe(section));
        int from = from(section);
        int to = to(section);
        if (!doubleDiscard) {
            int hole = populated.nextClearBit(from);
            assertTrue(hole >= to, name + ": discard of discarded byte " + U64.hex(hole));
        }
        populated.clear(from, to);
    }

    @Override
    public boolean doubleDiscardSupported() {
        return doubleDiscard;
    }

    /** The region-relative bytes this listener holds as populated. */
    BitSet populated() {
        return (BitSet) populated.clone();
    }

    /** The populated parts of {@code section} as {@code rdm} replays them, as a picture like {@link #populated()}. */
    static BitSet replayedPicture(RamDiscardManager rdm, MemoryRegionSection section) {
        BitSet b = new BitSet();
        assertTrue(rdm.replayPopulated(section, s -> {
            b.set(from(s), to(s));
            return true;
        }));
        return b;
    }

    /** The sections {@code rdm} replays as populated ({@code populated}) or discarded, described. */
    static List<String> replayed(RamDiscardManager rdm, MemoryRegionSection section, boolean populated) {
        List<String> out = new ArrayList<>();
        if (populated) {
            rdm.replayPopulated(section, s -> out.add(RecordingListener.describe(s)));
        } else {
            rdm.replayDiscarded(section, s -> out.add(RecordingListener.describe(s)));
        }
        return out;
    }

    private void checkInside(MemoryRegionSection s) {
        assertEquals(registered.region(), s.region());
        long first = registered.offsetWithinRegion();
        long last = first + registered.sizeMinusOne();
        assertTrue(s.offsetWithinRegion() >= first && s.offsetWithinRegion() + s.sizeMinusOne() <= last,
                name + ": " + s + " is not inside " + registered);
        assertEquals(s.offsetWithinRegion() - first, s.offsetWithinAddressSpace() - registered.offsetWithinAddressSpace(),
                name + ": region and address-space offsets moved apart in " + s);
    }

    private static int from(MemoryRegionSection s) {
        return Math.toIntExact(s.offsetWithinRegion());
    }

    private static int to(MemoryRegionSection s) {
        return Math.toIntExact(s.offsetWithinRegion() + s.sizeMinusOne() + 1);
    }

    @Override
    public String toString() {
        return name;
    }
}
