package dev.guestmem.bench.job;

/**
 * The check point at which vCPUs stop for a migration's last round (QEMU's {@code vm_stop}/{@code vm_start} around
 * the stop-and-copy phase): every vCPU runs its guest code between {@link #enter()} and {@link #exit()}, a slice of
 * some thousands of instructions at a time, and so does the host when it writes guest memory between programs;
 * {@link #pause()} waits until nobody is inside and keeps everyone out until {@link #resume()}.
 *
 * <p>Threading: thread-safe; a monitor, entered once per slice.
 */
final class VcpuGate {
    private boolean paused;
    private int inside;
    private long pauses;

    /** Waits while paused, then counts the caller in. */
    synchronized void enter() throws InterruptedException {
        while (paused) {
            wait();
        }
        inside++;
    }

    /**
     * Counts the caller in and returns true if not paused; returns false at once (without counting it in) if paused,
     * so that a vCPU can leave its read-side section before it waits in {@link #enter()}.
     */
    synchronized boolean tryEnter() {
        if (paused) {
            return false;
        }
        inside++;
        return true;
    }

    synchronized void exit() {
        inside--;
        if (inside == 0) {
            notifyAll();
        }
    }

    /** Stops new entries and waits until every caller that is inside has left. */
    synchronized void pause() throws InterruptedException {
        if (paused) {
            throw new IllegalStateException("paused=true: the vCPUs are already paused");
        }
        paused = true;
        pauses++;
        try {
            while (inside > 0) {
                wait();
            }
        } catch (InterruptedException e) {
            paused = false; // not paused after all: let everyone in again
            notifyAll();
            throw e;
        }
    }

    synchronized void resume() {
        paused = false;
        notifyAll();
    }

    synchronized long pauses() {
        return pauses;
    }
}
