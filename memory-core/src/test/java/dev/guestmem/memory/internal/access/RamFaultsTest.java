package dev.guestmem.memory.internal.access;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.DmaMapping;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionCache;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.attribute.CodeAttribute;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * RAM over a file that is truncated under the guest (here by the test itself): every access family turns the fault
 * into {@link MemTxResult#ERROR}, keeps serving the part still inside the file, logs one warning per block, and marks
 * nothing dirty for a store that faulted. The same under threads and a second process: {@link SharedRamTruncationTest}.
 */
class RamFaultsTest {
    static final long BASE = 0x10_0000;
    static final long SIZE = 0x4000;
    /** What is left of the file: its first two pages. */
    static final long KEEP = 0x2000;
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;
    /** The bridge the access path asks whether a region's RAM may fault. */
    private static final CoreAccess CORE = SharedSecrets.coreAccess();
    private static final ValueLayout.OfLong LE = FileRam.LE;

    @TempDir
    Path dir;

    @RegisterExtension
    final RamFaultWarnings warnings = new RamFaultWarnings();

    @Test
    void theGuardedAccessStaysTooLargeToInline() throws IOException {
        // RamFaults relies on HotSpot not inlining access(): its bytecode must stay above FreqInlineSize (325).
        ClassModel cm;
        try (InputStream in = RamFaults.class.getResourceAsStream("RamFaults.class")) {
            cm = ClassFile.of().parse(in.readAllBytes());
        }
        MethodModel access = cm.methods().stream().filter(m -> m.methodName().equalsString("access")).findFirst()
                .orElseThrow();
        int length = access.findAttribute(Attributes.code()).map(CodeAttribute::codeLength)
                .orElseThrow();
        assertTrue(length > 325, "access() bytecode length=" + length + " must exceed FreqInlineSize=325");
    }

    @Test
    void onlyFileMappingsTakeTheGuardedPaths() throws IOException {
        MemorySystem sys = new MemorySystem();
        try (FileRam file = new FileRam(dir, SIZE); Arena arena = Arena.ofConfined()) {
            assertTrue(CORE.ramMayFault(sys.ramFromSegment("file", file.segment)));
            assertFalse(CORE.ramMayFault(sys.ram("anon", SIZE)));
            assertFalse(CORE.ramMayFault(sys.ramFromSegment("mine", arena.allocate(SIZE))));
        }
    }

    /**
     * A file mapped by other means than {@code FileChannel.map} (here the same mapping seen through a segment of its
     * address, as memory-offheap sees an mmap it made itself) is not recognized; the caller says it may fault, and its
     * truncation is then an error, not an {@link InternalError}. A caller may also vouch for a mapping that cannot.
     */
    @Test
    @SuppressWarnings("restricted") // a segment over the file mapping's address, kept inside the arena's lifetime
    void theCallerSaysWhetherItsSegmentMayFault() throws IOException {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("as", root);
        try (FileRam file = new FileRam(dir, SIZE); Arena arena = Arena.ofConfined()) {
            MemorySegment bare = MemorySegment.ofAddress(file.segment.address()).reinterpret(SIZE);
            assertFalse(bare.isMapped());
            assertFalse(CORE.ramMayFault(sys.ramFromSegment("unrecognized", bare)));
            assertFalse(CORE.ramMayFault(sys.ramFromSegment("vouched", file.segment, false)));
            assertTrue(CORE.ramMayFault(sys.ramFromSegment("anon.said", arena.allocate(SIZE), true)));
            MemoryRegion ram = sys.ramFromSegment("said", bare, true);
            assertTrue(CORE.ramMayFault(ram));
            root.addSubregion(BASE, ram);
            file.channel.truncate(KEEP);
            int[] r = {-1};
            assertEquals(0, as.ldqLe(BASE + KEEP, ATTRS, r));
            assertEquals(MemTxResult.ERROR, r[0]);
            assertEquals(MemTxResult.ERROR, as.stqLe(BASE + SIZE - 8, 1, ATTRS));
            assertEquals(FileRam.word(KEEP - 8), as.ldqLe(BASE + KEEP - 8, ATTRS, r));
            assertEquals(MemTxResult.OK, r[0]);
            assertEquals(1, warnings.count("said"));
            assertEquals(1, warnings.messages().size());
        }
    }

    @Test
    void everyFamilyReportsTheFaultAsAnErrorAndKeepsServingTheRest() throws IOException {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("as", root);
        try (FileRam file = new FileRam(dir, SIZE)) {
            MemoryRegion ram = sys.ramFromSegment("file.ram", file.segment);
            root.addSubregion(BASE, ram);
            ram.setLog(true, DirtyMemoryClient.VGA);
            file.channel.truncate(KEEP);
            int[] r = {-1};
            long gone = BASE + KEEP + 0x1008;
            long kept = BASE + 0x1008;

            // The address space: loads, stores, bulk copies, fills, ROM writes.
            assertEquals(0, as.ldqLe(gone, ATTRS, r));
            assertEquals(MemTxResult.ERROR, r[0]);
            assertEquals(FileRam.word(0x1008), as.ldqLe(kept, ATTRS, r));
            assertEquals(MemTxResult.OK, r[0]);
            ram.snapshotAndClearDirty(0, SIZE, DirtyMemoryClient.VGA);
            assertEquals(MemTxResult.ERROR, as.stlBe(gone, 0x1234, ATTRS));
            assertFalse(ram.getDirty(KEEP, SIZE - KEEP, DirtyMemoryClient.VGA), "a store that faulted marks nothing");
            assertEquals(MemTxResult.OK, as.stqLe(kept, 42, ATTRS));
            assertEquals(42, file.wordAt(0x1008));
            assertTrue(ram.getDirty(0x1000, 8, DirtyMemoryClient.VGA));
            byte[] buf = new byte[0x100];
            Arrays.fill(buf, (byte) 0x77);
            assertEquals(MemTxResult.ERROR, as.read(gone, ATTRS, buf, 0, buf.length));
            assertArrayEquals(new byte[buf.length], buf, "a read that faulted stores zeros");
            // A copy across the new end of the file: the part still inside it is copied, the rest reads zeros.
            assertEquals(MemTxResult.ERROR, as.read(BASE + KEEP - 0x80, ATTRS, buf, 0, buf.length));
            MemorySegment across = MemorySegment.ofArray(buf);
            for (int i = 0; i < 0x80; i += 8) {
                assertEquals(FileRam.word(KEEP - 0x80 + i), across.get(LE, i));
                assertEquals(0, across.get(LE, 0x80 + i));
            }
            Arrays.fill(buf, (byte) 0x66);
            assertEquals(MemTxResult.ERROR, as.write(BASE + KEEP - 0x80, ATTRS, buf, 0, buf.length));
            assertEquals(0x6666_6666_6666_6666L, file.wordAt(KEEP - 8));
            assertEquals(MemTxResult.ERROR, as.set(BASE + KEEP + 0x10, (byte) 1, 0x800, ATTRS));
            assertEquals(MemTxResult.ERROR, as.writeRom(gone, ATTRS, buf, 0, buf.length));
            assertEquals(MemTxResult.OK, as.set(BASE + 0x100, (byte) 0x5c, 0x10, ATTRS));
            assertEquals(MemTxResult.OK, as.read(BASE + 0x100, ATTRS, buf, 0, 0x10));
            assertEquals(0x5c5c_5c5c_5c5c_5c5cL, file.wordAt(0x108));

            // The soft TLB: the error lands in the sticky result; the kept part still reads and writes.
            SoftTlb tlb = new SoftTlb(as);
            assertEquals(0, tlb.ldqLe(gone));
            tlb.stwLe(gone, 7);
            assertEquals(MemTxResult.ERROR, tlb.takeResult());
            tlb.stqBe(kept + 8, 0x0102_0304_0506_0708L);
            assertEquals(0x0102_0304_0506_0708L, tlb.ldqBe(kept + 8));
            assertEquals(FileRam.word(0x1000), tlb.ldqLe(BASE + 0x1000));
            assertEquals(MemTxResult.OK, tlb.takeResult());

            // A direct cache over the whole block.
            MemoryRegionCache cache = MemoryRegionCache.init(as, BASE, SIZE, true);
            assertTrue(cache.isDirect());
            assertEquals(0, cache.ldlLe(KEEP + 4, ATTRS, r));
            assertEquals(MemTxResult.ERROR, r[0]);
            assertEquals(MemTxResult.ERROR, cache.stb(SIZE - 1, 9, ATTRS));
            assertEquals(MemTxResult.ERROR, cache.read(KEEP, buf, 0, 8));
            assertEquals(MemTxResult.OK, cache.stqLe(0x10, 99, ATTRS));
            assertEquals(99, cache.ldqLe(0x10, ATTRS, r));
            assertEquals(MemTxResult.OK, r[0]);
            cache.destroy();

            // DMA: the file's RAM bounces; the bounce is filled with zeros where the file is gone.
            as.setMaxBounceBufferSize(SIZE);
            DmaMapping in = as.map(BASE + KEEP - 0x800, 0x1000, false, ATTRS);
            assertTrue(in.isBounce());
            assertEquals(FileRam.word(KEEP - 0x800), in.segment().get(LE, 0));
            assertEquals(0, in.segment().get(LE, 0x800));
            as.unmap(in, false, 0x1000);
            DmaMapping out = as.map(BASE + KEEP, 0x100, true, ATTRS);
            assertTrue(out.isBounce());
            out.segment().fill((byte) 3);
            as.unmap(out, true, 0x100);

            List<String> logged = warnings.messages();
            assertEquals(1, logged.size(), () -> "one warning per block: " + logged);
            assertTrue(logged.getFirst().startsWith("block=file.ram addr=0x"), logged::getFirst);
            assertTrue(RamFaults.reported(ram.ramBlock()));
        }
    }

    @Test
    void eachBlockWarnsOnce() throws IOException {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("as", root);
        try (FileRam a = new FileRam(dir, SIZE); FileRam b = new FileRam(dir, SIZE)) {
            root.addSubregion(BASE, sys.ramFromSegment("a", a.segment));
            root.addSubregion(BASE + SIZE, sys.ramFromSegment("b", b.segment));
            a.channel.truncate(0);
            b.channel.truncate(0);
            for (int i = 0; i < 100; i++) {
                assertEquals(MemTxResult.ERROR, as.stqLe(BASE + 8 * i, i, ATTRS));
                assertEquals(MemTxResult.ERROR, as.stqLe(BASE + SIZE + 8 * i, i, ATTRS));
            }
            assertEquals(List.of("a", "b"), warnings.messages().stream().map(m -> m.substring(6, 7)).toList());
        }
    }
}
