package dev.guestmem.offheap.internal.linux;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.guestmem.memory.BulkCopier;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * The {@link BulkCopier} of Linux: pieces of at least {@link #THRESHOLD} bytes between two native segments go to the
 * C library's {@code memmove} through a critical downcall (no thread-state transition: the cheapest call the JVM
 * has), everything else to the JDK's {@link MemorySegment#copy}. glibc's {@code memmove} is its {@code memcpy} (one
 * implementation on x86_64, which checks for overlap once), so overlapping ranges cost nothing extra and need no
 * assumption.
 *
 * <p>What keeps native code from hurting the JVM, checked in Java before each call:
 * <ul>
 *   <li>both ranges inside their segments ({@link IndexOutOfBoundsException}, one line of {@code key=value});</li>
 *   <li>both segments alive and accessible from this thread: each piece is passed as a slice of its segment, and a
 *   downcall checks its argument's scope and keeps it alive for the call (so a block's arena cannot close under the
 *   copy: its free waits, see {@code AbstractRamBlock.closeArena});</li>
 *   <li>heap segments, read-only destinations, file mappings of the JDK's ({@link MemorySegment#isMapped()}) and the
 *   mappings this module made over memory that can fault ({@link FaultingMappings}) all take the JDK's copy, whose
 *   accesses turn a SIGBUS or a write to read-only memory into an exception;</li>
 *   <li>one call copies at most {@link #MAX_CALL} bytes, since a critical downcall holds up safepoints for its length
 *   (the JDK's own copy polls between pieces of the same size).</li>
 * </ul>
 *
 * <p>Threading: {@link #copy} from any thread, any number at once.
 */
public final class Memmove implements BulkCopier {
    /**
     * Pieces below this many bytes take the JDK's copy. Measured with {@code PageWriteBenchmark}'s
     * {@code rawCopyPiece} and {@code rawMemmove} (see the README's "The 4 KiB write, looked into"): from 256 bytes to
     * 2 KiB the JDK's copy was as fast or faster (a downcall's fixed cost, the two scopes held and let go, is tens of
     * nanoseconds), at 4 KiB {@code memmove} was faster in every run.
     */
    public static final long THRESHOLD = 4096;

    /** At most this many bytes per call (1 MiB: about 100 us, the JDK's own chunk for {@code copyMemory}). */
    static final long MAX_CALL = 1 << 20;

    /** {@code void *memmove(void *dest, const void *src, size_t n)}, the result ignored. */
    private static final FunctionDescriptor MEMMOVE = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG);

    private final long threshold;

    Memmove(long threshold) {
        this.threshold = threshold;
    }

    /**
     * The downcall, in a holder so that it is looked up only once a copier opens. A {@code static final} constant:
     * the JIT then inlines the call into the copy and keeps the two slices in registers (an instance field holding the
     * handle allocated both slices on every call, 80 bytes a copy).
     */
    private static final class Downcall {
        /** Null where the C library has no {@code memmove}. */
        static final MethodHandle MEMMOVE = criticalDowncall();
    }

    /** The service memory-core finds; see {@link Memmove}. */
    public static final class Provider implements BulkCopier.Provider {
        /** For {@link java.util.ServiceLoader}. */
        public Provider() {
        }

        @Override
        public Optional<BulkCopier> open() {
            return Memmove.open(THRESHOLD);
        }
    }

    /** The copier, or empty where it cannot work: another host, native access not enabled here, no {@code memmove}. */
    static Optional<BulkCopier> open(long threshold) {
        if (!Linux.isSupportedPlatform() || !Memmove.class.getModule().isNativeAccessEnabled()) {
            return Optional.empty();
        }
        // Links the downcall now: a C library without memmove leaves the JDK's copy instead of failing a copy later.
        return Downcall.MEMMOVE == null ? Optional.empty() : Optional.of(new Memmove(threshold));
    }

    @SuppressWarnings("restricted") // this package is where the module's native calls are made, on purpose
    private static MethodHandle criticalDowncall() {
        final Linker linker = Linker.nativeLinker();
        // Heap segments are never passed (they take the JDK's copy), so the call need not allow them.
        return linker.defaultLookup().find("memmove")
                .map(symbol -> linker.downcallHandle(symbol, MEMMOVE, Linker.Option.critical(false)))
                .orElse(null);
    }

    @Override
    public String name() {
        return "memmove (critical downcall) from " + threshold + " bytes";
    }

    @Override
    public void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long bytes) {
        if (bytes < threshold || !src.isNative() || !dst.isNative() || dst.isReadOnly() || src.isMapped()
                || dst.isMapped()) {
            MemorySegment.copy(src, srcOffset, dst, dstOffset, bytes);
            return;
        }
        checkBounds("src", src, srcOffset, bytes);
        checkBounds("dst", dst, dstOffset, bytes);
        if (FaultingMappings.overlapsEither(src.address() + srcOffset, dst.address() + dstOffset, bytes)) {
            MemorySegment.copy(src, srcOffset, dst, dstOffset, bytes);
            return;
        }
        if (bytes <= MAX_CALL) {
            call(src, srcOffset, dst, dstOffset, bytes);
            return;
        }
        // In calls of MAX_CALL bytes. Each call is a memmove, but between calls the pieces must still go in the order
        // that never overwrites a source byte before it is read: from the end when the destination starts inside the
        // source, as memmove itself does.
        final long srcAddress = src.address() + srcOffset;
        final long dstAddress = dst.address() + dstOffset;
        final boolean backwards = Long.compareUnsigned(dstAddress - srcAddress, bytes) < 0 && dstAddress != srcAddress;
        for (long done = 0; done < bytes; ) {
            long n = Math.min(bytes - done, MAX_CALL);
            long at = backwards ? bytes - done - n : done;
            call(src, srcOffset + at, dst, dstOffset + at, n);
            done += n;
        }
    }

    /** One call: {@code n} bytes, at most {@link #MAX_CALL}, the ranges already checked. */
    private void call(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long n) {
        try {
            // Slices: the call checks each one's scope (alive, this thread may use it) and holds it for the call.
            Downcall.MEMMOVE.invokeExact(dst.asSlice(dstOffset, n), src.asSlice(srcOffset, n), n);
        } catch (Throwable t) {
            throw Linux.unexpected(t);
        }
    }

    /** Refuses {@code [offset, offset+bytes)} unless it lies inside {@code segment}, before anything is copied. */
    private static void checkBounds(String which, MemorySegment segment, long offset, long bytes) {
        if (offset < 0 || offset > segment.byteSize() - bytes) {
            throw outOfBounds(which, segment, offset, bytes);
        }
    }

    private static IndexOutOfBoundsException outOfBounds(String which, MemorySegment segment, long offset,
                                                         long bytes) {
        return new IndexOutOfBoundsException(which + "Offset=" + offset + " bytes=" + bytes + " " + which + "Size="
                + segment.byteSize() + ": the range is not inside the segment");
    }

    @Override
    public String toString() {
        return name();
    }
}
