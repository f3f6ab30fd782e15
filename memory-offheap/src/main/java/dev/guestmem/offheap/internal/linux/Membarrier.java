package dev.guestmem.offheap.internal.linux;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.guestmem.memory.AsymmetricFence;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * The {@link AsymmetricFence} of Linux: {@code membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)} through the C library's
 * {@code syscall}, the process registered once with {@code MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED} when the fence
 * is opened. The kernel interrupts every CPU that runs a thread of this process and has it execute a full barrier
 * (threads not running went through a context switch, which is one), and returns when all have: about a microsecond,
 * paid once per take of dirty bits instead of a fence per guest store. QEMU's {@code smp_mb_global} (built with
 * {@code --enable-membarrier}) asks the same of the kernel with {@code MEMBARRIER_CMD_SHARED}, which waits for every
 * CPU of the system instead of interrupting only this process's.
 *
 * <p>Opens (see {@link AsymmetricFence.Provider}) only on Linux x86_64, when native access is enabled for this module
 * (so a restricted call never warns), and when the kernel answers {@code MEMBARRIER_CMD_QUERY} with both commands and
 * accepts the registration; otherwise the dirty bitmaps keep the fence per mark.
 *
 * <p>Threading: {@link #heavy()} from any thread, any number at once.
 */
public final class Membarrier implements AsymmetricFence {
    /** {@code __NR_membarrier} on x86_64. */
    static final long SYS_MEMBARRIER = 324;
    static final long CMD_QUERY = 0;
    static final long CMD_PRIVATE_EXPEDITED = 1 << 3;
    static final long CMD_REGISTER_PRIVATE_EXPEDITED = 1 << 4;

    /** {@code long syscall(long number, ...)}, the three arguments passed as longs (cmd, flags, cpu_id). */
    private static final FunctionDescriptor SYSCALL =
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG);

    /** The fence's own downcall: no errno capture, so a call allocates nothing. */
    private final MethodHandle expedited;

    private Membarrier(MethodHandle expedited) {
        this.expedited = expedited;
    }

    /** The service memory-core finds; see {@link Membarrier}. */
    public static final class Provider implements AsymmetricFence.Provider {
        /** For {@link java.util.ServiceLoader}. */
        public Provider() {
        }

        @Override
        public Optional<AsymmetricFence> open() {
            return Membarrier.open();
        }
    }

    /** Registers the process and returns the fence, or empty where it cannot work (see the class comment). */
    static Optional<AsymmetricFence> open() {
        if (!Linux.isSupportedPlatform() || !Membarrier.class.getModule().isNativeAccessEnabled()) {
            return Optional.empty();
        }
        final MethodHandle withErrno = Linux.downcall("syscall", SYSCALL, Linker.Option.firstVariadicArg(1));
        final long needed = CMD_PRIVATE_EXPEDITED | CMD_REGISTER_PRIVATE_EXPEDITED;
        final long supported = call(withErrno, CMD_QUERY);
        if (supported < 0 || (supported & needed) != needed || call(withErrno, CMD_REGISTER_PRIVATE_EXPEDITED) != 0) {
            return Optional.empty();
        }
        return Optional.of(new Membarrier(plainDowncall()));
    }

    @SuppressWarnings("restricted") // this package is where the module's native calls are made, on purpose
    private static MethodHandle plainDowncall() {
        final Linker linker = Linker.nativeLinker();
        final MemorySegment symbol = linker.defaultLookup().find("syscall")
                .orElseThrow(() -> new UnsupportedOperationException("symbol=syscall: not in the C library"));
        return linker.downcallHandle(symbol, SYSCALL, Linker.Option.firstVariadicArg(1));
    }

    /** {@code membarrier(cmd, 0, 0)} through {@code withErrno}; -1 on failure (the errno is not needed to decide). */
    private static long call(MethodHandle withErrno, long cmd) {
        try (Arena arena = Arena.ofConfined()) {
            return (long) withErrno.invokeExact(Linux.state(arena), SYS_MEMBARRIER, cmd, 0L, 0L);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
    }

    @Override
    public String name() {
        return "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)";
    }

    @Override
    public void heavy() {
        final long r;
        try {
            r = (long) expedited.invokeExact(SYS_MEMBARRIER, CMD_PRIVATE_EXPEDITED, 0L, 0L);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
        if (r != 0) {
            // Registered at open, so the kernel has no reason to refuse; if it ever does, taking bits can no longer
            // be exact, and that must not pass in silence.
            throw new IllegalStateException("membarrier(cmd=PRIVATE_EXPEDITED) returned " + r);
        }
    }

    @Override
    public String toString() {
        return name();
    }
}
