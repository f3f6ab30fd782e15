package dev.guestmem.bench.job;

import dev.guestmem.bench.machine.MovableBarDevice;
import dev.guestmem.bench.riscv.RiscvVirtMachine;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemoryRegion;
import org.HdrHistogram.Histogram;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The device thread: every {@value #PERIOD_MICROS} us one change of the map under the running vCPUs, in turn: the
 * BAR moved to the next of {@value #BAR_SLOTS} 4 KiB slots above {@link RiscvVirtMachine#BAR_BASE}, the flash's romd
 * mode toggled, a 2 MiB RAM region "hotplug.ram" added at {@link #HOTPLUG_BASE} or removed, the BAR disabled or
 * enabled. Each change is one commit whose latency (the call, render and publication included) is recorded; after it
 * the thread checks through the address space that the change is what the guest would now see (the BAR answers with
 * its identifier where it is mapped and nowhere else, the flash reads its array in both modes, the hot-added RAM holds
 * what was written to it). A failed check fails the job.
 *
 * <p>Threading: {@link #run} on the device thread (the map's only writer while the job runs); {@link #stop} from any
 * thread; the results once the thread has ended.
 */
final class DeviceThread implements Runnable {
    static final long PERIOD_MICROS = 2_000;
    static final int BAR_SLOTS = 16;
    static final long HOTPLUG_BASE = 0x1_0000_0000L;
    static final long HOTPLUG_SIZE = 2L << 20;
    static final String HOTPLUG_NAME = "hotplug.ram";
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;
    private static final ValueLayout.OfInt FLASH_WORD = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Reads of the flash's word 0 around a load of a boot image before the check gives up and fails. */
    private static final int FLASH_TRIES = 100;

    /** One commit: when it began (ms since the job started), what it was, and how long it took. */
    record Commit(double atMillis, String change, long nanos) {
    }

    private final RiscvVirtMachine machine;
    private final AddressSpace memory;
    private final MemoryRegion root;
    private final MemoryRegion hotplug;
    private final long startNanos;
    private final Histogram commitNanos = new Histogram(3);
    private final List<Commit> commits = new ArrayList<>();
    private final List<String> failures = new ArrayList<>();
    private final int[] result = new int[1];
    private volatile boolean stop;
    private int step;
    private int barSlot;
    private boolean hotplugged;
    private long checks;

    DeviceThread(RiscvVirtMachine machine, long startNanos) {
        this.machine = machine;
        this.memory = machine.memory();
        this.root = memory.root();
        this.hotplug = machine.system().ram(HOTPLUG_NAME, HOTPLUG_SIZE);
        this.startNanos = startNanos;
    }

    @Override
    public void run() {
        Periodic.run(TimeUnit.MICROSECONDS.toNanos(PERIOD_MICROS), () -> stop, this::step);
        restore();
    }

    /** One change and its check. */
    void step() {
        switch (step++ % 4) {
            case 0 -> {
                barSlot = (barSlot + 1) % BAR_SLOTS;
                long addr = RiscvVirtMachine.BAR_BASE + barSlot * MovableBarDevice.BAR_SIZE;
                timed("bar move", () -> machine.bar().setAddress(addr));
                checkBar();
            }
            case 1 -> {
                boolean romd = !machine.flash().isRomdMode();
                timed(romd ? "romd on" : "romd off", () -> machine.flash().setRomd(romd));
                checkFlash(romd);
            }
            case 2 -> {
                hotplugged = !hotplugged;
                if (hotplugged) {
                    timed("ram add", () -> root.addSubregion(HOTPLUG_BASE, hotplug));
                } else {
                    timed("ram remove", () -> root.delSubregion(hotplug));
                }
                checkHotplug();
            }
            default -> {
                boolean enabled = !machine.bar().isEnabled();
                timed(enabled ? "bar enable" : "bar disable", () -> machine.bar().setEnabled(enabled));
                checkBar();
            }
        }
    }

    private void timed(String change, Runnable commit) {
        long t0 = System.nanoTime();
        commit.run();
        long nanos = System.nanoTime() - t0;
        commitNanos.recordValue(nanos);
        commits.add(new Commit((t0 - startNanos) / 1e6, change, nanos));
    }

    private void checkBar() {
        MemoryRegion bar = machine.bar();
        long here = bar.addr();
        for (int slot = 0; slot < BAR_SLOTS; slot++) {
            long addr = RiscvVirtMachine.BAR_BASE + slot * MovableBarDevice.BAR_SIZE;
            FlatRange fr = memory.flatView().lookup(addr);
            boolean mapped = fr != null && fr.region() == bar;
            if (mapped != (bar.isEnabled() && addr == here)) {
                fail("bar at " + hex(addr) + " mapped=" + mapped + " enabled=" + bar.isEnabled() + " addr=" + hex(here));
            }
        }
        if (bar.isEnabled()) {
            int id = memory.ldlLe(here, ATTRS, result);
            check(result[0] == MemTxResult.OK && id == MovableBarDevice.ID, "bar id at " + hex(here) + " read "
                    + Integer.toHexString(id) + " result=" + result[0]);
        }
    }

    private void checkFlash(boolean romd) {
        MemoryRegion flash = machine.flash();
        check(flash.isRomdMode() == romd, "flash romd=" + flash.isRomdMode() + " expected=" + romd);
        // The vCPUs' side programs the flash array before each program, the first time perhaps after this thread has
        // started: a word 0 that changed around the read is a load in progress, not a wrong read, so read again.
        int before;
        int read;
        int after;
        int tries = 0;
        do {
            before = flashWord0(flash);
            read = memory.ldlLe(RiscvVirtMachine.FLASH_BASE, ATTRS, result);
            after = flashWord0(flash);
        } while (before != after && ++tries < FLASH_TRIES);
        check(result[0] == MemTxResult.OK && before == after && read == after, "flash word 0 read "
                + Integer.toHexString(read) + " array " + Integer.toHexString(before) + " then "
                + Integer.toHexString(after) + " romd=" + romd);
    }

    private static int flashWord0(MemoryRegion flash) {
        return flash.ramSegment().get(FLASH_WORD, 0);
    }

    private void checkHotplug() {
        long addr = HOTPLUG_BASE + (step * 4096L) % HOTPLUG_SIZE;
        FlatRange fr = memory.flatView().lookup(addr);
        check((fr != null && fr.region() == hotplug) == hotplugged, "hotplug.ram mapped=" + !hotplugged);
        if (hotplugged) {
            long value = 0x9e3779b97f4a7c15L * step;
            memory.stqLe(addr, value, ATTRS);
            long back = memory.ldqLe(addr, ATTRS, result);
            check(back == value, "hotplug.ram at " + hex(addr) + " read " + Long.toHexString(back));
        }
    }

    private void check(boolean ok, String what) {
        checks++;
        if (!ok) {
            fail(what);
        }
    }

    private void fail(String what) {
        if (failures.size() < 10) {
            failures.add(what);
        }
    }

    /** Puts the map back as it was at power-on, so the machine ends as it started. */
    private void restore() {
        MemoryRegion bar = machine.bar();
        machine.system().transaction(() -> {
            bar.setAddress(RiscvVirtMachine.BAR_BASE);
            bar.setEnabled(true);
            machine.flash().setRomd(true);
            if (hotplugged) {
                root.delSubregion(hotplug);
            }
        });
        hotplugged = false;
    }

    void stop() {
        stop = true;
    }

    private static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    Histogram commitNanos() {
        return commitNanos;
    }

    List<Commit> commits() {
        return commits;
    }

    List<String> failures() {
        return failures;
    }

    long checks() {
        return checks;
    }
}
