package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.GuestProgram;
import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import dev.guestmem.bench.riscv.Rv64Cpu;
import dev.guestmem.bench.riscv.TestFinisher;
import dev.guestmem.memory.MemTxAttrs;
import org.HdrHistogram.Histogram;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Phaser;
import java.util.concurrent.locks.LockSupport;

/**
 * The machine's vCPU threads and the loop that feeds them the guest programs one after another: the host loads a
 * program into the flash, all vCPUs boot it (each a new {@link Rv64Cpu} over its own, kept guest memory: a
 * {@code HostTlb} or a {@code SoftTlb}), and when the finisher has been written the host checks the checksum in the
 * mailbox and the UART's lines against the Java computation of the same program. A program still running at the
 * deadline is stopped and counted as interrupted, neither passed nor failed.
 *
 * <h2>The read-side section</h2>
 * With the {@code HostTlb} each vCPU thread registers its own RCU reader and runs guest code inside a read-side
 * section that stays open from slice to slice (the hart reaches a check point at least every
 * {@value Rv64Cpu#CHECK_INTERVAL} instructions), and ends it before anything that can block: waiting at the
 * {@link VcpuGate} while the migration has the vCPUs paused, sleeping after {@code wfi}, and waiting for the next
 * program. So no grace period ever waits for a paused or idle vCPU. Inside the section a vCPU may wait only for what
 * another thread holds briefly and never across a grace period: the global lock of an MMIO access (held by the device
 * thread for one commit, as QEMU's vCPUs wait for the BQL inside {@code cpu_exec}) and the machine's lock for refused
 * atomics.
 *
 * <p>Threading: {@link #runProgram} and {@link #close} on one host thread; the vCPU threads are this class's own; the
 * counters of {@link Vcpu} may be read from any thread while they run.
 */
final class Vcpus implements AutoCloseable {
    /** Instructions per slice: the vCPUs look at the finisher, the deadline and the gate between slices. */
    static final long SLICE = 20_000;
    /** A program that retires this many instructions on one vCPU has gone wrong. */
    static final long MAX_INSTRUCTIONS = 2_000_000_000L;

    /** One program's run and what the host found. */
    record ProgramRun(GuestProgram program, int harts, Outcome outcome, String detail, long instructions, long nanos) {
    }

    enum Outcome { PASSED, FAILED, INTERRUPTED }

    /** One vCPU: its memory (made on its thread), counters and histograms. */
    static final class Vcpu {
        final int id;
        /** Made by the vCPU thread before the constructor of {@link Vcpus} returns; null if it could not be. */
        private CountingGuestMemory memory;
        /** Published by the vCPU thread after every slice, for readers on other threads. */
        volatile long retired;
        volatile long loads;
        volatile long stores;
        volatile long fetches;
        volatile long atomicOps;
        /** Every access through the memory, atomics included. */
        volatile long accesses;
        volatile long misses;
        private long retiredBefore;

        Vcpu(int id) {
            this.id = id;
        }

        private void publish(Rv64Cpu cpu) {
            retired = retiredBefore + cpu.retired();
            loads = memory.loads;
            stores = memory.stores;
            fetches = memory.fetches;
            atomicOps = memory.atomics;
            accesses = memory.accesses();
            misses = memory.missCount();
        }

        Histogram slowNanos() {
            return memory.slowNanos;
        }

        Histogram hitNanos() {
            return memory.hitNanos;
        }
    }

    private final RiscvVirtMachine machine;
    private final VcpuGate gate;
    private final List<Vcpu> vcpus = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final Phaser phaser;
    private volatile boolean shutdown;
    /** System.nanoTime() after which a running program is stopped. */
    private volatile long deadline;
    private volatile boolean interrupted;
    /** Whether a vCPU faulted in the current program; written under this object's lock. */
    private volatile boolean faulted;
    /** Faults of the current program's vCPUs; written by vCPU threads under this object's lock. */
    private final List<String> faults = new ArrayList<>();

