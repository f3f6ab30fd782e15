package dev.guestmem.bench.job;

import dev.guestmem.bench.machine.MovableBarDevice;
import dev.guestmem.bench.riscv.GuestProgram;
import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the device thread's changes do to the map, seen from outside it through the address space; and that a guest
 * program runs to its checksum while the thread changes the map under it.
 */
class DeviceThreadTest {
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    @Test
    void eachStepChangesTheMapAsTheGuestWouldSeeIt() {
        RiscvVirtMachine machine = RiscvVirtMachine.create();
        DeviceThread devices = new DeviceThread(machine, System.nanoTime());
        int[] result = new int[1];

        devices.step(); // the BAR moves one slot up
        long moved = RiscvVirtMachine.BAR_BASE + MovableBarDevice.BAR_SIZE;
        assertEquals(MovableBarDevice.ID, machine.memory().ldlLe(moved, ATTRS, result));
        machine.memory().ldlLe(RiscvVirtMachine.BAR_BASE, ATTRS, result);
        assertNotEquals(MemTxResult.OK, result[0], "nothing is left at the old address");

        devices.step(); // the flash leaves romd mode: its reads go to the device
        assertFalse(machine.flash().isRomdMode());
        long mmio = machine.mmioAccesses();
        machine.memory().ldlLe(RiscvVirtMachine.FLASH_BASE, ATTRS, result);
        assertEquals(mmio + 1, machine.mmioAccesses(), "a read out of romd mode is an MMIO access");

        devices.step(); // RAM is hot-added
        FlatRange hot = machine.memory().flatView().lookup(DeviceThread.HOTPLUG_BASE);
        assertEquals("hotplug.ram", hot.region().name());
        machine.memory().stqLe(DeviceThread.HOTPLUG_BASE + 8, 42, ATTRS);
        assertEquals(42, machine.memory().ldqLe(DeviceThread.HOTPLUG_BASE + 8, ATTRS, result));

        devices.step(); // the BAR is disabled
        assertNull(machine.memory().flatView().lookup(moved));

        for (int i = 0; i < 4; i++) {
            devices.step(); // BAR moved (still disabled), romd back on, RAM removed, BAR enabled again
        }
        assertTrue(machine.flash().isRomdMode());
        assertNull(machine.memory().flatView().lookup(DeviceThread.HOTPLUG_BASE));
        long now = RiscvVirtMachine.BAR_BASE + 2 * MovableBarDevice.BAR_SIZE;
        assertEquals(MovableBarDevice.ID, machine.memory().ldlLe(now, ATTRS, result));

        assertEquals(8, devices.commits().size());
        assertEquals(List.of("bar move", "romd off", "ram add", "bar disable", "bar move", "romd on", "ram remove",
                "bar enable"), devices.commits().stream().map(DeviceThread.Commit::change).toList());
        assertEquals(8, devices.commitNanos().getTotalCount());
        assertTrue(devices.failures().isEmpty(), devices.failures().toString());
        assertTrue(devices.checks() >= 8);
    }

    @ParameterizedTest
    @EnumSource(value = MemoryPath.class, names = {"HOST_TLB", "SOFT_TLB"})
    void aProgramPassesWhileTheThreadChangesTheMap(MemoryPath tlb) throws Exception {
        RiscvVirtMachine machine = RiscvVirtMachine.create();
        DeviceThread devices = new DeviceThread(machine, System.nanoTime());
        Thread thread = Thread.ofPlatform().name("devices").start(devices);
        long generation0 = machine.memory().generation();
        long deadline = System.nanoTime() + 60_000_000_000L;
        try (Vcpus vcpus = new Vcpus(machine, 2, new VcpuGate(), tlb)) {
            // Again until the thread has published at least four new maps while the programs ran: a fast machine
            // may run both before the thread's fourth step.
            do {
                for (GuestProgram program : List.of(GuestProgram.SPINLOCK, GuestProgram.UART)) {
                    Vcpus.ProgramRun run = vcpus.runProgram(program, System.nanoTime() + Long.MAX_VALUE);
                    assertEquals(Vcpus.Outcome.PASSED, run.outcome(), tlb + " " + program + ": " + run.detail());
                }
            } while (machine.memory().generation() - generation0 < 4 && System.nanoTime() < deadline);
        } finally {
            devices.stop();
            thread.join();
        }
        assertTrue(devices.failures().isEmpty(), devices.failures().toString());
        assertTrue(devices.commits().size() >= 4, "the thread changed the map: " + devices.commits().size());
        assertEquals(RiscvVirtMachine.BAR_BASE, machine.bar().addr(), "the thread puts the map back when it ends");
        assertTrue(machine.bar().isEnabled() && machine.flash().isRomdMode());
    }
}
