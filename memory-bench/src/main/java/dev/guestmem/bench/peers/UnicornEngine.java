package dev.guestmem.bench.peers;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteOrder;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One Unicorn 2 engine (Debian's {@code libunicorn2}, {@value #LIBRARY}) through FFM downcalls: an x86-64 engine
 * ({@code uc_open(UC_ARCH_X86, UC_MODE_64)}) whose guest memory is mapped with {@code uc_mem_map} (Unicorn allocates
 * it) and accessed with {@code uc_mem_read} and {@code uc_mem_write}, what an emulator built on Unicorn uses to reach
 * guest memory from outside the emulated CPU. Only as much of the API as the peer comparison needs.
 *
 * <p>The two memory calls are linked as {@linkplain Linker.Option#critical critical}: they copy between guest memory
 * and a buffer and never call back into Java, so the JVM can skip the thread-state transition of a normal downcall;
 * this is the cheapest way the JVM can call Unicorn, so the figures are Unicorn's own cost plus the least the binding
 * adds.
 *
 * <p>Threading: an engine is used by one thread at a time (Unicorn's engines are not thread-safe); {@link #close}
 * frees it once, after which every call throws.
 */
final class UnicornEngine implements AutoCloseable {
    /** The shared library Debian's {@code libunicorn2} installs. */
    static final String LIBRARY = "libunicorn.so.2";
    /** {@code UC_ERR_OK}. */
    static final int UC_ERR_OK = 0;
    private static final int UC_ARCH_X86 = 4;
    private static final int UC_MODE_64 = 1 << 3;
    private static final int UC_PROT_ALL = 7;

    private MemorySegment uc;
    private final Arena scratchArena = Arena.ofShared(); // JMH may set up on another thread than it measures on
    /** 8 bytes for {@link #readLong}, {@link #writeLong}. */
    private final MemorySegment scratch = scratchArena.allocate(8, 8);

    private UnicornEngine(MemorySegment uc) {
        this.uc = uc;
    }

    /** Why Unicorn cannot be used here, or empty when it can. */
    static Optional<String> unavailable() {
        return Optional.ofNullable(Native.UNAVAILABLE);
    }

    /**
     * Opens an x86-64 engine with no memory mapped.
     *
     * @throws IllegalStateException when Unicorn is {@linkplain #unavailable unavailable} or {@code uc_open} fails
     */
    static UnicornEngine open() {
        requireLibrary();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment handle = arena.allocate(ADDRESS);
            int err = (int) Native.F.open().invokeExact(UC_ARCH_X86, UC_MODE_64, handle);
            check(err, "uc_open(arch=UC_ARCH_X86, mode=UC_MODE_64)");
            return new UnicornEngine(handle.get(ADDRESS, 0));
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("uc_open: " + t, t);
        }
    }

    /**
     * Unicorn's version from {@code uc_version}: {@code major.minor} from its out-parameters, and {@code .patch} when
     * the return value is Unicorn 2's encoding ({@code major << 24 | minor << 16 | patch << 8 | extra}) of the same
     * major and minor, e.g. {@code 2.0.1}.
     */
    static String version() {
        requireLibrary();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment major = arena.allocate(JAVA_INT);
            MemorySegment minor = arena.allocate(JAVA_INT);
            int v = (int) Native.F.version().invokeExact(major, minor);
            int maj = major.get(JAVA_INT, 0);
            int min = minor.get(JAVA_INT, 0);
            String version = maj + "." + min;
            return (v >>> 24) == maj && ((v >>> 16) & 0xff) == min ? version + "." + ((v >>> 8) & 0xff) : version;
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("uc_version: " + t, t);
        }
    }

    /**
     * {@code uc_mem_map} of {@code size} bytes at guest-physical {@code addr}, readable, writable and executable;
     * Unicorn allocates the memory (zeroed).
     *
     * @throws IllegalStateException naming the call and Unicorn's error (unaligned, overlapping, out of memory)
     */
    void map(long addr, long size) {
        MemorySegment engine = handle();
        int err;
        try {
            err = (int) Native.F.memMap().invokeExact(engine, addr, size, UC_PROT_ALL);
        } catch (Throwable t) {
            throw new IllegalStateException("uc_mem_map: " + t, t);
        }
        check(err, "uc_mem_map(address=0x" + Long.toHexString(addr) + ", size=0x" + Long.toHexString(size) + ")");
    }

    /** {@code uc_mem_read} of {@code len} bytes at {@code addr} into native {@code dst}; returns the {@code uc_err}. */
    int read(long addr, MemorySegment dst, long len) {
        MemorySegment engine = handle();
        try {
            return (int) Native.F.memRead().invokeExact(engine, addr, dst, len);
        } catch (Throwable t) {
            throw new IllegalStateException("uc_mem_read: " + t, t);
        }
    }

    /** {@code uc_mem_write} of {@code len} bytes of native {@code src} at {@code addr}; returns the {@code uc_err}. */
    int write(long addr, MemorySegment src, long len) {
        MemorySegment engine = handle();
        try {
            return (int) Native.F.memWrite().invokeExact(engine, addr, src, len);
        } catch (Throwable t) {
            throw new IllegalStateException("uc_mem_write: " + t, t);
        }
    }

    /**
     * The little-endian 8-byte word at {@code addr} (x86 is little-endian).
     *
     * @throws IllegalStateException when {@code uc_mem_read} fails (an unmapped address)
     */
    long readLong(long addr) {
        check(read(addr, scratch, 8), "uc_mem_read(address=0x" + Long.toHexString(addr) + ", size=8)");
        return scratch.get(LE_LONG, 0);
    }

    /**
     * Writes {@code value} little-endian at {@code addr}.
     *
     * @throws IllegalStateException when {@code uc_mem_write} fails (an unmapped address)
     */
    void writeLong(long addr, long value) {
        scratch.set(LE_LONG, 0, value);
        check(write(addr, scratch, 8), "uc_mem_write(address=0x" + Long.toHexString(addr) + ", size=8)");
    }

    /** Throws a {@code key=value} message naming {@code call} and Unicorn's error unless {@code err} is OK. */
    static void check(int err, String call) {
        if (err != UC_ERR_OK) {
            throw new IllegalStateException(call + " failed: uc_err=" + err + " (" + strerror(err) + ")");
        }
    }

    /** {@code uc_close}: frees the engine and its memory; the second and later calls do nothing. */
    @Override
    public void close() {
        MemorySegment engine = uc;
        if (engine == null) {
            return;
        }
        uc = null;
        scratchArena.close();
        int err;
        try {
            err = (int) Native.F.close().invokeExact(engine);
        } catch (Throwable t) {
            throw new IllegalStateException("uc_close: " + t, t);
        }
        check(err, "uc_close");
    }

    private MemorySegment handle() {
        MemorySegment engine = uc;
        if (engine == null) {
            throw new IllegalStateException("engine=closed: uc_close was called");
        }
        return engine;
    }

    private static void requireLibrary() {
        if (Native.UNAVAILABLE != null) {
            throw new IllegalStateException(Native.UNAVAILABLE);
        }
    }

    private static String strerror(int err) {
        try {
            MemorySegment text = (MemorySegment) Native.F.strerror().invokeExact(err);
            return text.equals(MemorySegment.NULL) ? "?" : text.getString(0);
        } catch (Throwable t) {
            return "?";
        }
    }

    private static final ValueLayout.OfLong LE_LONG = JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The library's functions, looked up once. */
    private record Functions(MethodHandle open, MethodHandle close, MethodHandle version, MethodHandle strerror,
                             MethodHandle memMap, MethodHandle memRead, MethodHandle memWrite) {

        @SuppressWarnings("restricted") // loading the peer's library and calling it is the point of this class
        static Functions load() {
            SymbolLookup lookup = SymbolLookup.libraryLookup(LIBRARY, Arena.global());
            Linker linker = Linker.nativeLinker();
            Linker.Option critical = Linker.Option.critical(false);
            // const char *uc_strerror(uc_err): a static string of unknown length, hence the unbounded target.
            AddressLayout cString = ADDRESS.withTargetLayout(MemoryLayout.sequenceLayout(Long.MAX_VALUE, JAVA_BYTE));
            return new Functions(
                    downcall(linker, lookup, "uc_open", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS)),
                    downcall(linker, lookup, "uc_close", FunctionDescriptor.of(JAVA_INT, ADDRESS)),
                    downcall(linker, lookup, "uc_version", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS)),
                    downcall(linker, lookup, "uc_strerror", FunctionDescriptor.of(cString, JAVA_INT)),
                    downcall(linker, lookup, "uc_mem_map",
                            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT)),
                    downcall(linker, lookup, "uc_mem_read",
                            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG), critical),
                    downcall(linker, lookup, "uc_mem_write",
                            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG), critical));
        }

        @SuppressWarnings("restricted")
        private static MethodHandle downcall(Linker linker, SymbolLookup lookup, String name, FunctionDescriptor fd,
                                             Linker.Option... options) {
            MemorySegment symbol = lookup.find(name).orElseThrow(() -> new IllegalArgumentException(
                    "symbol=" + name + " missing"));
            return linker.downcallHandle(symbol, fd, options);
        }
    }

    /** The functions, or null with {@link #UNAVAILABLE} saying why; a holder so that only a use loads the library. */
    private static final class Native {
        static final Functions F;
        static final String UNAVAILABLE;

        static {
            Functions functions = null;
            String reason = null;
            try {
                functions = Functions.load();
            } catch (IllegalArgumentException | IllegalCallerException e) {
                reason = "library=" + LIBRARY + " unusable (" + e.getMessage()
                        + "): install it with 'apt-get install libunicorn2'";
            }
            F = functions;
            UNAVAILABLE = reason;
        }

        private Native() {
        }
    }
}