    /**
     * Starts {@code count} vCPU threads, each of which makes its guest memory through {@code tlb}; returns once all
     * have.
     *
     * @throws IllegalStateException if a vCPU could not make its memory (a HostTlb without native access); the threads
     *                               started have ended then
     */
    Vcpus(RiscvVirtMachine machine, int count, VcpuGate gate, MemoryPath tlb) {
        this.machine = machine;
        this.gate = gate;
        this.phaser = new Phaser(count + 1);
        CountDownLatch made = new CountDownLatch(count);
        List<RuntimeException> failures = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Vcpu v = new Vcpu(i);
            vcpus.add(v);
            threads.add(Thread.ofPlatform().name("vcpu-" + i).daemon(true).start(() -> {
                try {
                    v.memory = new CountingGuestMemory(machine.guestMemory(tlb));
                } catch (RuntimeException e) {
                    synchronized (failures) {
                        failures.add(e);
                    }
                }
                made.countDown();
                if (v.memory != null) {
                    try (CountingGuestMemory memory = v.memory) {
                        vcpuLoop(v, memory);
                    }
                } else {
                    phaser.arriveAndDeregister();
                }
            }));
        }
        boolean interrupted = false;
        while (true) {
            try {
                made.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true; // each thread counts down at once: wait for them anyway
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        synchronized (failures) {
            if (!failures.isEmpty()) {
                close();
                throw new IllegalStateException("tlb=" + tlb + ": a vCPU could not make its memory: "
                        + failures.getFirst().getMessage(), failures.getFirst());
            }
        }
    }

    List<Vcpu> vcpus() {
        return vcpus;
    }

    /** Instructions retired by every vCPU so far. */
    long totalRetired() {
        long n = 0;
        for (Vcpu v : vcpus) {
            n += v.retired;
        }
        return n;
    }

    /** Loads {@code program}, runs it on every vCPU until it ends or {@code deadlineNanos} passes, and checks it. */
    ProgramRun runProgram(GuestProgram program, long deadlineNanos) throws InterruptedException {
        int harts = vcpus.size();
        gate.enter();
        try {
            machine.reset();
            machine.loadBootImage(program.image());
            machine.memory().stqLe(RiscvVirtMachine.MAILBOX_NHARTS, harts, MemTxAttrs.UNSPECIFIED);
        } finally {
            gate.exit();
        }
        synchronized (this) {
            faults.clear();
            faulted = false;
        }
        int consoleStart = machine.uart().output().length();
        long retiredStart = totalRetired();
        deadline = deadlineNanos;
        interrupted = false;
        long start = System.nanoTime();
        phaser.arriveAndAwaitAdvance(); // go
        phaser.arriveAndAwaitAdvance(); // every vCPU is back
        long nanos = System.nanoTime() - start;
        long instructions = totalRetired() - retiredStart;
        List<String> found;
        synchronized (this) {
            found = List.copyOf(faults);
        }
        if (!found.isEmpty()) {
            return new ProgramRun(program, harts, Outcome.FAILED, "fault: " + found.getFirst(), instructions, nanos);
        }
        TestFinisher finisher = machine.finisher();
        if (!finisher.finished() && interrupted) {
            return new ProgramRun(program, harts, Outcome.INTERRUPTED, "stopped at the deadline", instructions, nanos);
        }
        long checksum = machine.memory().ldqLe(RiscvVirtMachine.MAILBOX_RESULT, MemTxAttrs.UNSPECIFIED, new int[1]);
        String console = machine.uart().output().substring(consoleStart);
        long expected = program.expectedChecksum(harts);
        if (finisher.status() != TestFinisher.PASS) {
            return new ProgramRun(program, harts, Outcome.FAILED, "finisher=0x" + Integer.toHexString(
                    finisher.status()), instructions, nanos);
        }
        if (checksum != expected) {
            return new ProgramRun(program, harts, Outcome.FAILED, String.format("checksum=0x%016x expected=0x%016x",
                    checksum, expected), instructions, nanos);
        }
        if (!console.equals(program.expectedConsole(harts))) {
            return new ProgramRun(program, harts, Outcome.FAILED, "console=" + console.strip().replace('\n', '|'),
                    instructions, nanos);
        }
        return new ProgramRun(program, harts, Outcome.PASSED, String.format("checksum=0x%016x", checksum),
                instructions, nanos);
    }

    private void vcpuLoop(Vcpu v, CountingGuestMemory memory) {
        while (true) {
            phaser.arriveAndAwaitAdvance(); // wait for a program
            if (shutdown) {
                phaser.arriveAndDeregister();
                return;
            }
            try {
                runOne(v, memory);
            } catch (InterruptedException e) {
                fault(v, "interrupted");
                Thread.currentThread().interrupt();
            } catch (RuntimeException | Error e) {
                fault(v, e.toString()); // the host reports it; the job must not hang on a lost vCPU
            }
            phaser.arriveAndAwaitAdvance(); // done
        }
    }

    /** Runs the loaded program on {@code v} until it ends, faults or the deadline passes; in a section, see above. */
    private void runOne(Vcpu v, CountingGuestMemory memory) throws InterruptedException {
        TestFinisher finisher = machine.finisher();
        Rv64Cpu cpu = machine.newHart(v.id, memory);
        memory.enterSection();
        try {
            while (!finisher.finished() && cpu.fault() == null && !faulted) {
                if (System.nanoTime() - deadline > 0) {
                    interrupted = true;
                    break;
                }
                if (cpu.retired() > MAX_INSTRUCTIONS) {
                    fault(v, "retired=" + cpu.retired() + ": the program did not end");
                    break;
                }
                if (!gate.tryEnter()) {
                    // Paused: wait outside the section, so that no grace period waits for this vCPU meanwhile.
                    memory.leaveSection();
                    gate.enter();
                    memory.enterSection();
                }
                long n;
                try {
                    n = cpu.run(SLICE);
                } finally {
                    gate.exit();
                }
                v.publish(cpu);
                if (n < 64) {
                    // wfi, or a hart parked after its part: let the others have the core, outside the section
                    memory.leaveSection();
                    LockSupport.parkNanos(50_000);
                    memory.enterSection();
                }
            }
            if (cpu.fault() != null) {
                fault(v, cpu.fault());
            }
        } finally {
            memory.leaveSection();
            v.publish(cpu);
            v.retiredBefore += cpu.retired();
            cpu.close();
        }
    }

    private synchronized void fault(Vcpu v, String message) {
        faults.add("vcpu" + v.id + ": " + message);
        faulted = true; // the program has failed: the other vCPUs stop too
    }

    /** Ends the vCPU threads (between programs) and waits for them. */
    @Override
    public void close() {
        shutdown = true;
        phaser.arriveAndDeregister();
        boolean interrupted = false;
        for (Thread t : threads) {
            while (t.isAlive()) {
                try {
                    t.join();
                } catch (InterruptedException e) {
                    interrupted = true; // the threads end on their own at once: wait for them anyway
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
