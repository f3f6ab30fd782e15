package dev.guestmem.offheap.migration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamFlag;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Save and restore of a stopped machine's RAM over real channels, and every way a stream or a destination is bad. */
class RamMigrationTest {
    private static final long PAGE = 4096;

    @TempDir
    Path dir;

    @Test
    void saveAndRestoreOverAUnixSocketGiveTheSameRamOnEveryBackend() throws Exception {
        try (Machine src = Machine.threeBackends(); Machine dst = Machine.threeBackends();
             Transport.Pair link = Transport.unix(dir)) {
            src.fillRandom(1);
            dst.fill((byte) 0x5A); // so that a zero page the destination skipped would show
            FutureTask<RestoreReport> restore = Transport.start("restore",
                    () -> RamMigration.restore(dst.system, link.destination()));
            MigrationReport saved = RamMigration.save(src.system, link.source());
            RestoreReport loaded = restore.get(60, TimeUnit.SECONDS);

            assertEquals(Optional.empty(), RamMigration.compare(src.ramList(), dst.ramList()));
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(src.contents().get(i), dst.contents().get(i), src.block(i).idstr());
            }
            long pages = (6L << 20) / PAGE;
            assertEquals(1, saved.rounds().size());
            RoundReport round = saved.rounds().get(0);
            assertTrue(round.vmStopped());
            assertEquals(pages, saved.pagesSent());
            assertEquals(pages, round.pagesSent());
            assertTrue(round.zeroPages() > pages / 5 && round.zeroPages() < pages / 2, "zeroPages=" + round.zeroPages());
            assertEquals(saved.totalTime(), saved.downtime());
            assertTrue(saved.converged());
            assertEquals(new RestoreReport(1, pages, round.zeroPages(), saved.bytesSent(), loaded.time()), loaded);
            // Zero pages carry no data: the stream is the data pages plus small headers.
            long dataBytes = (pages - round.zeroPages()) * PAGE;
            assertTrue(saved.bytesSent() > dataBytes && saved.bytesSent() < dataBytes + pages * 16 + 4096,
                    "bytes=" + saved.bytesSent() + " data=" + dataBytes);
        }
    }

    @Test
    void aFileKeepsShortLastPagesAndResizeableBlocksAndNothingPastTheEndIsRead() throws Exception {
        // 64 KiB target pages: a block of 0x11000 bytes has a second page of 4 KiB.
        MemorySystem src = new MemorySystem(MemorySystem.ANONYMOUS_RAM, false, 16);
        MemorySystem dst = new MemorySystem(MemorySystem.ANONYMOUS_RAM, false, 16);
        MemoryRegion[] regions = {src.ram("odd", 0x11000), src.resizeableRam("res", 0x30000, 0x100000, null),
            dst.ram("odd", 0x11000), dst.resizeableRam("res", 0x30000, 0x100000, null)};
        try {
            regions[0].ramSegment().fill((byte) 1);
            regions[0].ramSegment().set(ValueLayout.JAVA_BYTE, 0x10FFF, (byte) 7);
            regions[1].ramSegment().asSlice(0x20000, 0x10000).fill((byte) 3);
            regions[2].ramSegment().fill((byte) 9);
            regions[3].ramSegment().fill((byte) 9);
            Path file = dir.resolve("ram.bin");
            try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                RamMigration.save(src, out);
                out.write(ByteBuffer.wrap("tail".getBytes(StandardCharsets.US_ASCII)));
            }
            try (FileChannel in = FileChannel.open(file)) {
                RestoreReport r = RamMigration.restore(dst, in);
                assertEquals(2 + 3, r.pages());
                assertEquals(2, r.zeroPages()); // "res" pages 0 and 1
                ByteBuffer rest = ByteBuffer.allocate(16);
                assertEquals(4, in.read(rest));
                assertEquals("tail", new String(rest.array(), 0, 4, StandardCharsets.US_ASCII));
            }
            assertEquals(Optional.empty(), RamMigration.compare(src.ramList(), dst.ramList()));
            // The unused part of the resizeable block is not migrated: the destination keeps its own bytes there.
            assertEquals(9, regions[3].ramSegment().get(ValueLayout.JAVA_BYTE, 0x30000));
        } finally {
            for (MemoryRegion r : regions) {
                r.destroy();
            }
        }
    }

    @Test
    void aDestinationThatDoesNotMatchIsRefusedBeforeAnyByteIsWritten() throws Exception {
        byte[] stream;
        try (Machine src = Machine.threeBackends()) {
            src.fillRandom(2);
            stream = saved(src);
        }
        Machine.Ram pc = new Machine.Ram("pc.ram", 3 << 20, MemorySystem.ANONYMOUS_RAM);
        Machine.Ram anon = new Machine.Ram("ram-anon", 2 << 20, MemorySystem.ANONYMOUS_RAM);
        Machine.Ram vga = new Machine.Ram("vga.vram", 1 << 20, MemorySystem.ANONYMOUS_RAM);
        refused(stream, new Machine(12, pc, anon), "block=vga.vram: the destination has no RAM block of that name");
        refused(stream, new Machine(12, pc, new Machine.Ram("ram-anon", 1 << 20, MemorySystem.ANONYMOUS_RAM), vga),
                "block=ram-anon usedLength=0x200000 destinationUsedLength=0x100000: the block's used length differs");
        refused(stream, new Machine(13, pc, anon, vga),
                "pageBits=12 destinationPageBits=13: source and destination target pages differ");
        // Blocks of the destination that the stream does not name are left alone, as in QEMU.
        try (Machine dst = new Machine(12, pc, anon, vga, new Machine.Ram("extra", 1 << 20,
                MemorySystem.ANONYMOUS_RAM))) {
            dst.fill((byte) 0x33);
            RamMigration.restore(dst.system, channel(stream));
            assertEquals(0x33, dst.contents().get(3)[12345]);
        }
    }

    @Test
    void aReadOnlyBlockIsNotMigratedAndNotAcceptedAsADestination() throws Exception {
        try (Machine m = Machine.threeBackends()) {
            RamBlock b = m.block(0);
            assertTrue(RamMigration.isMigratable(b));
            assertTrue(!b.flags().contains(RamFlag.READONLY));
        }
        Path file = dir.resolve("rom.bin");
        java.nio.file.Files.write(file, new byte[1 << 20]);
        try (Machine ro = new Machine(12, new Machine.Ram("rom", 1 << 20,
                dev.guestmem.offheap.HostMemoryBackend.file(file).readonly(true).build()));
             Machine rw = new Machine(12, new Machine.Ram("rom", 1 << 20, MemorySystem.ANONYMOUS_RAM))) {
            assertTrue(!RamMigration.isMigratable(ro.block(0)));
            assertEquals(0, RamMigration.save(ro.system, sink()).pagesSent(), "a read-only block is not sent");
            MigrationException e = assertThrows(MigrationException.class,
                    () -> RamMigration.restore(ro.system, channel(saved(rw))));
            assertEquals("block=rom: the destination block is read-only", e.getMessage());
        }
    }

    @Test
    void corruptAndTruncatedStreamsAreRefusedNamingTheField() throws Exception {
        try (Machine src = Machine.threeBackends(); Machine dst = Machine.threeBackends()) {
            src.fillRandom(3);
            byte[] good = saved(src);
            int header = headerLength(src); // the first frame's contents start after its 4-byte length

            assertFails(dst, patch(good, 4, (byte) 'x'), "magic=0x787565737452414d expected=0x677565737452414d");
            assertFails(dst, patch(good, 13, (byte) 2), "version=2 supported=1");
            assertFails(dst, patch(good, 15, (byte) 1), "headerReserved=0x1: must be 0");
            assertFails(dst, patch(good, 20, (byte) 0), "block#0 idLength=0: a block name is never empty");
            assertFails(dst, patch(good, 21, (byte) 0xFF), "block#0 idstr: not UTF-8");
            assertFails(dst, patch(good, 4 + 16 + 1 + 2, (byte) 'x'), "headerChecksum=0x");
            // A flipped bit in the data of the first run: the round's checksum catches it.
            int data = 4 + header + 16 + 100;
            assertFails(dst, patch(good, data, (byte) (good[data] ^ 1)),
                    "record=ROUND checksum=0x");
            // The same in the END record's checksum.
            assertFails(dst, patch(good, good.length - 1, (byte) (good[good.length - 1] ^ 1)),
                    "record=END checksum=0x");
            // A frame length of 0 or past the largest frame, and one that cuts the block table.
            byte[] huge = patch(good, 0, (byte) 1);
            assertFails(dst, huge, "streamOffset=0 frameLength=" + ByteBuffer.wrap(huge).getInt()
                    + " max=4194304: not a frame length");
            assertFails(dst, concat(new byte[4], good), "streamOffset=0 frameLength=0 max=4194304: not a frame length");
            assertFails(dst, concat(frame(Arrays.copyOfRange(good, 4, 4 + 16 + 3)), frame(Arrays.copyOfRange(good,
                    4 + 16 + 3, 4 + header))), "streamOffset=21 field=block#0 idstr bytes=6 frameLeft=2: the item "
                    + "crosses the end of its frame");
            for (int cut : new int[] {0, 5, 16, header - 1, header, header + 10, header + 16 + 4096,
                good.length / 2, good.length - 4, good.length - 1}) {
                MigrationException e = assertThrows(MigrationException.class,
                        () -> RamMigration.restore(dst.system, channel(Arrays.copyOf(good, cut))), "cut=" + cut);
                assertTrue(e.getMessage().startsWith("streamOffset=" + cut + " expected=")
                        && e.getMessage().endsWith(": the stream ended early (truncated, or the peer closed the channel)"),
                        e.getMessage());
            }
        }
    }

    @Test
    void hostileRecordsAreRefusedBeforeTheyWriteAnything() throws Exception {
        try (Machine src = Machine.threeBackends(); Machine dst = Machine.threeBackends()) {
            byte[] head = frame(Arrays.copyOfRange(saved(src), 4, 4 + headerLength(src)));
            dst.fill((byte) 0x5A);
            List<byte[]> before = dst.contents();
            long pages0 = (3L << 20) / PAGE;
            String at = "streamOffset=" + (head.length + 4) + " record=";
            assertHostile(dst, concat(head, frame(record('P', 0, 1, 0, pages0))),
                    at + "PAGES block=pc.ram page=0x300 count=1 pageCount=0x300: the run leaves the block");
            assertHostile(dst, concat(head, frame(record('P', 0, 2, 0, pages0 - 1))),
                    at + "PAGES block=pc.ram page=0x2ff count=2 pageCount=0x300: the run leaves the block");
            assertHostile(dst, concat(head, frame(record('Z', 0, 0xFFFF, 0, -1L))),
                    at + "ZEROS block=pc.ram page=0xffffffffffffffff count=65535 pageCount=0x300: the run leaves the "
                            + "block");
            assertHostile(dst, concat(head, frame(record('P', 0, 1, 7, 0))),
                    at + "PAGES blockIndex=7 blockCount=3: no such block in the stream's table");
            assertHostile(dst, concat(head, frame(record('P', 0, 1, -1, 0))),
                    at + "PAGES blockIndex=4294967295 blockCount=3: no such block in the stream's table");
            assertHostile(dst, concat(head, frame(record('Z', 0, 0, 0, 0))),
                    at + "ZEROS count=0: a run has at least one page");
            assertHostile(dst, concat(head, frame(record('P', 0, 1, 0, 0)), frame(new byte[4096])), "streamOffset="
                    + (head.length + 4 + 16) + " field=pageData bytes=4096 frameLeft=0: the item crosses the end of "
                    + "its frame");
            assertHostile(dst, concat(head, frame(record('P', 1, 1, 0, 0))), at + "PAGES reserved=0x1: must be 0");
            assertHostile(dst, concat(head, frame(record('X', 0, 1, 0, 0))), "streamOffset=" + (head.length + 4)
                    + " tag=0x58: unknown record");
            assertHostile(dst, concat(head, frame(record('R', 0, 0, 0, 5))),
                    at + "ROUND pages=5 counted=0: the round's page count does not match its records");
            assertHostile(dst, concat(head, frame(record('R', 0, 0, 3, 0))),
                    at + "ROUND round=3 expected=0: rounds out of order");
            assertHostile(dst, concat(head, frame(withChecksum(head, record('E', 0, 0, 0, 0)))),
                    "block=pc.ram page=0x0: the stream ended without ever sending this page");
            assertHostile(dst, concat(head, frame(withChecksum(head, record('E', 0, 0, 2, 0)))),
                    at + "END rounds=2 pages=0 counted=0/0: the stream's totals do not match its records");
            assertHostile(dst, concat(head, frame(record('E', 0, 3, 0, 0))), at + "END count=3: must be 0");
            assertEquals(before.size(), dst.contents().size());
            for (int i = 0; i < before.size(); i++) {
                assertArrayEquals(before.get(i), dst.contents().get(i), "block " + i + " untouched");
            }
            // Zero pages, then an END that does not follow a ROUND: the pages came, the stream is still refused.
            assertHostile(dst, concat(head, frame(concat(record('Z', 0, 1, 0, 0), record('E', 0, 0, 0, 1)))),
                    "streamOffset=" + (head.length + 4 + 16)
                            + " record=END pagesAfterLastRound=1: the last round has no ROUND record");
        }
    }

    @Test
    void aDestinationThatClosesTheSocketFailsTheSave() throws Exception {
        // A Unix socket holds a few hundred KiB in flight, far less than the 4 MiB of data pages: the save cannot
        // finish before the destination closes.
        try (Machine src = Machine.threeBackends(); Transport.Pair link = Transport.unix(dir)) {
            src.fillRandom(4);
            FutureTask<Long> reader = Transport.readThenClose(link.destination(), 256 << 10);
            MigrationException e = assertThrows(MigrationException.class, () -> RamMigration.save(src.system,
                    link.source()));
            assertTrue(e.getMessage().matches("streamOffset=\\d+: writing the stream failed: .*"), e.getMessage());
            assertTrue(reader.get(60, TimeUnit.SECONDS) >= 256 << 10);
            assertTrue(link.source().isBlocking(), "the channel is given back in the mode it had");
        }
    }

    @Test
    void aSourceThatClosesOrFallsSilentFailsTheRestore() throws Exception {
        try (Machine src = Machine.threeBackends(); Machine dst = Machine.threeBackends()) {
            src.fillRandom(5);
            byte[] good = saved(src);
            try (Transport.Pair link = Transport.unix(dir)) {
                FutureTask<RestoreReport> restore = Transport.start("restore",
                        () -> RamMigration.restore(dst.system, link.destination()));
                Transport.start("source", () -> {
                    try (SocketChannel source = link.source()) {
                        return source.write(ByteBuffer.wrap(good, 0, good.length / 2));
                    }
                });
                MigrationException e = causeOf(restore);
                link.source().close(); // a source still writing, if the restore stopped reading too early
                assertTrue(e.getMessage().endsWith("the stream ended early (truncated, or the peer closed the "
                        + "channel)"), e.getMessage());
            }
            java.nio.file.Files.delete(dir.resolve("migration.sock"));
            try (Transport.Pair link = Transport.unix(dir)) {
                FutureTask<RestoreReport> restore = Transport.start("restore",
                        () -> RamMigration.restore(dst.ramList(), link.destination(), Duration.ofMillis(300)));
                link.source().write(ByteBuffer.wrap(good, 0, 20)); // part of the first frame, then nothing more
                MigrationException e = causeOf(restore);
                assertEquals("ioTimeout=PT0.3S streamOffset=20 expected=header: the peer moved no byte for "
                        + "the whole timeout", e.getMessage());
            }
        }
    }

    @Test
    void compareNamesTheFirstDifferingByte() throws Exception {
        try (Machine src = Machine.threeBackends(); Machine dst = Machine.threeBackends()) {
            src.fillRandom(6);
            RamMigration.restore(dst.system, channel(saved(src)));
            assertEquals(Optional.empty(), RamMigration.compare(src.ramList(), dst.ramList()));
            dst.regions.get(2).ramSegment().set(ValueLayout.JAVA_BYTE, 0x100, (byte) 1);
            byte was = src.regions.get(1).ramSegment().get(ValueLayout.JAVA_BYTE, 0x1234);
            dst.regions.get(1).ramSegment().set(ValueLayout.JAVA_BYTE, 0x1234, (byte) ~was);
            RamDifference d = RamMigration.compare(src.ramList(), dst.ramList()).orElseThrow();
            assertEquals(new RamDifference("ram-anon", 0x1234, src.block(1).offset() + 0x1234, was & 0xFF,
                    ~was & 0xFF, "source=0x" + Integer.toHexString(was & 0xFF) + " destination=0x"
                    + Integer.toHexString(~was & 0xFF)), d);
            assertEquals("block=ram-anon offset=0x1234 ramAddr=0x" + Long.toHexString(src.block(1).offset() + 0x1234)
                    + " " + d.reason(), d.toString());
            assertEquals("vga.vram", RamMigration.compare(src.ramList(), dst.ramList(), b -> !b.idstr()
                    .equals("ram-anon")).orElseThrow().idstr());
            try (Machine small = new Machine(12, new Machine.Ram("pc.ram", 3 << 20, MemorySystem.ANONYMOUS_RAM))) {
                assertEquals("destination=missing: no such block to compare", RamMigration.compare(src.ramList(),
                        small.ramList(), b -> !b.idstr().equals("pc.ram")).orElseThrow().reason());
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    private static byte[] saved(Machine m) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        RamMigration.save(m.system, Channels.newChannel(bytes));
        return bytes.toByteArray();
    }

    private static java.nio.channels.WritableByteChannel sink() {
        return Channels.newChannel(new ByteArrayOutputStream());
    }

    private static ReadableByteChannel channel(byte[] stream) {
        return Channels.newChannel(new ByteArrayInputStream(stream));
    }

    /** Bytes of the header and block table of {@code m}'s stream, its checksum included. */
    private static int headerLength(Machine m) {
        int n = 16 + 4;
        for (RamBlock b : m.ramList().blocks()) {
            n += 1 + b.idstr().getBytes(StandardCharsets.UTF_8).length + 8;
        }
        return n;
    }

    private static void refused(byte[] stream, Machine dst, String message) throws IOException {
        try (dst) {
            dst.fill((byte) 0x5A);
            List<byte[]> before = dst.contents();
            MigrationException e = assertThrows(MigrationException.class,
                    () -> RamMigration.restore(dst.system, channel(stream)));
            assertEquals(message, e.getMessage());
            for (int i = 0; i < before.size(); i++) {
                assertArrayEquals(before.get(i), dst.contents().get(i), "nothing written: " + message);
            }
        }
    }

    private static void assertFails(Machine dst, byte[] stream, String messageStart) {
        MigrationException e = assertThrows(MigrationException.class,
                () -> RamMigration.restore(dst.system, channel(stream)));
        assertTrue(e.getMessage().startsWith(messageStart) || e.getMessage().contains(" " + messageStart),
                "expected " + messageStart + " in: " + e.getMessage());
    }

    private static void assertHostile(Machine dst, byte[] stream, String message) {
        MigrationException e = assertThrows(MigrationException.class,
                () -> RamMigration.restore(dst.system, channel(stream)));
        assertEquals(message, e.getMessage());
    }

    private static MigrationException causeOf(FutureTask<?> task) throws Exception {
        try {
            task.get(60, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof MigrationException m) {
                return m;
            }
            throw e;
        }
        throw new AssertionError("the restore succeeded");
    }

    private static byte[] patch(byte[] stream, int at, byte value) {
        byte[] copy = stream.clone();
        copy[at] = value;
        return copy;
    }

    private static byte[] record(char tag, int reserved, int count, int a, long b) {
        return ByteBuffer.allocate(16).put((byte) tag).put((byte) reserved).putShort((short) count).putInt(a)
                .putLong(b).array();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    /**
     * {@code record} and the CRC32C of the frame contents {@code head} (one frame) and {@code record}, as a ROUND or
     * END record ends.
     */
    private static byte[] withChecksum(byte[] head, byte[] record) {
        CRC32C crc = new CRC32C();
        crc.update(head, 4, head.length - 4);
        crc.update(record);
        return concat(record, ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }

    /** {@code contents} as one frame: its length, then it. */
    private static byte[] frame(byte[] contents) {
        return concat(ByteBuffer.allocate(4).putInt(contents.length).array(), contents);
    }
}
