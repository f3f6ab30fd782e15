package dev.guestmem.bench.riscv;

import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every path of the benchmark compute the program's checksum, run after run on the same machine, and count the same
 * guest instructions: the two figures measure the same work.
 */
class GuestInstructionsBenchmarkTest {
    @ParameterizedTest
    @EnumSource(value = GuestProgram.class, names = {"MEMCPY", "SORT", "HASH"})
    void bothPathsComputeTheChecksumTheSameWayTwice(GuestProgram program) throws InterruptedException {
        GuestInstructionsBenchmark bench = new GuestInstructionsBenchmark();
        long[] retiredPerPath = new long[MemoryPath.values().length];
        for (MemoryPath path : MemoryPath.values()) {
            GuestInstructionsBenchmark.Guest guest = new GuestInstructionsBenchmark.Guest();
            guest.program = program;
            guest.path = path;
            guest.setup();
            GuestInstructionsBenchmark.Retired retired = new GuestInstructionsBenchmark.Retired();
            retired.clear();
            assertEquals(program.expectedChecksum(1), bench.run(guest, retired), path.name());
            long once = retired.instructions;
            assertTrue(once > 100_000, path + " retired " + once);
            assertEquals(program.expectedChecksum(1), bench.run(guest, retired), path + ", after a reset");
            assertEquals(2 * once, retired.instructions, path + ": a run after a reset repeats the same instructions");
            retiredPerPath[path.ordinal()] = once;
        }
        for (MemoryPath path : MemoryPath.values()) {
            assertEquals(retiredPerPath[0], retiredPerPath[path.ordinal()], path + " retires what the others do");
        }
    }
}
