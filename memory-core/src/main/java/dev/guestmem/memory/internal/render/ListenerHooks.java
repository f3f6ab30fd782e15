package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.MemoryListener;
import dev.guestmem.memory.MemoryRegionSection;

/**
 * Which of a {@link MemoryListener}'s optional dirty-log callbacks it implements. A QEMU {@code MemoryListener} is a
 * table of function pointers, and QEMU passes over a listener whose {@code log_sync}, {@code log_sync_global} or
 * {@code log_clear} is NULL without walking a view for it; a Java listener inherits empty defaults instead, so a
 * callback counts as implemented when the listener's class (or an interface between it and {@code MemoryListener})
 * overrides the default. Found once per class.
 *
 * <p>Threading: any thread; the per-class answer is cached in a {@link ClassValue}.
 */
public final class ListenerHooks {
    /** Overrides {@link MemoryListener#logSync}: synced per logged section. */
    public static final int LOG_SYNC = 1;
    /** Overrides {@link MemoryListener#logSyncGlobal}: synced once per sync. */
    public static final int LOG_SYNC_GLOBAL = 1 << 1;
    /** Overrides {@link MemoryListener#logClear}: told when dirty bits of a logged section are cleared. */
    public static final int LOG_CLEAR = 1 << 2;

    private static final ClassValue<Integer> HOOKS = new ClassValue<>() {
        @Override
        protected Integer computeValue(Class<?> type) {
            return (overrides(type, "logSync", MemoryRegionSection.class) ? LOG_SYNC : 0)
                    | (overrides(type, "logSyncGlobal") ? LOG_SYNC_GLOBAL : 0)
                    | (overrides(type, "logClear", MemoryRegionSection.class) ? LOG_CLEAR : 0);
        }
    };

    private ListenerHooks() {
    }

    /** What {@code listener} implements, a set of {@link #LOG_SYNC}, {@link #LOG_SYNC_GLOBAL}, {@link #LOG_CLEAR}. */
    public static int of(MemoryListener listener) {
        return HOOKS.get(listener.getClass());
    }

    /**
     * Throws unless {@code listener} may be registered: as QEMU's {@code memory_listener_register} asserts, a listener
     * syncs per section or for its whole address space, never both.
     */
    public static void checkRegistrable(MemoryListener listener) {
        if ((of(listener) & (LOG_SYNC | LOG_SYNC_GLOBAL)) == (LOG_SYNC | LOG_SYNC_GLOBAL)) {
            throw new IllegalArgumentException("listener=" + listener.name() + " class=" + listener.getClass().getName()
                    + ": overrides both logSync and logSyncGlobal; a listener syncs per section or globally, not both");
        }
    }

    private static boolean overrides(Class<?> type, String name, Class<?>... parameters) {
        try {
            return type.getMethod(name, parameters).getDeclaringClass() != MemoryListener.class;
        } catch (NoSuchMethodException e) {
            throw new AssertionError("MemoryListener." + name + " is gone", e);
        }
    }
}
