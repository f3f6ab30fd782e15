package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryListener;
import java.util.function.Consumer;

/**
 * What listeners threw during one commit (or one coalesced-range update), so that a throwing listener cannot leave
 * the tree and the published views disagreeing. QEMU's listeners are C callbacks that cannot fail; guestmem keeps
 * QEMU's order of calls and makes a throw harmless to the others: the call that threw is recorded, every other call
 * of the commit is still made (the other listeners, and the same listener's later callbacks), every view is
 * published, and only then does the first exception come out of {@code commit()}, wrapped in an
 * {@link IllegalStateException} that names the listener, the callback and the address space, with the later ones
 * attached as suppressed exceptions (the first {@value #MAX_SUPPRESSED}; the message counts them all).
 *
 * <p>A {@link VirtualMachineError} is not caught: the JVM's own failure goes out at once.
 *
 * <p>Threading: writer only (the topology lock held); one instance per memory system, emptied by {@link #take()}.
 */
public final class ListenerFailures {
    /** Later exceptions kept as suppressed ones; beyond this they are only counted. */
    static final int MAX_SUPPRESSED = 16;

    private IllegalStateException first;
    private int count;

    /** Calls {@code callback} on {@code l}, recording what it throws as the failure of {@code what} in {@code as}. */
    public void call(MemoryListener l, String what, AddressSpace as, Consumer<MemoryListener> callback) {
        try {
            callback.accept(l);
        } catch (RuntimeException | Error e) {
            if (e instanceof VirtualMachineError) {
                throw e;
            }
            record(l, what, as, e);
        }
    }

    private void record(MemoryListener l, String what, AddressSpace as, Throwable e) {
        count++;
        if (first == null) {
            first = new IllegalStateException("listener=" + l.name() + " callback=" + what
                    + (as == null ? "" : " addressSpace=" + as.name()) + ": the listener threw " + e
                    + "; the commit went on: the views are published and every other call was made", e);
        } else if (count <= MAX_SUPPRESSED + 1) {
            first.addSuppressed(new IllegalStateException("listener=" + l.name() + " callback=" + what
                    + (as == null ? "" : " addressSpace=" + as.name()) + ": the listener threw " + e, e));
        }
    }

    /**
     * The exception to throw for what was recorded since the last call, or null when every listener returned
     * normally; forgets it, so the next commit starts empty.
     */
    public IllegalStateException take() {
        IllegalStateException e = first;
        if (e != null && count > 1) {
            e.addSuppressed(new IllegalStateException("failures=" + count + ": listener calls that threw in this "
                    + "commit, the first above" + (count > MAX_SUPPRESSED + 1 ? " and the next " + MAX_SUPPRESSED
                    + " suppressed" : " and the rest suppressed")));
        }
        first = null;
        count = 0;
        return e;
    }
}
