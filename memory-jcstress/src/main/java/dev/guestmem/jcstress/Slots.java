package dev.guestmem.jcstress;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Hands each jcstress state a slot of its own: a page, a pair of regions, whatever its trials touch. jcstress keeps
 * {@code strideSize * strideCount} states alive at once and runs every trial of a state on the same object (its
 * constructor runs once; its arbiter ends each trial), so a state owns its slot for life and puts it back in the
 * starting condition itself, at the end of its arbiter. Slots are reused round robin by the states of later
 * iterations, after the earlier ones are gone; a slot taken while its owner still runs would mix two states' trials,
 * so {@link #check} refuses that loudly instead of reporting a false outcome. A state holds its ticket (from
 * {@link #claim}) and the slot it names ({@link #slot}).
 *
 * <p>Threading: {@link #claim} from any thread (jcstress builds states on its own); {@link #check} by the owner.
 */
final class Slots {
    /**
     * Slots per test: at least {@code strideSize * strideCount} of the run, which the module's pom sets to 256 * 1.
     */
    static final int COUNT = 512;

    /** Per slot, the ticket of its owner. */
    private final AtomicLongArray owners = new AtomicLongArray(COUNT);
    private final AtomicLong next = new AtomicLong(1);

    /** A new ticket, whose slot it now owns. */
    long claim() {
        long ticket = next.getAndIncrement();
        owners.set(slot(ticket), ticket);
        return ticket;
    }

    /** The slot that {@code ticket} owns. */
    static int slot(long ticket) {
        return (int) (ticket % COUNT);
    }

    /** Throws if a newer ticket has claimed the slot of {@code ticket}: more states alive than there are slots. */
    void check(long ticket) {
        long owner = owners.get(slot(ticket));
        if (owner != ticket) {
            throw new IllegalStateException("slot=" + slot(ticket) + " slots=" + COUNT + " ticket=" + ticket
                    + " owner=" + owner + ": claimed again while its owner runs; strideSize * strideCount exceeds"
                    + " the slots");
        }
    }
}
