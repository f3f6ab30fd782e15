package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * What memory-core offers RAM backends: the fd, page size, discard and msync hooks of {@link AbstractRamBlock}, the
 * QEMU entry points over them ({@code memory_region_get_fd}, {@code memory_region_msync},
 * {@code memory_region_writeback}, {@code qemu_ram_block_host_offset}), and regions made from a backend.
 */
class RamBackendHooksTest {
    /** A backend block over an Arena that records the hooks it is called with, standing in for a file mapping. */
    private static final class RecordingBlock extends AbstractRamBlock {
        final MemorySegment memory;
        final List<String> calls = new ArrayList<>();
        int frees;

        RecordingBlock(String idstr, long size, Set<RamFlag> flags) {
            super(idstr, size, flags);
            memory = Arena.ofAuto().allocate(size, 4096);
        }

        @Override
        public MemorySegment hostSegment() {
            return memory;
        }

        @Override
        public int fd() {
            return 42;
        }

        @Override
        public long fdOffset() {
            return 0x20000;
        }

        @Override
        protected void msyncMemory(long start, long length) {
            calls.add("msync " + U64.hex(start) + " " + U64.hex(length));
        }

        @Override
        protected void freeMemory() {
            frees++;
        }

        @Override
        protected void usedLengthChanged(long oldUsedLength, long newUsedLength) {
            calls.add("used " + U64.hex(oldUsedLength) + " -> " + U64.hex(newUsedLength) + " size "
                    + U64.hex(usedLength()));
        }
    }

    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    private final MemorySystem sys = new MemorySystem();
    private final MemoryRegion root = sys.container("system", U64.SIZE_2_64);

    @Test
    void arenaRamHasNoFdAndHostPages() {
        MemoryRegion ram = sys.ram("ram", 0x4000);
        RamBlock b = ram.ramBlock();
        assertEquals(-1, b.fd());
        assertEquals(-1, ram.getFd());
        assertEquals(0, b.fdOffset());
        assertEquals(4096, b.pageSize());
        assertEquals(-1, sys.container("c", 0x1000).getFd(), "a region without RAM has no fd");
    }

