package dev.guestmem.offheap.migration;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamFlag;
import dev.guestmem.memory.RamList;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * Saving, restoring and comparing guest RAM: QEMU's RAM migration ({@code migration/ram.c}) for a stopped machine,
 * over any byte channel (a file, a pipe, a TCP or Unix domain socket). {@link PreCopy} migrates a running one.
 *
 * <h2>Which blocks</h2>
 * A {@link RamList}'s <em>migratable</em> blocks ({@link #isMigratable}) are sent: every block with host memory that
 * is not read-only ({@link RamFlag#READONLY}, memory the guest cannot change, mapped from the same file at both ends)
 * and not freed. The destination must have a block of the same {@link RamBlock#idstr() idstr} and
 * {@link RamBlock#usedLength() used length} for each one, writable, and the same target page size; blocks of the
 * destination that the stream does not name are left alone (both as in QEMU).
 *
 * <h2>Errors</h2>
 * Every failure is a {@link MigrationException} with one {@code key=value} line naming the offending field or block.
 * A destination that does not match is refused before any of its RAM is written. A stream found corrupt later (a
 * checksum, a count) fails the restore with the pages before that point already loaded, as in QEMU: the destination
 * must not run then. No read or write waits longer than the I/O timeout for its peer.
 *
 * <p>Threading: each call runs on the caller's thread. A save reads the source's RAM while it runs, so its vCPUs must
 * be stopped (or use {@link PreCopy}); a restore writes the destination's RAM directly, so its vCPUs must not run.
 */
public final class RamMigration {
    /** How long a save or restore waits for its peer to move one byte before it fails. */
    public static final Duration DEFAULT_IO_TIMEOUT = Duration.ofSeconds(30);

    /** Bytes compared at a time. */
    private static final long COMPARE_CHUNK = 1 << 20;

    private RamMigration() {
    }

    /**
     * Whether {@code block} is migrated: it has host memory (not a layout-only block), is not
     * {@link RamFlag#READONLY} and is not freed.
     */
    public static boolean isMigratable(RamBlock block) {
        if (block.flags().contains(RamFlag.READONLY) || released(block)) {
            return false;
        }
        try {
            block.hostSegment();
            return true;
        } catch (IllegalStateException e) {
            return false; // a layout-only block has a size but no memory
        }
    }

    /** Whether {@code block}'s memory has been (or is being) freed. */
    static boolean released(RamBlock block) {
        // RamBlock is sealed: every block is an AbstractRamBlock.
        return ((AbstractRamBlock) block).isReleased();
    }

    /** The migratable blocks of {@code ram} that {@code filter} keeps, ascending ram_addr. */
    static List<RamBlock> blocks(RamList ram, Predicate<RamBlock> filter) {
        List<RamBlock> out = new ArrayList<>();
        for (RamBlock b : ram.blocks()) {
            if (isMigratable(b) && filter.test(b)) {
                out.add(b);
            }
        }
        return out;
    }

    /** {@link #save(RamList, WritableByteChannel)} of the system's RAM. */
    public static MigrationReport save(MemorySystem system, WritableByteChannel out) throws IOException {
        return save(system.ramList(), out);
    }

    /**
     * Writes every migratable block of {@code ram} to {@code out} as one round (QEMU's {@code savevm} of RAM, or a
     * migration of a stopped machine). The source's vCPUs must be stopped.
     *
     * @return one round, whose time is also the downtime
     * @throws MigrationException if a block cannot be sent (a name longer than 255 bytes of UTF-8, memory freed under
     *                            the save) or the channel fails or stalls for {@link #DEFAULT_IO_TIMEOUT}
     */
    public static MigrationReport save(RamList ram, WritableByteChannel out) throws IOException {
        Objects.requireNonNull(out, "out");
        long start = System.nanoTime();
        try (ChannelIo io = ChannelIo.writing(out, DEFAULT_IO_TIMEOUT)) {
            RamSender sender = new RamSender(io, ram.pageBits(), blocks(ram, b -> true));
            sender.sendAll();
            sender.endRound(0);
            RoundReport round = sender.report(0, true, 0);
            sender.end(1);
            Duration total = Duration.ofNanos(System.nanoTime() - start);
            return new MigrationReport(List.of(round), round.pagesSent(), sender.bytes(), total, total, true);
        }
    }

    /** {@link #restore(RamList, ReadableByteChannel, Duration)} into the system's RAM, with the default timeout. */
    public static RestoreReport restore(MemorySystem system, ReadableByteChannel in) throws IOException {
        return restore(system.ramList(), in, DEFAULT_IO_TIMEOUT);
    }

    /** {@link #restore(RamList, ReadableByteChannel, Duration)} with {@link #DEFAULT_IO_TIMEOUT}. */
    public static RestoreReport restore(RamList ram, ReadableByteChannel in) throws IOException {
        return restore(ram, in, DEFAULT_IO_TIMEOUT);
    }

    /**
     * Loads a stream written by {@link #save} or {@link PreCopy} into {@code ram}'s blocks (QEMU's {@code ram_load}),
     * until its end marker, reading nothing past it. The destination's vCPUs must not run.
     *
     * @param ioTimeout how long to wait for the source to send one byte
     * @throws MigrationException if the stream is not a guestmem RAM stream, has another version or page size, names a
     *                            block the destination lacks or has with another used length, is truncated or corrupt,
     *                            or the source stalls for {@code ioTimeout}
     */
    public static RestoreReport restore(RamList ram, ReadableByteChannel in, Duration ioTimeout) throws IOException {
        return restore(ram, in, ioTimeout, null);
    }

    /** {@link #restore(RamList, ReadableByteChannel, Duration)} telling {@code observer} of every run it loads. */
    static RestoreReport restore(RamList ram, ReadableByteChannel in, Duration ioTimeout,
                                 StreamReader.RunObserver observer) throws IOException {
        Objects.requireNonNull(ram, "ram");
        Objects.requireNonNull(in, "in");
        try (ChannelIo io = ChannelIo.reading(in, ioTimeout)) {
            return new StreamReader(io, ram, observer).read();
        }
    }

    /** {@link #compare(RamList, RamList, Predicate)} of every migratable block. */
    public static Optional<RamDifference> compare(RamList source, RamList destination) {
        return compare(source, destination, b -> true);
    }

    /**
     * Compares the used bytes of every migratable block of {@code source} that {@code filter} keeps with the
     * destination's block of the same name, byte for byte, in ram_addr order of the source. Both machines must be
     * stopped.
     *
     * @return the first difference: a byte, a used length, or a block the destination lacks; empty when every byte is
     *         the same
     */
    public static Optional<RamDifference> compare(RamList source, RamList destination, Predicate<RamBlock> filter) {
        for (RamBlock s : blocks(source, filter)) {
            RamBlock d = destination.blockByName(s.idstr());
            if (d == null || !isMigratable(d)) {
                return Optional.of(new RamDifference(s.idstr(), 0, s.offset(), -1, -1,
                        "destination=" + (d == null ? "missing" : "notMigratable") + ": no such block to compare"));
            }
            if (s.usedLength() != d.usedLength()) {
                return Optional.of(new RamDifference(s.idstr(), 0, s.offset(), -1, -1, "usedLength=0x"
                        + Long.toHexString(s.usedLength()) + " destinationUsedLength=0x"
                        + Long.toHexString(d.usedLength()) + ": the used lengths differ"));
            }
            RamDifference diff = compareBytes(s, d);
            if (diff != null) {
                return Optional.of(diff);
            }
        }
        return Optional.empty();
    }

    /**
     * The first byte of the used lengths of {@code s} and {@code d} that differs, or null. The bytes are copied into
     * private buffers a chunk at a time and compared there: a copy is where a fault of memory that another process
     * truncated is caught, and the vectorized compare runs on memory that cannot fault.
     *
     * @throws IllegalStateException if either block's memory was freed or faults
     */
    private static RamDifference compareBytes(RamBlock s, RamBlock d) {
        long length = s.usedLength();
        long chunk = Math.min(length, COMPARE_CHUNK);
        long off = 0;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(Math.max(chunk, 1));
            MemorySegment b = arena.allocate(Math.max(chunk, 1));
            // One try around the whole loop: HotSpot may raise a copy's fault at a later safepoint poll of the loop.
            try {
                for (; off < length; off += chunk) {
                    long n = Math.min(chunk, length - off);
                    MemorySegment.copy(s.hostSegment(), off, a, 0, n);
                    MemorySegment.copy(d.hostSegment(), off, b, 0, n);
                    long at = MemorySegment.mismatch(a, 0, n, b, 0, n);
                    if (at >= 0) {
                        int sb = a.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
                        int db = b.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
                        return new RamDifference(s.idstr(), off + at, s.offset() + off + at, sb, db,
                                "source=0x" + Integer.toHexString(sb) + " destination=0x" + Integer.toHexString(db));
                    }
                }
            } catch (IllegalStateException | InternalError e) {
                throw new IllegalStateException("block=" + s.idstr() + " offset=0x" + Long.toHexString(off)
                        + ": reading the memory to compare failed (freed, or a file truncated under the mapping): "
                        + e.getMessage(), e);
            }
        }
        return null;
    }
}
