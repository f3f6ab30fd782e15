package dev.guestmem.bench.riscv;

import dev.guestmem.bench.machine.CfiFlash;
import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import dev.guestmem.memory.Rcu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static dev.guestmem.bench.riscv.Rv64Asm.*;
import static dev.guestmem.bench.riscv.Rv64Harness.CODE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hart's check points on the {@code HostTlb}: they are quiescent states, so a hart that never leaves its
 * read-side section still lets grace periods end; and a store that changed the map (an MMIO write on which a device
 * remapped) is followed by one at once, so the guest's next access sees the new map.
 */
class CheckPointTest {
    /**
     * A hart loops for ever ({@code addi; j .-4}) in one read-side section that it never leaves; grace periods end
     * meanwhile. Without check points inside {@link Rv64Cpu#run} the grace period would wait for ever: the timeout
     * turns that hang into a failure (on a thread of its own: a grace period does not answer an interrupt).
     */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void gracePeriodsEndWhileAHartRunsInASectionItNeverLeaves() throws Exception {
        Rv64Harness h = new Rv64Harness();
        h.code(CODE, addi(A0, A0, 1), jal(ZERO, -4));
        Rcu rcu = h.machine.system().rcu();
        CountDownLatch running = new CountDownLatch(1);
        AtomicLong retired = new AtomicLong();
        AtomicLong stop = new AtomicLong();
        Thread hart = Thread.ofPlatform().name("hart-0").start(() -> {
            try (GuestMemory memory = h.machine.guestMemory(MemoryPath.HOST_TLB);
                 Rv64Cpu cpu = h.machine.newHart(0, memory)) {
                cpu.setPc(CODE);
                memory.enterSection();
                try {
                    cpu.run(1000);
                    running.countDown();
                    while (stop.get() == 0) {
                        cpu.run(1_000_000);
                    }
                } finally {
                    memory.leaveSection();
                }
                retired.set(cpu.retired());
            }
        });
        running.await();
        for (int i = 0; i < 3; i++) {
            rcu.synchronize();
        }
        assertTrue(hart.isAlive(), "the hart was still in its section");
        stop.set(1);
        hart.join();
        assertTrue(retired.get() > 1000, "retired " + retired.get());
    }

    /**
     * The guest reads word 0 of the flash in read-array mode (the TLB caches the page), writes the read-identifier
     * command (the flash leaves romd mode: a commit), and reads word 0 again in the same block: the manufacturer
     * identifier, not the array's stale word; then read-array again gives the array back.
     */
    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"SOFT_TLB", "HOST_TLB"})
    void anMmioWriteThatRemapsIsSeenByTheNextAccess(MemoryPath path) {
        Rv64Harness h = new Rv64Harness();
        h.machine.loadBootImage(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(0x1234_5678).array());
        h.code(CODE,
                load(2, A0, T1, 0), // lw a0, 0(t1): the array
                store(0, T2, T1, 0), // sb t2, 0(t1): 0x90, read identifier
                load(2, A1, T1, 0), // lw a1, 0(t1): the identifier
                store(0, A3, T1, 0), // sb a3, 0(t1): 0xff, read array
                load(2, A2, T1, 0)); // lw a2, 0(t1): the array again
        Rv64Cpu cpu = h.hart(0, path);
        cpu.setReg(T1, RiscvVirtMachine.FLASH_BASE);
        cpu.setReg(T2, 0x90);
        cpu.setReg(A3, 0xff);
        assertEquals(5, cpu.run(5));
        assertNull(cpu.fault());
        assertEquals(0x1234_5678, cpu.reg(A0));
        assertEquals(CfiFlash.MANUFACTURER_ID, cpu.reg(A1), path + ": read after the flash left romd mode");
        assertEquals(0x1234_5678, cpu.reg(A2), path + ": read after it came back");
        assertTrue(h.machine.flash().isRomdMode());
    }
}
