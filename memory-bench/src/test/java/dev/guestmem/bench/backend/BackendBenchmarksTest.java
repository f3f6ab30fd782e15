package dev.guestmem.bench.backend;

import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.RamFlag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The backend benchmarks measure what they say: each backend's RAM holds the baseline's bytes and its accesses
 * read and write them; creation makes RAM of the asked size, resident only where preallocated; discard gives the
 * memory back (or, for an Arena, zeroes it) and re-populating takes it again.
 */
class BackendBenchmarksTest {
    private static final long MIB = 1 << 20;

    @ParameterizedTest
    @ValueSource(strings = {"arena", "anonymous", "memfd", "file"})
    void accessesReadAndWriteTheBaselinesBytes(String backend) {
        BackendAccessBenchmark b = new BackendAccessBenchmark();
        b.backend = backend;
        b.workingSet = MIB;
        b.setup();
        try {
            long raw = b.rawLoad();
            assertEquals(raw, b.segmentLoad(), "segmentLoad");
            assertEquals(raw, b.asLoad(), "asLoad");
            assertEquals(raw, b.tlbLoad(), "tlbLoad");

            MemorySegment page = b.rawCopy();
            long lastOffset = b.pageOffsets[b.pageOffsets.length - 1];
            assertEquals(-1, page.mismatch(b.raw.asSlice(lastOffset, BackendAccessBenchmark.PAGE)));
            page.fill((byte) 0);
            assertEquals(MemTxResult.OK, b.asCopy());
            assertEquals(-1, page.mismatch(b.raw.asSlice(lastOffset, BackendAccessBenchmark.PAGE)),
                    "asCopy brought the same page");

            b.rawStore();
            b.segmentStore();
            assertEquals(-1, b.raw.mismatch(b.ram.ramSegment()), "segmentStore wrote what rawStore wrote");
            BackendAccessBenchmark.fill(b.ram.ramSegment());
            assertEquals(MemTxResult.OK, b.asStore());
            assertEquals(-1, b.raw.mismatch(b.ram.ramSegment()), "asStore wrote what rawStore wrote");
            BackendAccessBenchmark.fill(b.ram.ramSegment());
            assertEquals(MemTxResult.OK, b.tlbStore());
            assertEquals(-1, b.raw.mismatch(b.ram.ramSegment()), "tlbStore wrote what rawStore wrote");
        } finally {
            b.tearDown();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"arena", "anonymous", "memfd", "anonymous-prealloc", "memfd-prealloc"})
    void creationMakesRamResidentOnlyWherePreallocated(String backend) {
        BackendCreationBenchmark bench = new BackendCreationBenchmark();
        BackendCreationBenchmark.Size size = new BackendCreationBenchmark.Size();
        size.size = 64 * MIB;
        BackendCreationBenchmark.Creator c = new BackendCreationBenchmark.Creator();
        c.backend = backend;
        c.setup();
        try {
            var ram = bench.create(c, size);
            assertEquals(64 * MIB, ram.size());
            long resident = ResidentMemory.of(ram.ramSegment());
            if (backend.equals("arena") || backend.endsWith("-prealloc")) {
                assertEquals(64 * MIB, resident, "every page populated at creation");
            } else {
                assertTrue(resident < MIB, "lazily zeroed memory costs nothing until touched: " + resident);
                assertTrue(ram.ramBlock().flags().contains(RamFlag.NORESERVE), ram.ramBlock().toString());
            }
            c.free();
            assertEquals(null, c.created);
        } finally {
            c.tearDown();
        }
    }

    @Test
    void aPreallocatedArenaIsRefused() {
        try (Backends backends = new Backends()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> backends.allocator("arena-prealloc"));
            assertEquals("backend=arena-prealloc: Arena memory is always populated", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> backends.allocator("tmpfs"));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"arena", "anonymous", "memfd", "file"})
    void discardGivesTheMemoryBackAndRepopulateTakesItAgain(String backend) {
        DiscardBenchmark d = new DiscardBenchmark();
        d.backend = backend;
        d.size = 64 * MIB;
        d.setup();
        try {
            d.prepare(true);
            assertEquals(d.size, d.residentBefore);
            d.discard();
            d.record(true);
            assertEquals(0, d.memory.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0), "reads as zero");
            if (backend.equals("arena")) {
                assertEquals(d.size, d.residentDiscarded, "an Arena keeps its memory");
            } else {
                assertTrue(d.residentDiscarded < MIB, "given back: " + d.residentDiscarded);
            }
            d.prepare(false);
            d.repopulate();
            d.record(false);
            assertEquals(d.size, d.residentRepopulated);
        } finally {
            d.tearDown();
        }
    }
}
