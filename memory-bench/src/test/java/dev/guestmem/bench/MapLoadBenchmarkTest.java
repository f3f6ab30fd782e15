package dev.guestmem.bench;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.memory.mtree.MtreePrinter;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MapLoadBenchmark's two ways of building its map build the same thing, so their difference is the tools' share. */
class MapLoadBenchmarkTest {
    @Test
    void theMapAndTheCoreBuildTheSameView() {
        MemorySystem fromMap = MachineMap.parse(MapLoadBenchmark.mapJson(1000), MemorySystem.LAYOUT_ONLY,
                MachineMap.UNIMPLEMENTED_DEVICES).system();
        String flat = MtreePrinter.flatViews(fromMap);
        assertEquals(flat, MtreePrinter.flatViews(MapLoadBenchmark.buildWithCore(1000)));
        assertEquals(MtreePrinter.mtree(fromMap, false),
                MtreePrinter.mtree(MapLoadBenchmark.buildWithCore(1000), false));
        assertTrue(flat.contains("  00000000003e7000-00000000003e7fff (prio 0, i/o): r999\n"), flat);
    }
}
