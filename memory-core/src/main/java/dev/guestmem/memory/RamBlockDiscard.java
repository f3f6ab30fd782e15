package dev.guestmem.memory;

/**
 * QEMU's RAM discard coordination ({@code ram_block_discard_disable}, {@code ram_block_uncoordinated_discard_disable},
 * {@code ram_block_discard_require}, {@code ram_block_coordinated_discard_require}, {@code ram_block_discard_is_disabled},
 * {@code ram_block_discard_is_required} in QEMU's {@code physmem.c}): four counters through which technologies that
 * break when guest RAM is discarded (a device that pins all guest memory for DMA, as VFIO does) and technologies that
 * need discarding to work (a balloon, virtio-mem) keep out of each other's way.
 *
 * <ul>
 *   <li>Disabling every discard is refused while anyone requires discards, coordinated or not.</li>
 *   <li>Disabling only <em>uncoordinated</em> discards (those made without a {@link RamDiscardManager} telling its
 *   listeners) is refused only while someone requires every discard; it coexists with coordinated requirers, which is
 *   how a device that maps only populated memory (through {@link RamDiscardListener}s) works next to virtio-mem.</li>
 *   <li>Requiring every discard is refused while any discard is disabled, coordinated or not.</li>
 *   <li>Requiring only coordinated discards is refused only while every discard is disabled.</li>
 * </ul>
 * Each call with {@code state == true} that succeeds must be paired with one with {@code state == false}.
 *
 * <p>{@link AbstractRamBlock#discardRange} does not consult these counters, as QEMU's {@code ram_block_discard_range}
 * does not: its callers (a balloon, a discard manager such as {@link VirtioMemDiscardManager}) take part in the
 * coordination and decide.
 *
 * <p>QEMU keeps these counters once per process; guestmem keeps them once per {@link MemorySystem}
 * ({@link MemorySystem#ramBlockDiscard()}), since one process may run several machines, each with its own guest RAM.
 *
 * <p>Threading: any thread; the counters are guarded by this object's monitor (QEMU's
 * {@code ram_block_discard_disable_mutex}).
 */
public final class RamBlockDiscard {
    /** QEMU's {@code ram_block_discard_disabled_cnt}: callers that cannot live with any discard. */
    private static final int DISABLED = 0;
    /** QEMU's {@code ram_block_uncoordinated_discard_disabled_cnt}: callers that only cope with coordinated ones. */
    private static final int UNCOORDINATED_DISABLED = 1;
    /** QEMU's {@code ram_block_discard_required_cnt}: callers that need every discard to work. */
    private static final int REQUIRED = 2;
    /** QEMU's {@code ram_block_coordinated_discard_required_cnt}: callers that need coordinated discards to work. */
    private static final int COORDINATED_REQUIRED = 3;
    /** The counters' names in messages, and the calls that take and end them. */
    private static final String[] NAMES = {"discardDisabled", "uncoordinatedDiscardDisabled", "discardRequired",
            "coordinatedDiscardRequired"};
    private static final String[] CALLS = {"disable", "uncoordinatedDisable", "require", "coordinatedRequire"};

    /** The four counters, indexed by the constants above. Guarded by this object's monitor. */
    private final int[] count = new int[4];

    RamBlockDiscard() {
    }

    /**
     * QEMU's {@code ram_block_discard_disable}: {@code true} disables every discard of guest RAM, refused while
     * discards are required (coordinated or not); {@code false} ends one earlier successful disable.
     *
     * @return whether the request was granted (false is QEMU's {@code -EBUSY})
     * @throws IllegalStateException if {@code state} is false and nothing is disabled
     */
    public synchronized boolean disable(boolean state) {
        return change(DISABLED, state, count[REQUIRED] > 0 || count[COORDINATED_REQUIRED] > 0);
    }

    /**
     * QEMU's {@code ram_block_uncoordinated_discard_disable}: {@code true} disables only discards that no
     * {@link RamDiscardManager} coordinates, refused while every discard is required; {@code false} ends one earlier
     * successful disable.
     *
     * @return whether the request was granted (false is QEMU's {@code -EBUSY})
     * @throws IllegalStateException if {@code state} is false and nothing is disabled this way
     */
    public synchronized boolean uncoordinatedDisable(boolean state) {
        return change(UNCOORDINATED_DISABLED, state, count[REQUIRED] > 0);
    }

    /**
     * QEMU's {@code ram_block_discard_require}: {@code true} requires every discard of guest RAM to work, refused
     * while any discard is disabled; {@code false} ends one earlier successful requirement.
     *
     * @return whether the request was granted (false is QEMU's {@code -EBUSY})
     * @throws IllegalStateException if {@code state} is false and nothing is required
     */
    public synchronized boolean require(boolean state) {
        return change(REQUIRED, state, count[DISABLED] > 0 || count[UNCOORDINATED_DISABLED] > 0);
    }

    /**
     * QEMU's {@code ram_block_coordinated_discard_require}: {@code true} requires coordinated discards (made through a
     * {@link RamDiscardManager}) to work, refused only while every discard is disabled; {@code false} ends one earlier
     * successful requirement.
     *
     * @return whether the request was granted (false is QEMU's {@code -EBUSY})
     * @throws IllegalStateException if {@code state} is false and nothing is required this way
     */
    public synchronized boolean coordinatedRequire(boolean state) {
        return change(COORDINATED_REQUIRED, state, count[DISABLED] > 0);
    }

    /** QEMU's {@code ram_block_discard_is_disabled}: whether any discard (coordinated or not) is disabled. */
    public synchronized boolean isDisabled() {
        return count[DISABLED] > 0 || count[UNCOORDINATED_DISABLED] > 0;
    }

    /** QEMU's {@code ram_block_discard_is_required}: whether any discard (coordinated or not) is required. */
    public synchronized boolean isRequired() {
        return count[REQUIRED] > 0 || count[COORDINATED_REQUIRED] > 0;
    }

    /** The four counters, in {@code key=value} form, for error messages. */
    @Override
    public synchronized String toString() {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < count.length; i++) {
            b.append(i == 0 ? "" : " ").append(NAMES[i]).append('=').append(count[i]);
        }
        return b.toString();
    }

    /**
     * Takes counter {@code which} unless {@code busy} ({@code state} true), or ends one taking of it. QEMU lets an
     * unpaired end wrap its unsigned counter; guestmem refuses it. Called with the monitor held.
     */
    private boolean change(int which, boolean state, boolean busy) {
        if (!state) {
            if (count[which] == 0) {
                throw new IllegalStateException(CALLS[which] + "(false) with " + this + ": no " + CALLS[which]
                        + "(true) to end");
            }
            count[which]--;
            return true;
        }
        if (busy) {
            return false;
        }
        count[which]++;
        return true;
    }
}
