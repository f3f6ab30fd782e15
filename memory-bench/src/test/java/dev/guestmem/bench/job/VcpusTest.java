package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.GuestProgram;
import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import dev.guestmem.memory.Rcu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The vCPUs on the {@code HostTlb} keep its discipline: a grace period ends while they run guest code (their check
 * points are quiescent states) and while the gate holds them paused (they wait outside their sections). A vCPU that
 * held its section across the wait would hold {@link Rcu#synchronize()} until the program ended, which it cannot do
 * while paused: the timeout only turns that hang into a failure (on a thread of
 * its own, because a grace period does not answer an interrupt). With the section kept across the gate's wait, this
 * test failed so.
 */
class VcpusTest {
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void gracePeriodsEndWhileTheVcpusRunAndWhileTheyArePaused() throws Exception {
        RiscvVirtMachine machine = RiscvVirtMachine.create();
        VcpuGate gate = new VcpuGate();
        Rcu rcu = machine.system().rcu();
        try (Vcpus vcpus = new Vcpus(machine, 2, gate, MemoryPath.HOST_TLB)) {
            AtomicReference<Object> run = new AtomicReference<>();
            Thread host = Thread.ofPlatform().name("host").start(() -> {
                try {
                    run.set(vcpus.runProgram(GuestProgram.RENDER, System.nanoTime() + Long.MAX_VALUE));
                } catch (InterruptedException | RuntimeException e) {
                    run.set(e);
                }
            });
            while (vcpus.totalRetired() < 10_000 && host.isAlive()) {
                Thread.onSpinWait();
            }
            long before = rcu.gracePeriods();
            rcu.synchronize(); // the vCPUs are inside their sections, between check points (see CheckPointTest)

            gate.pause();
            try {
                assertFalse(machine.finisher().finished(), "paused before the program ended");
                rcu.synchronize(); // every vCPU waits at the gate
                assertTrue(rcu.gracePeriods() >= before + 2, "two grace periods: " + rcu.gracePeriods());
            } finally {
                gate.resume();
            }
            host.join();
            Vcpus.ProgramRun result = (Vcpus.ProgramRun) run.get();
            assertEquals(Vcpus.Outcome.PASSED, result.outcome(), result.detail());
        }
    }
}
