package dev.guestmem.memory.internal.dirty;

import dev.guestmem.memory.AsymmetricFence;
import dev.guestmem.memory.internal.Providers;
import java.lang.invoke.VarHandle;

/**
 * The {@link AsymmetricFence} the dirty bitmaps use, chosen once when this class is initialized (the first mark or
 * take of any bitmap), and whether marks must fence on their own ({@link #FENCE_PER_MARK}, a constant the JIT folds
 * into the mark's fast path). See {@link AsymmetricFence} for the choice and the property that overrides it.
 *
 * <p>Threading: immutable after class initialization.
 */
public final class MarkFence {
    /** The system property that overrides the choice: {@code auto} (the default) or {@code fallback}. */
    public static final String PROPERTY = "guestmem.fence";

    /** Each mark fences; {@code heavy()} is the caller's own full fence. */
    public static final AsymmetricFence FALLBACK = new AsymmetricFence() {
        @Override
        public String name() {
            return "fence per mark";
        }

        @Override
        public void heavy() {
            // Full fence: with marks fenced on their own, a take's volatile read-modify-write already orders what it
            // took; this one only keeps the contract "heavy() is a full fence of the caller" true for any other use.
            VarHandle.fullFence();
        }

        @Override
        public String toString() {
            return name();
        }
    };

    /** The fence in use. */
    public static final AsymmetricFence INSTALLED = choose(System.getProperty(PROPERTY, "auto"));

    /** Whether a mark needs its own full fence: true exactly when the fallback is installed. */
    static final boolean FENCE_PER_MARK = INSTALLED == FALLBACK;

    private MarkFence() {
    }

    /** The fence {@code setting} (the property's value) selects; see {@link AsymmetricFence}. */
    static AsymmetricFence choose(String setting) {
        switch (setting) {
            case "fallback":
                return FALLBACK;
            case "auto":
                break;
            default:
                throw new IllegalArgumentException(PROPERTY + "=" + setting + ": expected auto or fallback");
        }
        // A provider that cannot even be loaded or opened leaves the fallback, which is always correct.
        return Providers.firstOpen(AsymmetricFence.Provider.class, AsymmetricFence.Provider::open, FALLBACK,
                "asymmetric fence");
    }
}
