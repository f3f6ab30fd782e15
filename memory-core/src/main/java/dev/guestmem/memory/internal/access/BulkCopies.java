package dev.guestmem.memory.internal.access;

import dev.guestmem.memory.BulkCopier;
import dev.guestmem.memory.internal.Providers;
import java.lang.foreign.MemorySegment;

/**
 * The {@link BulkCopier} the access path's direct pieces go through, chosen once when this class is initialized (the
 * first bulk copy between guest RAM and a caller's segment). A {@code static final} field, so the JIT sees one
 * receiver and inlines the copier's {@code copy} into {@link AccessPath}. See {@link BulkCopier} for the choice and
 * the property that overrides it.
 *
 * <p>Threading: immutable after class initialization.
 */
public final class BulkCopies {
    /** The system property that overrides the choice: {@code auto} (the default) or {@code jdk}. */
    public static final String PROPERTY = "guestmem.copy";

    /** The JDK's {@link MemorySegment#copy}. */
    public static final BulkCopier JDK = new BulkCopier() {
        @Override
        public String name() {
            return "MemorySegment.copy";
        }

        @Override
        public void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long bytes) {
            MemorySegment.copy(src, srcOffset, dst, dstOffset, bytes);
        }

        @Override
        public String toString() {
            return name();
        }
    };

    /** The copier in use. */
    public static final BulkCopier INSTALLED = choose(System.getProperty(PROPERTY, "auto"));

    private BulkCopies() {
    }

    /** The copier {@code setting} (the property's value) selects; see {@link BulkCopier}. */
    static BulkCopier choose(String setting) {
        switch (setting) {
            case "jdk":
                return JDK;
            case "auto":
                break;
            default:
                throw new IllegalArgumentException(PROPERTY + "=" + setting + ": expected auto or jdk");
        }
        // A provider that cannot even be loaded or opened leaves the JDK's copy, which is always correct.
        return Providers.firstOpen(BulkCopier.Provider.class, BulkCopier.Provider::open, JDK, "bulk copier");
    }
}
