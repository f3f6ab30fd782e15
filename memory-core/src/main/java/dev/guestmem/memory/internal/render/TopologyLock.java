package dev.guestmem.memory.internal.render;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The topology lock (QEMU's BQL for memory): a reentrant lock that knows its owner, so that a thread which took it
 * and died (a {@code begin()} with no {@code commit()} before the thread ended) is reported instead of blocking every
 * later writer forever. A waiter parks as on any lock, and is woken at once when the lock is released; every
 * {@link #CHECK_MILLIS} ms while it waits it looks at the owner, and if the owner has terminated it throws an
 * {@link IllegalStateException} naming that thread.
 *
 * <p>A dead owner's lock is never taken over: what the thread changed before it died is unknown, so the memory
 * system stays refused, one clear message per attempt, rather than going on from a half-made change.
 *
 * <p>Interrupts do not end the wait (like {@link ReentrantLock#lock()}); an interrupt that came during it is set
 * again on the thread once the lock is held.
 *
 * <p>Threading: any thread.
 */
public final class TopologyLock extends ReentrantLock {
    private static final long serialVersionUID = 1L;

    /** How often a waiter looks for a dead owner. */
    static final long CHECK_MILLIS = 100;

    /**
     * Takes the lock, waiting while another live thread holds it.
     *
     * @throws IllegalStateException if the owner terminated while holding it
     */
    @Override
    public void lock() {
        if (tryLock()) {
            return;
        }
        boolean interrupted = false;
        try {
            while (true) {
                checkOwnerAlive();
                try {
                    if (tryLock(CHECK_MILLIS, TimeUnit.MILLISECONDS)) {
                        return;
                    }
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void checkOwnerAlive() {
        Thread owner = getOwner();
        if (owner != null && !owner.isAlive()) {
            throw new IllegalStateException("topologyLock owner=" + owner.getName() + " ownerId=" + owner.threadId()
                    + " state=" + owner.getState() + ": the thread ended inside a transaction (begin() without "
                    + "commit()); the memory system cannot change any more");
        }
    }
}
