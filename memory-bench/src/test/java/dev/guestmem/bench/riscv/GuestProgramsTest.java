package dev.guestmem.bench.riscv;

import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import dev.guestmem.bench.riscv.RiscvVirtMachine.RunResult;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every guest program boots from the flash, runs to the finisher and leaves the checksum its Java twin computes
 * ({@link GuestProgram#expectedChecksum}), printed on the UART too.
 */
class GuestProgramsTest {
    /** Far more than any program needs (the largest retires a few million): a bound, not a timing. */
    private static final long MAX_INSTRUCTIONS = 200_000_000L;

    static RunResult run(GuestProgram program, int harts, MemoryPath path) throws InterruptedException {
        RiscvVirtMachine machine = RiscvVirtMachine.create();
        machine.loadBootImage(program.image());
        return machine.run(harts, path, MAX_INSTRUCTIONS);
    }

    static void assertRan(GuestProgram program, int harts, RunResult result) {
        assertEquals(List.of(), result.faults(), result.toString());
        assertEquals(TestFinisher.PASS, result.finisherStatus(), result.toString());
        assertEquals(program.expectedChecksum(harts), result.checksum(), result.toString());
        assertEquals(program.expectedConsole(harts), result.console());
    }

    @ParameterizedTest
    @EnumSource(GuestProgram.class)
    void runsToItsChecksumOnOneHartThroughTheSoftTlb(GuestProgram program) throws InterruptedException {
        assertRan(program, 1, run(program, 1, MemoryPath.SOFT_TLB));
    }

    @ParameterizedTest
    @EnumSource(GuestProgram.class)
    void runsToItsChecksumOnOneHartThroughTheHostTlb(GuestProgram program) throws InterruptedException {
        assertRan(program, 1, run(program, 1, MemoryPath.HOST_TLB));
    }

    static Stream<Arguments> hartsAndTlbs() {
        return Stream.of(2, 3, 4).flatMap(harts -> Stream.of(MemoryPath.SOFT_TLB, MemoryPath.HOST_TLB)
                .map(tlb -> Arguments.of(harts, tlb)));
    }

    @ParameterizedTest
    @MethodSource("hartsAndTlbs")
    void hartsMeetOnTheSpinlock(int harts, MemoryPath tlb) throws InterruptedException {
        RunResult result = run(GuestProgram.SPINLOCK, harts, tlb);
        assertRan(GuestProgram.SPINLOCK, harts, result);
        for (long retired : result.retired()) {
            assertTrue(retired > 1000, "every hart ran its loop: " + result);
        }
    }

    @ParameterizedTest
    @EnumSource(value = GuestProgram.class, names = {"MEMCPY", "SORT", "HASH", "SELFMOD"})
    void runsToTheSameChecksumOverAPlainSegment(GuestProgram program) throws InterruptedException {
        assertRan(program, 1, run(program, 1, MemoryPath.SEGMENT));
    }

    @Test
    void theChecksumsDiffer() {
        // The Java twins are not all one constant: each program's checksum depends on what it computed.
        assertEquals(GuestProgram.values().length, java.util.Arrays.stream(GuestProgram.values())
                .mapToLong(p -> p.expectedChecksum(1)).distinct().count());
        assertNotEquals(GuestProgram.SPINLOCK.expectedChecksum(2), GuestProgram.SPINLOCK.expectedChecksum(3));
    }
}
