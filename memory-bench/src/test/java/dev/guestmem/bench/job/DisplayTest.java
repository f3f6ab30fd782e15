package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.GuestProgram;
import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;
import dev.guestmem.memory.MemTxAttrs;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The display sees what the guest draws: after the renderer ran, a refresh finds dirty pages and keeps the frame the
 * renderer's last frame is, pixel for pixel; the next refresh, with nothing written, finds none and keeps that frame;
 * a store by another writer than the vCPUs is seen too.
 */
class DisplayTest {
    @Test
    void aRefreshTakesTheRenderersLastFrameAndClearsTheBits() throws Exception {
        RiscvVirtMachine machine = RiscvVirtMachine.create();
        Display display = new Display(machine.framebuffer(), System.nanoTime());
        display.refresh(); // power-on: RAM starts dirty
        assertEquals(0, display.refresh(), "nothing written since the last refresh");

        try (Vcpus vcpus = new Vcpus(machine, 2, new VcpuGate(), MemoryPath.HOST_TLB)) {
            Vcpus.ProgramRun run = vcpus.runProgram(GuestProgram.RENDER, Long.MAX_VALUE + System.nanoTime());
            assertEquals(Vcpus.Outcome.PASSED, run.outcome(), run.detail());
        }
        long pages = display.refresh();
        assertEquals(75, pages, "the 320x240x4 bytes of the frame are 75 pages");
        int[] expected = new int[GuestProgram.FB_WIDTH * GuestProgram.FB_HEIGHT];
        for (int y = 0; y < GuestProgram.FB_HEIGHT; y++) {
            for (int x = 0; x < GuestProgram.FB_WIDTH; x++) {
                expected[y * GuestProgram.FB_WIDTH + x] = GuestProgram.renderPixel(x, y, GuestProgram.FRAMES - 1);
            }
        }
        assertArrayEquals(expected, display.lastFrame());
        assertEquals(0, display.refresh(), "the bits were cleared");
        assertArrayEquals(expected, display.lastFrame(), "a clean refresh keeps the last frame");

        machine.memory().stlLe(RiscvVirtMachine.FB_BASE + 4 * (5 * GuestProgram.FB_WIDTH + 7), 0x00ff00ff,
                MemTxAttrs.UNSPECIFIED);
        assertEquals(1, display.refresh());
        expected[5 * GuestProgram.FB_WIDTH + 7] = 0x00ff00ff;
        assertArrayEquals(expected, display.lastFrame());
        assertEquals(5, display.snapshots(), "one snapshot per refresh");
    }
}
