package dev.guestmem.bench.peers;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.BulkCopier;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import dev.guestmem.memory.internal.dispatch.RangeAccess;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.TimeUnit;

import static dev.guestmem.bench.peers.PeersPattern.COPIES;
import static dev.guestmem.bench.peers.PeersPattern.PAGE_SIZE;

/**
 * Where the time of the peers' 4 KiB copies goes ({@link PeersBenchmark}'s {@code Write4k} and {@code Read4k}
 * columns: a native 4 KiB buffer copied into, or out of, a random whole page of the 64 MiB of guest RAM,
 * {@value PeersPattern#COPIES} pages per invocation, the peers' own addresses), each row a cut-down copy next to the
 * real one, in both directions ({@code ...Read} rows copy the page into the buffer):
 * <ul>
 *   <li>{@code rawCopy}/{@code rawReadCopy}: {@link MemorySegment#copy} (the JDK's {@code Unsafe.copyMemory}) with one
 *   64 MiB segment at the same offsets (the peers' raw row); {@code rawLongs}: the same bytes as 512 8-byte loads and
 *   stores (whether a hand-written copy beats the JDK's);</li>
 *   <li>{@code rawMemmoveAddress}/{@code rawReadMemmoveAddress}: the C library's {@code memmove} through a critical
 *   downcall taking the two host addresses as {@code long}s: no scope, no check, the floor of any copy through
 *   {@code memmove} (vm-memory's {@code write_slice} is a {@code memcpy} on the same kind of memory);</li>
 *   <li>{@code rawMemmove}: the same downcall with the segments passed as slices, so that each call checks and holds
 *   both scopes, as memory-offheap's copier does;</li>
 *   <li>{@code copierWrite}/{@code copierRead}: the installed {@link BulkCopier} with the raw segment: the copier's
 *   own checks on top;</li>
 *   <li>{@code rawCopyPiece} and {@code rawMemmove} copy {@code size} bytes (default 4 KiB) to the start of each
 *   page, to find the size below which the JDK's copy wins ({@code -p size=64,256,1024,4096});</li>
 *   <li>{@code rangeCopy}/{@code rangeRead}: the dispatch's {@link AddressSpaceDispatch#rangeAccess} of each page
 *   (the dispatch loaded once), then the installed copier with the range's segment: the lookup and the copy, without
 *   results, marks or the general path's checks; {@code rangeReadJdk}: the same lookup, then the JDK's copy (guest
 *   RAM's arena is shared, so a downcall's scope is two atomic updates per copy, where the JDK's copy has none: whether
 *   that outweighs {@code memmove}'s loop for a read);</li>
 *   <li>{@code addressSpaceWrite}/{@code addressSpaceRead}: {@link AddressSpace#write} and {@link AddressSpace#read},
 *   as the peers' rows, through the installed {@link BulkCopier} ({@code -jvmArgsAppend -Dguestmem.copy=jdk} for the
 *   JDK's copy).</li>
 * </ul>
 * Each returns the memory it wrote or the OR of the results, which must be OK.
 *
 * <p>Run: {@code ./guestmem bench PageWriteBenchmark} ({@code -p regions=1,100,1000}; {@code -prof gc} for the
 * allocation per copy, which must be 0).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(COPIES)
public class PageWriteBenchmark {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG_UNALIGNED;
    /** {@code void *memmove(void *dest, const void *src, size_t n)}, critical, the result ignored. */
    private static final MethodHandle MEMMOVE = memmove(ValueLayout.ADDRESS);
    /** The same with the addresses as {@code long}s: no segment, so no scope to check or hold. */
    private static final MethodHandle MEMMOVE_ADDRESS = memmove(ValueLayout.JAVA_LONG);
    private static final BulkCopier COPIER = BulkCopier.installed();
    /** For the peers' own raw rows. */
    private static final PeersBenchmark PEERS = new PeersBenchmark();

    /** How many bytes {@code rawCopyPiece} and {@code rawMemmove} copy to each page. */
    @State(Scope.Benchmark)
    public static class Piece {
        @Param({"4096"})
        public int size;
    }

    @SuppressWarnings("restricted") // the baseline of memory-offheap's downcall, made the same way
    private static MethodHandle memmove(ValueLayout pointer) {
        Linker linker = Linker.nativeLinker();
        return linker.downcallHandle(linker.defaultLookup().find("memmove").orElseThrow(),
                FunctionDescriptor.ofVoid(pointer, pointer, ValueLayout.JAVA_LONG), Linker.Option.critical(false));
    }

    @Benchmark
    public MemorySegment rawCopy(PeersBenchmark.Raw raw) {
        return PeersBenchmark.rawWrites4k(raw);
    }

    @Benchmark
    public MemorySegment rawLongs(PeersBenchmark.Raw raw) {
        final MemorySegment ram = raw.ram;
        final MemorySegment buffer = raw.buffer;
        for (long off : raw.pages) {
            for (int i = 0; i < PAGE_SIZE; i += 8) {
                ram.set(L, off + i, buffer.get(L, i));
            }
        }
        return ram;
    }

    @Benchmark
    public MemorySegment rawCopyPiece(PeersBenchmark.Raw raw, Piece piece) {
        final MemorySegment ram = raw.ram;
        final MemorySegment buffer = raw.buffer;
        final int size = piece.size;
        for (long off : raw.pages) {
            MemorySegment.copy(buffer, 0, ram, off, size);
        }
        return ram;
    }

    @Benchmark
    public MemorySegment rawMemmove(PeersBenchmark.Raw raw, Piece piece) throws Throwable {
        final MemorySegment ram = raw.ram;
        final MemorySegment buffer = raw.buffer;
        final long size = piece.size;
        for (long off : raw.pages) {
            MEMMOVE.invokeExact(ram.asSlice(off, size), buffer.asSlice(0, size), size);
        }
        return ram;
    }

    @Benchmark
    public MemorySegment rawMemmoveAddress(PeersBenchmark.Raw raw) throws Throwable {
        final MemorySegment ram = raw.ram;
        final long base = ram.address();
        final long buffer = raw.buffer.address();
        for (long off : raw.pages) {
            MEMMOVE_ADDRESS.invokeExact(base + off, buffer, (long) PAGE_SIZE);
        }
        return ram;
    }

    @Benchmark
    public MemorySegment copierWrite(PeersBenchmark.Raw raw) {
        final MemorySegment ram = raw.ram;
        final MemorySegment buffer = raw.buffer;
        for (long off : raw.pages) {
            COPIER.copy(buffer, 0, ram, off, PAGE_SIZE);
        }
        return ram;
    }

    @Benchmark
    public MemorySegment rawReadCopy(PeersBenchmark.Raw raw) {
        return PEERS.rawRead4k(raw);
    }

    @Benchmark
    public MemorySegment rawReadMemmoveAddress(PeersBenchmark.Raw raw) throws Throwable {
        final long base = raw.ram.address();
        final MemorySegment buffer = raw.buffer;
        final long dst = buffer.address();
        for (long off : raw.pages) {
            MEMMOVE_ADDRESS.invokeExact(dst, base + off, (long) PAGE_SIZE);
        }
        return buffer;
    }

    @Benchmark
    public MemorySegment copierRead(PeersBenchmark.Raw raw) {
        final MemorySegment ram = raw.ram;
        final MemorySegment buffer = raw.buffer;
        for (long off : raw.pages) {
            COPIER.copy(ram, off, buffer, 0, PAGE_SIZE);
        }
        return buffer;
    }

    @Benchmark
    public int rangeRead(PeersBenchmark.Guest guest) {
        return rangeReads(guest, COPIER, "rangeRead");
    }

    @Benchmark
    public int rangeReadJdk(PeersBenchmark.Guest guest) {
        return rangeReads(guest, BulkCopier.jdk(), "rangeReadJdk");
    }

    /**
     * The range lookup of each page, then {@code copier} from the range's segment into the buffer; OK when every
     * range read directly. JMH runs each row in a JVM of its own, so the copier's call is monomorphic in each.
     */
    private static int rangeReads(PeersBenchmark.Guest guest, BulkCopier copier, String row) {
        final AddressSpaceDispatch d = AddressSpaceDispatch.of(guest.map.addressSpace());
        final MemorySegment buffer = guest.map.buffer();
        int flags = RangeAccess.READ;
        for (long addr : guest.map.pages()) {
            RangeAccess r = d.rangeAccess(addr);
            copier.copy(r.ram, addr + r.delta, buffer, 0, PAGE_SIZE);
            flags &= r.flags;
        }
        return PeersBenchmark.requireOk(flags == RangeAccess.READ ? MemTxResult.OK : MemTxResult.ERROR, row);
    }

    @Benchmark
    public int addressSpaceRead(PeersBenchmark.Guest guest) {
        final AddressSpace as = guest.map.addressSpace();
        final MemorySegment buffer = guest.map.buffer();
        int result = MemTxResult.OK;
        for (long addr : guest.map.pages()) {
            result |= as.read(addr, U, buffer, 0, PAGE_SIZE);
        }
        return PeersBenchmark.requireOk(result, "read");
    }

    @Benchmark
    public int rangeCopy(PeersBenchmark.Guest guest) {
        final AddressSpaceDispatch d = AddressSpaceDispatch.of(guest.map.addressSpace());
        final MemorySegment buffer = guest.map.buffer();
        int flags = RangeAccess.WRITE;
        for (long addr : guest.map.pages()) {
            RangeAccess r = d.rangeAccess(addr);
            COPIER.copy(buffer, 0, r.ram, addr + r.delta, PAGE_SIZE);
            flags &= r.flags;
        }
        return PeersBenchmark.requireOk(flags == RangeAccess.WRITE ? MemTxResult.OK : MemTxResult.ERROR, "rangeCopy");
    }

    @Benchmark
    public int addressSpaceWrite(PeersBenchmark.Guest guest) {
        final AddressSpace as = guest.map.addressSpace();
        final MemorySegment buffer = guest.map.buffer();
        int result = MemTxResult.OK;
        for (long addr : guest.map.pages()) {
            result |= as.write(addr, U, buffer, 0, PAGE_SIZE);
        }
        return PeersBenchmark.requireOk(result, "write");
    }
}
