package dev.guestmem.memory;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Accesses through an IOMMU, as QEMU's {@code flatview_do_translate} loop does them: the IOMMU is asked for the page
 * (with the context {@code attrsToIndex} picks), the access needs the read or write permission or it lands on
 * unassigned memory (a decode error that reads as 0), the address becomes the translated page plus the offset in it,
 * the length is cut at the IOMMU page, and the access continues in the target address space, through further IOMMUs
 * if there are any.
 *
 * <p>The IOMMU here: a DMA address space whose 64 KiB window is an IOMMU; input page n (4 KiB) maps to system RAM page
 * {@code 15 - n}, so consecutive pages land in reverse order; page 3 is read-only, page 5 write-only, page 7 unmapped,
 * and context 1 (secure accesses) sees everything read-only.
 */
class IommuAccessTest {
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;
    private static final MemTxAttrs SECURE = MemTxAttrs.of(true, false, 0);

    private MemorySystem m;
    private MemoryRegion ram;
    private AddressSpace memory;
    private AddressSpace dma;
    private final List<String> asked = new ArrayList<>();

    @BeforeEach
    void setUp() {
        m = new MemorySystem();
        MemoryRegion sys = m.container("system", -1L);
        ram = m.ram("ram", 0x10000);
        sys.addSubregion(0x100000, ram);
        memory = m.addressSpace("memory", sys);
        MemoryRegion dmaRoot = m.container("dma-root", -1L);
        MemoryRegion iommu = m.iommu("iommu", 0x10000, new IommuOps() {
            @Override
            public IommuTlbEntry translate(long addr, int flag, int iommuIdx) {
                asked.add(Long.toHexString(addr) + "/" + flag + "/" + iommuIdx);
                long page = addr >>> 12;
                int perm = page == 3 || iommuIdx == 1 ? IOMMU_RO : page == 5 ? IOMMU_WO : page == 7 ? IOMMU_NONE
                        : IOMMU_RW;
                return new IommuTlbEntry(memory, addr & ~0xfffL, 0x100000 + ((15 - page) << 12), 0xfff, perm);
            }

            @Override
            public int attrsToIndex(MemTxAttrs attrs) {
                return attrs.secure() ? 1 : 0;
            }

            @Override
            public int numIndexes() {
                return 2;
            }
        });
        dmaRoot.addSubregion(0, iommu);
        dma = m.addressSpace("dma", dmaRoot);
    }

    @Test
    void translateFollowsTheIommuIntoItsTarget() {
        Translation t = dma.translate(0x1234, 0x10000, false, ATTRS);
        assertSame(ram, t.region());
        assertEquals(0xe234, t.xlat(), "input page 1 is RAM page 14");
        assertEquals(0xdcc, t.len(), "cut at the end of the IOMMU page");
        assertEquals(List.of("1234/1/0"), asked, "asked with IOMMU_RO and context 0");
        asked.clear();
        dma.translate(0x1234, 4, true, SECURE);
        assertEquals(List.of("1234/2/1"), asked, "a secure write asks context 1 with IOMMU_WO");
    }

    @Test
    void refusedAccessesLandOnUnassignedMemory() {
        assertSame(m.unassignedRegion(), dma.translate(0x3000, 4, true, ATTRS).region(), "page 3 is read-only");
        assertSame(ram, dma.translate(0x3000, 4, false, ATTRS).region());
        assertSame(m.unassignedRegion(), dma.translate(0x5000, 4, false, ATTRS).region(), "page 5 is write-only");
        assertSame(m.unassignedRegion(), dma.translate(0x7000, 4, false, ATTRS).region(), "page 7 is unmapped");
        assertSame(m.unassignedRegion(), dma.translate(0x1000, 4, true, SECURE).region(), "context 1 is read-only");
    }

    @Test
    void loadsAndStoresGoThroughWithTheRightResults() {
        int[] r = new int[1];
        assertEquals(MemTxResult.OK, dma.stqLe(0x0008, 0x1122334455667788L, ATTRS));
        assertEquals(0x1122334455667788L, memory.ldqLe(0x10f008, ATTRS, r), "input page 0 is RAM page 15");
        assertEquals(0x1122334455667788L, dma.ldqLe(0x0008, ATTRS, r));
        assertEquals(MemTxResult.OK, r[0]);
        assertEquals(MemTxResult.DECODE_ERROR, dma.stlLe(0x3000, 1, ATTRS), "read-only page");
        assertEquals(0, memory.ldlLe(0x10c000, ATTRS, r), "the refused store did not reach RAM");
        assertEquals(0, dma.ldlLe(0x7000, ATTRS, r));
        assertEquals(MemTxResult.DECODE_ERROR, r[0], "an unmapped page reads as unassigned");
        assertEquals(MemTxResult.OK, dma.stlLe(0x5000, 0xabcd, ATTRS), "write-only page takes stores");
        assertEquals(0xabcd, memory.ldlLe(0x10a000, ATTRS, r));
    }

