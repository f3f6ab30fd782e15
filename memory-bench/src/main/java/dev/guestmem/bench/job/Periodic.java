package dev.guestmem.bench.job;

import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/** A thread's fixed-rate loop, as the display's refresh and the device thread's changes run. */
final class Periodic {
    private Periodic() {
    }

    /**
     * Runs {@code step} every {@code periodNanos} until {@code stopped} is true; a step that ends late starts the
     * next period from now rather than running a burst of steps to catch up.
     */
    static void run(long periodNanos, BooleanSupplier stopped, Runnable step) {
        long next = System.nanoTime();
        while (!stopped.getAsBoolean()) {
            step.run();
            next += periodNanos;
            long wait = next - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(wait);
            } else {
                next = System.nanoTime();
            }
        }
    }
}
