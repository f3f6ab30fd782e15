package dev.guestmem.memory.internal;

import dev.guestmem.memory.MemorySystem;

/**
 * Where the internal layers find the one bridge into the API package's own state, as the JDK's
 * {@code jdk.internal.access.SharedSecrets}: the API registers its {@link CoreAccess} once, from
 * {@code MemorySystem}'s static initializer, and internal code reads it here instead of reaching into package-private
 * members it cannot see.
 *
 * <p>The bridge is for cold paths only (commits, rendering, dispatch building, setup, and the slow paths of an access:
 * IOMMU hops, retries after a block was freed). An access's fast path never goes through it.
 *
 * <p>Threading: {@link #coreAccess()} may be called from any thread; the registration happens once, in a class
 * initializer, so the JVM's initialization lock orders it before every read.
 */
public final class SharedSecrets {
    /** Written once by the API's class initializer; read by {@link Holder}'s initializer. */
    private static volatile CoreAccess registered;

    private SharedSecrets() {
    }

    /** Registers the API's bridge; called once, by {@code MemorySystem}'s static initializer. */
    public static void setCoreAccess(CoreAccess access) {
        if (registered != null) {
            throw new IllegalStateException("coreAccess=" + registered + ": already registered");
        }
        registered = access;
    }

    /** The API's bridge. The first call initializes {@code MemorySystem} if nothing has yet. */
    public static CoreAccess coreAccess() {
        return Holder.ACCESS;
    }

    /** Holds the bridge in a constant, so that the JIT folds the lookup away once it is initialized. */
    private static final class Holder {
        static final CoreAccess ACCESS = load();

        private static CoreAccess load() {
            CoreAccess a = registered;
            if (a == null) {
                try {
                    // The class literal alone does not initialize it; its initializer registers the bridge.
                    Class.forName("dev.guestmem.memory.MemorySystem", true, SharedSecrets.class.getClassLoader());
                } catch (ClassNotFoundException e) {
                    throw new ExceptionInInitializerError(e);
                }
                a = registered;
            }
            if (a == null) {
                throw new IllegalStateException("coreAccess=null: MemorySystem registered no bridge");
            }
            return a;
        }
    }
}
