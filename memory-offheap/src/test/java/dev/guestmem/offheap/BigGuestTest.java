package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
import org.junit.jupiter.api.Test;

/**
 * A 64 GiB guest of lazily zeroed anonymous RAM: created, mapped and touched in a few places while resident memory
 * grows only by the pages touched. The creation time is printed, not asserted (tests never time).
 */
class BigGuestTest {
    private static final long GIB = 1L << 30;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @Test
    void sixtyFourGibOfLazyRamCostsOnlyTheTouchedPages() {
        HostMemoryBackend backend = HostMemoryBackend.anonymous().build();
        MemorySystem sys = new MemorySystem(backend);
        sys.ram("warm-up", 1 << 20).destroy(); // links the native calls once, which the creation time should not show
        long rssBefore = ProcSelf.vmRss();
        long[] backendNanos = new long[1];
        long t0 = System.nanoTime();
        MemoryRegion ram = sys.ram("pc.ram", 64 * GIB, (name, size) -> {
            long start = System.nanoTime();
            RamBlock block = backend.allocate(name, size);
            backendNanos[0] = System.nanoTime() - start;
            return block;
        });
        long created = System.nanoTime() - t0;
        MemoryRegion root = sys.container("system", U64.SIZE_2_64);
        root.addSubregion(0, ram);
        AddressSpace as = sys.addressSpace("memory", root);
        SoftTlb tlb = new SoftTlb(as);
        long[] touched = {0, 0x1000, 17 * GIB + 0x123, 40 * GIB, 64 * GIB - 8};
        for (long addr : touched) {
            assertEquals(MemTxResult.OK, as.stqLe(addr, ~addr, U));
        }
        for (long addr : touched) {
            assertEquals(~addr, tlb.ldqLe(addr), "addr=" + U64.hex(addr));
        }
        assertEquals(0, as.ldqLe(33 * GIB, U, null), "untouched memory reads as zeros");
        long resident = ProcSelf.residentBytes(ram.ramSegment());
        long rssAfter = ProcSelf.vmRss();
        System.out.printf("BigGuestTest: 64 GiB of anonymous RAM: the backend's block in %.3f ms, the region (with "
                        + "its dirty bitmaps) in %.3f ms; %d KiB of it resident after touching %d places; VmRSS %d MiB "
                        + "before, %d MiB after%n", backendNanos[0] / 1e6, created / 1e6, resident >> 10,
                touched.length, rssBefore >> 20, rssAfter >> 20);
        // Each touch may bring in one transparent huge page (2 MiB), and reading zeros none.
        assertTrue(resident <= touched.length * (2L << 20), "resident=" + resident);
        assertTrue(rssAfter - rssBefore < GIB, "VmRSS grew from " + rssBefore + " to " + rssAfter);
        root.delSubregion(ram);
        ram.destroy();
        sys.rcu().barrier();
    }
}
