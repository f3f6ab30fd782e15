package dev.guestmem.memory;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.util.function.LongSupplier;

/**
 * The JVM's count of the bytes the calling thread has allocated, for the tests that show a path allocates nothing once
 * warm. Reached by reflection because the tests compile inside the {@code dev.guestmem.core} module, which does not
 * read {@code jdk.management}.
 */
final class ThreadAllocation {
    private ThreadAllocation() {
    }

    /** The calling thread's allocation counter, in bytes; skips the test (an assumption) where the JVM has none. */
    static LongSupplier counter() throws ReflectiveOperationException {
        Object bean = Class.forName("java.lang.management.ManagementFactory").getMethod("getThreadMXBean")
                .invoke(null);
        Class<?> sunBean = Class.forName("com.sun.management.ThreadMXBean");
        assumeTrue(sunBean.isInstance(bean)
                && (Boolean) sunBean.getMethod("isThreadAllocatedMemorySupported").invoke(bean),
                "no per-thread allocation counter");
        sunBean.getMethod("setThreadAllocatedMemoryEnabled", boolean.class).invoke(bean, true);
        MethodHandle counter = MethodHandles.publicLookup()
                .unreflect(sunBean.getMethod("getCurrentThreadAllocatedBytes")).bindTo(bean);
        return () -> {
            try {
                return (long) counter.invoke();
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
        };
    }
}
