package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.GuestProgram;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.DirtySnapshot;
import dev.guestmem.memory.MemoryRegion;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The display: what a QEMU display device's refresh does ({@code memory_region_snapshot_and_clear_dirty} of its VRAM
 * for the VGA client, then redraw what changed). {@value #HZ} times a second it takes and clears the VGA dirty bits of
 * the framebuffer region (all of it, 128 pages, of which the 320x240 pixels of {@code 0x00RRGGBB} fill 75), counts
 * the dirty pages, and when there were any copies the frame as the last one seen.
 *
 * <p>Threading: {@link #run} on the display thread; {@link #stop}, {@link #lastFrame} and the counters from any
 * thread; {@link #refresh} may also be called from another thread once the display thread has ended.
 */
final class Display implements Runnable {
    static final int HZ = 60;
    private static final ValueLayout.OfInt PIXEL = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One refresh: when (ms since the job started) and how many pages were dirty. */
    record Refresh(double atMillis, long dirtyPages) {
    }

    private final MemoryRegion framebuffer;
    private final long frameBytes;
    private final long regionBytes;
    private final long startNanos;
    private final DirtySnapshot snapshot = new DirtySnapshot();
    private final List<Refresh> refreshes = new ArrayList<>();
    private int[] lastFrame;
    private long dirtyPages;
    private volatile boolean stop;

    Display(MemoryRegion framebuffer, long startNanos) {
        this.framebuffer = framebuffer;
        this.frameBytes = (long) GuestProgram.FB_WIDTH * GuestProgram.FB_HEIGHT * 4;
        this.regionBytes = framebuffer.size();
        this.startNanos = startNanos;
    }

    @Override
    public void run() {
        Periodic.run(TimeUnit.SECONDS.toNanos(1) / HZ, () -> stop, this::refresh);
    }

    /** One snapshot-and-clear of the framebuffer's VGA bits; returns the dirty pages it found. */
    synchronized long refresh() {
        long pages = framebuffer.snapshotAndClearDirty(0, regionBytes, DirtyMemoryClient.VGA, snapshot)
                .dirtyPageCount();
        refreshes.add(new Refresh((System.nanoTime() - startNanos) / 1e6, pages));
        dirtyPages += pages;
        if (pages > 0) {
            MemorySegment fb = framebuffer.ramSegment();
            int[] frame = new int[(int) (frameBytes / 4)];
            MemorySegment.copy(fb, PIXEL, 0, frame, 0, frame.length);
            lastFrame = frame;
        }
        return pages;
    }

    /** Pages of the framebuffer region, what a refresh can find dirty at most. */
    long pages() {
        return regionBytes >>> 12;
    }

    void stop() {
        stop = true;
    }

    /** The last frame that had dirty pages, row by row, or {@code null} if none had. */
    synchronized int[] lastFrame() {
        return lastFrame == null ? null : lastFrame.clone();
    }

    synchronized List<Refresh> refreshes() {
        return List.copyOf(refreshes);
    }

    synchronized long snapshots() {
        return refreshes.size();
    }

    synchronized long dirtyPages() {
        return dirtyPages;
    }
}
