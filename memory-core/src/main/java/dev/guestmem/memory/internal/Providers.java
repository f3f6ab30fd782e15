package dev.guestmem.memory.internal;

import java.util.Optional;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.function.Function;

/**
 * The one way memory-core picks an optional native helper that another module provides (the asymmetric fence, the
 * bulk copier): the first provider {@link ServiceLoader} finds that opens, else memory-core's own pure-Java fallback,
 * which is always correct.
 *
 * <p>Threading: called from class initializers; holds no state.
 */
public final class Providers {
    private Providers() {
    }

    /**
     * The first {@code service} provider for which {@code open} gives a value, or {@code fallback}. A provider that
     * cannot be loaded or throws leaves the fallback, logged as a warning naming {@code what} and {@code fallback}.
     */
    public static <P, T> T firstOpen(Class<P> service, Function<P, Optional<T>> open, T fallback, String what) {
        try {
            for (P p : ServiceLoader.load(service, Providers.class.getClassLoader())) {
                Optional<T> opened = open.apply(p);
                if (opened.isPresent()) {
                    return opened.get();
                }
            }
        } catch (ServiceConfigurationError | RuntimeException e) {
            System.getLogger(service.getName()).log(System.Logger.Level.WARNING,
                    what + " provider failed, using " + fallback + ": " + e);
        }
        return fallback;
    }
}
