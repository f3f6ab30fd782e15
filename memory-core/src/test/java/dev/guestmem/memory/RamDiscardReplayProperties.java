package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

/**
 * Replay gives the same picture as the live notifications. Random sequences of plugs, unplugs, unplug-alls, listener
 * registrations (on any part of the region, half blocks included, with and without double-discard support) and
 * unregistrations, with listeners that refuse populates now and then, run against a {@link VirtioMemDiscardManager};
 * after every step each registered listener's picture (what its notifications say is populated) must equal what
 * {@code replay_populated} gives for its section, an unregistered listener's picture must be empty, and the manager's
 * state must equal a plain model of plugged blocks that is updated only by requests the model expects to succeed.
 *
 * <p>Each step is a number that decides its own request; jqwik shrinks a failing list to the fewest, simplest steps.
 */
class RamDiscardReplayProperties {
    private static final long BASE = 0x4000_0000L;
    private static final long BLOCK = 0x1000;
    private static final int BLOCKS = 16;
    private static final long SIZE = BLOCK * BLOCKS;
    /** Sections start and end on multiples of half a block. */
    private static final long GRAIN = BLOCK / 2;

    @Property
    void replayEqualsTheLiveNotifications(@ForAll @Size(max = 60) List<@IntRange(min = 0) Integer> steps) {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("system", U64.SIZE_2_64);
        AddressSpace as = sys.addressSpace("memory", root);
        MemoryRegion mem = sys.ram("mem", SIZE);
        VirtioMemDiscardManager m = VirtioMemDiscardManager.realize(mem, BLOCK);
        root.addSubregion(BASE, mem);
        boolean[] model = new boolean[BLOCKS];
        List<RecordingDiscardListener> registered = new ArrayList<>();
        List<RecordingDiscardListener> gone = new ArrayList<>();
        List<String> log = new ArrayList<>();
        int names = 0;

        for (int step : steps) {
            Random r = new Random(step);
            RecordingDiscardListener refuser = registered.isEmpty() || r.nextInt(4) != 0 ? null
                    : registered.get(r.nextInt(registered.size()));
            if (refuser != null) {
                refuser.refuse = s -> true;
            }
            switch (r.nextInt(6)) {
                case 0, 1 -> {
                    int first = r.nextInt(BLOCKS);
                    int n = 1 + r.nextInt(BLOCKS - first);
                    boolean ok = all(model, first, n, false)
                            && (refuser == null || refuser.registered.intersectRange(first * BLOCK, n * BLOCK) == null);
                    if (ok) {
                        m.plug(first * BLOCK, n * BLOCK);
                        set(model, first, n, true);
                    } else {
                        assertThrows(IllegalStateException.class, () -> m.plug(first * BLOCK, n * BLOCK));
                    }
                }
                case 2 -> {
                    int first = r.nextInt(BLOCKS);
                    int n = 1 + r.nextInt(BLOCKS - first);
                    if (all(model, first, n, true)) {
                        m.unplug(first * BLOCK, n * BLOCK);
                        set(model, first, n, false);
                    } else {
                        assertThrows(IllegalStateException.class, () -> m.unplug(first * BLOCK, n * BLOCK));
                    }
                }
                case 3 -> {
                    m.unplugAll();
                    set(model, 0, BLOCKS, false);
                }
                case 4 -> {
                    long start = GRAIN * r.nextInt((int) (SIZE / GRAIN));
                    long size = GRAIN * (1 + r.nextInt((int) ((SIZE - start) / GRAIN)));
                    RecordingDiscardListener l = new RecordingDiscardListener("L" + names++, log, r.nextBoolean());
                    MemoryRegionSection s = new MemoryRegionSection(mem, as.flatView(), start, BASE + start,
                            BASE + start + size - 1, false, false, false);
                    boolean refuses = r.nextInt(5) == 0;
                    l.refuse = x -> refuses;
                    boolean anyPlugged = !all(model, (int) (start / BLOCK), (int) ((start + size - 1) / BLOCK)
                            - (int) (start / BLOCK) + 1, false);
                    if (refuses && anyPlugged) {
                        assertThrows(IllegalStateException.class, () -> l.registerWith(m, s));
                        gone.add(l);
                    } else {
                        l.registerWith(m, s);
                        registered.add(l);
                    }
                    l.refuse = x -> false;
                }
                default -> {
                    if (!registered.isEmpty()) {
                        RecordingDiscardListener l = registered.remove(r.nextInt(registered.size()));
                        m.unregisterListener(l);
                        gone.add(l);
                    }
                }
            }
            if (refuser != null) {
                refuser.refuse = s -> false;
            }
            check(m, mem, as, model, registered, gone);
        }
    }

    private static void check(VirtioMemDiscardManager m, MemoryRegion mem, AddressSpace as, boolean[] model,
                              List<RecordingDiscardListener> registered, List<RecordingDiscardListener> gone) {
        BitSet expected = new BitSet();
        for (int b = 0; b < BLOCKS; b++) {
            if (model[b]) {
                expected.set((int) (b * BLOCK), (int) ((b + 1) * BLOCK));
            }
        }
        MemoryRegionSection whole = new MemoryRegionSection(mem, as.flatView(), 0, BASE, BASE + SIZE - 1, false, false,
                false);
        assertEquals(expected, RecordingDiscardListener.replayedPicture(m, whole), "the manager's state");
        BitSet discarded = new BitSet();
        m.replayDiscarded(whole, s -> discarded.set((int) s.offsetWithinRegion(),
                (int) (s.offsetWithinRegion() + s.sizeMinusOne() + 1)));
        discarded.xor(expected);
        assertEquals(SIZE, discarded.cardinality(), "replay_discarded gives exactly the rest");
        assertEquals(expected.cardinality(), m.pluggedSize());
        for (RecordingDiscardListener l : registered) {
            assertEquals(RecordingDiscardListener.replayedPicture(m, l.registered), l.populated(), l.toString());
        }
        for (RecordingDiscardListener l : gone) {
            assertEquals(new BitSet(), l.populated(), l + " after it left");
        }
    }

    private static boolean all(boolean[] model, int first, int n, boolean plugged) {
        for (int i = first; i < first + n; i++) {
            if (model[i] != plugged) {
                return false;
            }
        }
        return true;
    }

    private static void set(boolean[] model, int first, int n, boolean plugged) {
        for (int i = first; i < first + n; i++) {
            model[i] = plugged;
        }
    }
}
