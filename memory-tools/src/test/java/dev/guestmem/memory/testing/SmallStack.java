package dev.guestmem.memory.testing;

import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs a piece of a test on a thread with a small stack (256 KiB), so that code which should walk deep trees and long
 * alias chains without recursion fails deterministically with {@link StackOverflowError} if it recurses.
 */
public final class SmallStack {
    /** The stack of the thread, in bytes: a few thousand frames, far fewer than the depths the tests use. */
    public static final long STACK_BYTES = 256 << 10;

    private SmallStack() {
    }

    /** {@code task}'s result, computed on a thread with a {@link #STACK_BYTES} stack; rethrows what it throws. */
    public static <T> T call(Callable<T> task) throws Exception {
        AtomicReference<T> result = new AtomicReference<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread t = new Thread(null, () -> {
            try {
                result.set(task.call());
            } catch (Throwable e) {
                failure.set(e);
            }
        }, "small-stack", STACK_BYTES);
        t.start();
        t.join();
        Throwable e = failure.get();
        if (e instanceof Exception ex) {
            throw ex;
        } else if (e instanceof Error err) {
            throw err;
        }
        return result.get();
    }
}
