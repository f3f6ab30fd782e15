package dev.guestmem.memory;

import dev.guestmem.memory.internal.dirty.MarkFence;
import java.util.Optional;

/**
 * The heavy half of an asymmetric fence: what lets a dirty mark be plain reads while every take of dirty bits stays
 * exact. The light half is nothing at all on the writer's side (a guest store, then a plain read of its page's bitmap
 * word); the heavy half, {@link #heavy()}, is called by whoever takes bits, after the words are swapped or cleared and
 * before anyone reads the pages they name. Linux's {@code membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)} is such a
 * fence, and QEMU's {@code smp_mb_placeholder}/{@code smp_mb_global} pair (util/sys_membarrier.c) is the same idea.
 *
 * <h2>Contract of {@link #heavy()}</h2>
 * When {@code heavy()} returns, every thread of the process has executed a full memory barrier (store-load included)
 * at some point between the call's start and its return, or was not running at any point in between (a context
 * switch is such a barrier). So for any other thread's store followed in program order by a load: either the store is
 * visible to the caller once {@code heavy()} returns, or the load sees everything the caller wrote before calling.
 * This is why a mark may skip its fence: a writer that read its page's bit as set before a snapshot swapped it has its
 * guest data visible to the snapshot's reader, and one that reads after the swap sees the bit clear and sets it again.
 *
 * <h2>Which fence is installed</h2>
 * Chosen once, when the dirty bitmaps are first used, and the same for the life of the JVM ({@link #installed()}):
 * <ul>
 *   <li>the first {@link Provider} found by {@link java.util.ServiceLoader} that opens: memory-offheap provides
 *   {@code membarrier}, which opens on Linux x86_64 when native access is enabled for it
 *   ({@code --enable-native-access=dev.guestmem.offheap}, or {@code ALL-UNNAMED} on the class path) and the kernel
 *   registers the process for {@code MEMBARRIER_CMD_PRIVATE_EXPEDITED};</li>
 *   <li>otherwise {@link #fallback()}: every mark pays a full fence of its own (about 6 ns), and {@code heavy()} is
 *   one more full fence.</li>
 * </ul>
 * The system property {@code guestmem.fence} overrides the choice: {@code auto} (the default) as above,
 * {@code fallback} to use the fallback even where a provider would open. Any other value is refused, naming it, when
 * the dirty bitmaps are first used.
 *
 * <p>Threading: {@code heavy()} may be called by any number of threads at once; it takes no lock of guestmem's.
 */
public interface AsymmetricFence {
    /** A short name for reports: {@code membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)} or {@code fence per mark}. */
    String name();

    /** Forces a full memory barrier on every thread of the process (see the class comment). */
    void heavy();

    /** The fence the dirty bitmaps use, chosen once (see the class comment). */
    static AsymmetricFence installed() {
        return MarkFence.INSTALLED;
    }

    /**
     * The fallback: no process-wide barrier, so each mark fences on its own and {@link #heavy()} is a full fence of
     * the caller's.
     */
    static AsymmetricFence fallback() {
        return MarkFence.FALLBACK;
    }

    /**
     * A service that offers an asymmetric fence, found with {@link java.util.ServiceLoader}
     * ({@code provides dev.guestmem.memory.AsymmetricFence.Provider with ...}, or a
     * {@code META-INF/services/dev.guestmem.memory.AsymmetricFence$Provider} entry on the class path).
     */
    interface Provider {
        /**
         * Sets the fence up (registering the process with the kernel, say) and returns it, or empty where it cannot
         * work here (another OS, native access not enabled, a kernel without the call). Called at most once per JVM;
         * must not throw for a host that merely lacks the feature.
         */
        Optional<AsymmetricFence> open();
    }
}