    @Test
    void hostOffsetIsTheBlockRelativeOffsetOfAHostAddress() {
        RamBlock b = sys.ram("ram", 0x4000).ramBlock();
        long base = b.hostSegment().address();
        assertEquals(0x1234, b.hostOffset(base + 0x1234));
        assertEquals(0x3fff, b.hostOffset(base + 0x3fff));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.hostOffset(base + 0x4000));
        assertTrue(e.getMessage().startsWith("block=ram hostAddress="), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> b.hostOffset(base - 1));
    }

    @Test
    void discardOfArenaRamReadsBackAsZerosAndChecksAlignment() {
        MemoryRegion ram = sys.ram("ram", 0x4000);
        root.addSubregion(0, ram);
        AddressSpace as = sys.addressSpace("memory", root);
        for (long a = 0; a < 0x4000; a += 8) {
            as.stqLe(a, 0x0102030405060708L, U);
        }
        AbstractRamBlock b = (AbstractRamBlock) ram.ramBlock();
        b.discardRange(0x1000, 0x2000);
        assertEquals(0x0102030405060708L, as.ldqLe(0xff8, U, null));
        assertEquals(0, as.ldqLe(0x1000, U, null));
        assertEquals(0, as.ldqLe(0x2ff8, U, null));
        assertEquals(0x0102030405060708L, as.ldqLe(0x3000, U, null));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.discardRange(0x800, 0x1000));
        assertEquals("block=ram start=0x800 length=0x1000 pageSize=0x1000 maxLength=0x4000: a discard must be "
                + "page-aligned and inside the block", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> b.discardRange(0x1000, 0x800));
        assertThrows(IllegalArgumentException.class, () -> b.discardRange(0x3000, 0x2000));
        assertThrows(IllegalArgumentException.class, () -> b.discardRange(-0x1000, 0x1000));
        assertEquals(0x0102030405060708L, as.ldqLe(0x3ff8, U, null), "a refused discard changes nothing");
    }

    @Test
    void regionsFromABackendReachItsFdAndMsyncThroughAliases() {
        List<RecordingBlock> made = new ArrayList<>();
        MemoryRegion ram = sys.ram("pmem", 0x8000, (name, size) -> {
            RecordingBlock rb = new RecordingBlock(name, size, EnumSet.of(RamFlag.SHARED));
            made.add(rb);
            return rb;
        });
        RecordingBlock b = made.get(0);
        assertEquals("pmem", b.idstr());
        assertEquals(42, ram.getFd());
        MemoryRegion alias = sys.alias("pmem-alias", ram, 0x1000, 0x1000);
        assertEquals(42, alias.getFd(), "memory_region_get_fd follows the alias chain");
        assertFalse(ram.isReadonly());

        ram.msync(0x1000, 0x2000);
        alias.msync(0, 0x1000); // an alias has no RAM block of its own: nothing, as in QEMU
        ram.writeback(0, 0x1000); // no dirty logging: nothing
        ram.setLog(true, DirtyMemoryClient.VGA);
        ram.writeback(0x4000, 0x1000);
        assertEquals(List.of("msync 0x1000 0x2000", "msync 0x4000 0x1000"), b.calls);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ram.msync(0x7000, 0x2000));
        assertEquals("block=pmem start=0x7000 length=0x2000 usedLength=0x8000: msync must stay inside the used "
                + "length", e.getMessage());
    }

    @Test
    void aReadonlyBlockMakesAReadonlyRegionThatRefusesGuestStores() {
        MemoryRegion rom = sys.ram("image", 0x1000,
                (name, size) -> new RecordingBlock(name, size, EnumSet.of(RamFlag.READONLY, RamFlag.READONLY_FD)));
        assertTrue(rom.isReadonly());
        rom.ramSegment().set(ValueLayout.JAVA_LONG_UNALIGNED, 0x10, 0x1122334455667788L);
        root.addSubregion(0x10000, rom);
        AddressSpace as = sys.addressSpace("memory", root);
        as.stqLe(0x10010, 0, U);
        assertEquals(0x1122334455667788L, as.ldqLe(0x10010, U, null), "the store was dropped, as a store to ROM is");
    }

    @Test
    void aBackendThatReturnsTooLittleMemoryIsRefusedAndItsBlockFreed() {
        List<RecordingBlock> made = new ArrayList<>();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> sys.ram("short", 0x2000,
                (name, size) -> {
                    RecordingBlock rb = new RecordingBlock(name, 0x1000, Set.of());
                    made.add(rb);
                    return rb;
                }));
        assertEquals("region=short size=0x2000 blockLength=0x1000: the allocator returned too little RAM",
                e.getMessage());
        assertEquals(1, made.get(0).frees);
        assertEquals(0, sys.ramList().blocks().size(), "the ram_addr space is unchanged");
        assertEquals("short", sys.ram("short", 0x1000).ramBlock().idstr(), "the refused block's name is free again");
    }

    @Test
    void resizeableRamFromABackendReservesTheMaxSize() {
        List<RecordingBlock> made = new ArrayList<>();
        MemoryRegion r = sys.resizeableRam("fw", 0x1800, 0x8000, null, (name, size) -> {
            RecordingBlock rb = new RecordingBlock(name, size, Set.of());
            made.add(rb);
            return rb;
        });
        assertEquals(0x8000, made.get(0).maxLength());
        assertEquals(0x2000, r.ramBlock().usedLength());
        assertTrue(r.ramBlock().flags().contains(RamFlag.RESIZEABLE));
        r.ramResize(0x8000);
        assertEquals(0x8000, r.ramBlock().usedLength());
        r.ramResize(0x3000);
        r.ramResize(0x2800); // the same used length: the backend hears nothing
        assertEquals(List.of("used 0x2000 -> 0x8000 size 0x8000", "used 0x8000 -> 0x3000 size 0x3000"),
                made.get(0).calls);
    }
}
