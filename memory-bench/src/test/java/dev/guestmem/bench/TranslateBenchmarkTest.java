package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.Translation;
import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link TranslateBenchmark} measures what it says: its map has the regions and shared pages it describes, and one
 * invocation of each method computes the same sum of region offsets, which for addresses in the working set is
 * worked out here independently; {@code translate} and the flat view agree on the region too.
 */
class TranslateBenchmarkTest {

    @Test
    void mapHasItsRegionsAndSubpages() {
        AccessMaps.Map map = AccessMaps.build(1000, 1 << 20);
        // the working set, 999 fillers; fillers 0 and 1 share a page, so the dispatch has subpage containers
        assertEquals(1000, map.addressSpace().flatView().rangeCount());
        var d = AddressSpaceDispatch.of(map.addressSpace());
        int s = d.sectionIndex(AccessMaps.fillerAddr(1));
        assertSame(map.root().subregions().stream().filter(r -> r.name().equals("io1")).findFirst().orElseThrow(),
                d.section(s).region());
        boolean subpages = false;
        for (int i = 0; i < d.sectionCount(); i++) {
            subpages |= d.isSubpage(i);
        }
        assertTrue(subpages, "some fillers share pages");
    }

    @ParameterizedTest
    @CsvSource({"1, 1, ram", "100, 1, ram", "1000, 64, ram", "100000, 1, ram",
                "1, 1, mixed", "1000, 1, mixed", "100000, 64, mixed"})
    void translateSidesAgree(int regions, int workingSetMiB, String targets) {
        TranslateBenchmark b = new TranslateBenchmark();
        b.regions = regions;
        b.workingSetMiB = workingSetMiB;
        b.targets = targets;
        b.setup();
        assertEquals(AccessMaps.ADDRESSES, b.addrs.length);

        long expected = b.binarySearch();
        assertEquals(expected, b.translate(), "translate");
        assertEquals(expected, b.sectionIndex(), "sectionIndex");
        if (targets.equals("ram")) {
            long offsets = Arrays.stream(b.addrs).map(a -> a - AccessMaps.RAM_BASE).sum();
            assertEquals(offsets, expected, "offsets into the working set");
            assertEquals(offsets, b.baseMinus(), "baseMinus");
        }
        // the region too, not only the offset, for a sample; and every address is mapped
        AddressSpace as = b.addressSpace;
        int regionsHit = 0;
        for (int i = 0; i < AccessMaps.ADDRESSES; i += 997) {
            long addr = b.addrs[i];
            FlatRange fr = as.flatView().lookup(addr);
            Translation t = as.translate(addr, TranslateBenchmark.LEN, false, MemTxAttrs.UNSPECIFIED);
            assertSame(fr.region(), t.region(), "addr=0x" + Long.toHexString(addr));
            regionsHit += fr.region().name().equals("ram") ? 0 : 1;
        }
        if (targets.equals("mixed") && regions > 1) {
            assertTrue(regionsHit > 0, "mixed targets reach the fillers");
        }
    }
}