    @Test
    void bulkCopiesSplitAtIommuPagesAndOrTheResults() {
        byte[] pattern = new byte[0x3000];
        for (int i = 0; i < pattern.length; i++) {
            pattern[i] = (byte) (i * 7 + 3);
        }
        // input pages 0, 1, 2 land in RAM pages 15, 14, 13: three separate copies
        assertEquals(MemTxResult.OK, dma.write(0x0000, ATTRS, pattern, 0, pattern.length));
        byte[] back = new byte[0x1000];
        for (int p = 0; p < 3; p++) {
            memory.read(0x100000 + ((15L - p) << 12), ATTRS, back, 0, back.length);
            byte[] expected = java.util.Arrays.copyOfRange(pattern, p * 0x1000, (p + 1) * 0x1000);
            assertArrayEquals(expected, back, "page " + p);
        }
        byte[] read = new byte[0x3000];
        assertEquals(MemTxResult.OK, dma.read(0x0000, ATTRS, read, 0, read.length));
        assertArrayEquals(pattern, read);
        // pages 6, 7 (unmapped), 8: the middle reads as zeros with a decode error, the others are RAM
        byte[] mixed = new byte[0x3000];
        java.util.Arrays.fill(mixed, (byte) 0x5a);
        assertEquals(MemTxResult.DECODE_ERROR, dma.read(0x6000, ATTRS, mixed, 0, mixed.length));
        for (int i = 0x1000; i < 0x2000; i++) {
            assertEquals(0, mixed[i], "unassigned bytes read as 0 at " + Integer.toHexString(i));
        }
        assertEquals(MemTxResult.DECODE_ERROR, dma.set(0x2800, (byte) 0xee, 0x1000, ATTRS), "page 3 is read-only");
        assertEquals((byte) 0xee, (byte) memory.ldub(0x100000 + (13L << 12) + 0xfff, ATTRS, null), "page 2 was filled");
        assertEquals(0, memory.ldub(0x100000 + (12L << 12), ATTRS, null), "page 3 was not");
    }

    @Test
    void dmaMapAndAccessValidFollowTheIommu() {
        DmaMapping direct = dma.map(0x1100, 0x2000, true, ATTRS);
        assertEquals(false, direct.isBounce(), "RAM behind the IOMMU maps directly");
        assertEquals(0xf00, direct.length(), "cut at the end of the IOMMU page");
        direct.segment().set(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0, 0x600d);
        dma.unmap(direct, true, 4);
        assertEquals(0x600d, memory.ldlLe(0x10e100, ATTRS, null), "input page 1 is RAM page 14");
        DmaMapping refused = dma.map(0x3000, 0x10, true, ATTRS);
        assertEquals(true, refused.isBounce(), "a refused write bounces, as in QEMU");
        dma.unmap(refused, true, 0);
        assertEquals(true, dma.accessValid(0x0000, 0x3000, false, ATTRS));
        assertEquals(true, dma.accessValid(0x3000, 0x10, false, ATTRS));
        assertEquals(false, dma.accessValid(0x3000, 0x10, true, ATTRS), "page 3 is read-only");
        assertEquals(false, dma.accessValid(0x6ff0, 0x20, false, ATTRS), "runs into unmapped page 7");
    }

    @Test
    void unalignedRamAccessAcrossAnIommuPageIsUnassigned() {
        int[] r = new int[1];
        assertEquals(0, dma.ldqLe(0x0ffc, ATTRS, r), "pages 0 and 1 are not adjacent in RAM");
        assertEquals(MemTxResult.DECODE_ERROR, r[0]);
    }

    @Test
    void iommusChainAndLoopsAreCaught() {
        // a second IOMMU in front of the first: identity into the DMA address space
        MemoryRegion frontRoot = m.container("front-root", -1L);
        MemoryRegion front = m.iommu("front", 0x10000,
                (addr, flag, idx) -> new IommuTlbEntry(dma, addr & ~0xfffL, addr & ~0xfffL, 0xfff, IommuOps.IOMMU_RW));
        frontRoot.addSubregion(0, front);
        AddressSpace chained = m.addressSpace("chained", frontRoot);
        assertEquals(MemTxResult.OK, chained.stlLe(0x1010, 0x77, ATTRS));
        assertEquals(0x77, memory.ldlLe(0x10e010, ATTRS, null));
        // an IOMMU that maps into its own address space forever
        MemoryRegion loopRoot = m.container("loop-root", -1L);
        AddressSpace[] self = new AddressSpace[1];
        loopRoot.addSubregion(0, m.iommu("loop", 0x1000,
                (addr, flag, idx) -> new IommuTlbEntry(self[0], 0, 0, 0xfff, IommuOps.IOMMU_RW)));
        self[0] = m.addressSpace("loop", loopRoot);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> self[0].translate(0, 4, false, ATTRS));
        assertEquals(true, e.getMessage().contains("addressSpace=loop"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> self[0].ldlLe(0, ATTRS, null), "a load, not a stack overflow");
        assertThrows(IllegalStateException.class, () -> self[0].read(0, ATTRS, new byte[8], 0, 8));
        assertEquals(MemTxResult.OK, chained.stlLe(0x1010, 0x78, ATTRS), "the thread's count was unwound");
    }
}
