package dev.guestmem.bench.riscv;

import dev.guestmem.bench.machine.CfiFlash;
import dev.guestmem.bench.machine.MovableBarDevice;
import dev.guestmem.bench.machine.Uart16550;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.IommuOps;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.offheap.HostMemoryBackend;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;

/**
 * A RISC-V machine in the layout of QEMU's {@code virt} board, with what the guest programs use: RAM at 0x8000_0000
 * ("riscv_virt_board.ram", 64 MiB unless asked otherwise), the 16550 UART "serial" at 0x1000_0000, the test finisher
 * "riscv.sifive.test" at 0x10_0000, the CFI flash "virt.flash0" at 0x2000_0000, a ROM device in romd mode holding
 * the boot image, where every hart starts executing in place; and, in the board's PCIe MMIO window, a framebuffer
 * "virt.fb" (RAM at {@link #FB_BASE}, logged by the VGA client, as QEMU's display devices log their VRAM) and the
 * 4 KiB BAR "movable-bar" of a {@link MovableBarDevice} at {@link #BAR_BASE}, which the main job moves and disables.
 * Built from the {@code guestmem-map/1} map {@value #MAP_RESOURCE} (this package's resource,
 * {@code memory-bench/src/main/resources/dev/guestmem/bench/riscv/riscv-virt.json}) plus the device models, so
 * {@code ./guestmem mtree} on that file prints this machine. RAM and the flash log CODE, so that decoded instructions
 * can be protected. Every access the device models serve is counted ({@link #mmioAccesses()}).
 *
 * <p>Boot protocol of the guest programs (native-test-images/src/main/riscv/crt0.S): the host writes the number of
 * harts at {@link #MAILBOX_NHARTS}; hart 0 copies the image from flash to RAM and all harts call the program; hart 0
 * stores the checksum at {@link #MAILBOX_RESULT} and writes "pass" to the finisher.
 *
 * <p>Threading: build and {@link #loadBootImage} on one thread; {@link #run} starts one thread per hart.
 */
public final class RiscvVirtMachine {
    public static final String MAP_RESOURCE = "riscv-virt.json";
    public static final long TEST_BASE = 0x10_0000L;
    public static final long UART_BASE = 0x1000_0000L;
    public static final long FLASH_BASE = 0x2000_0000L;
    public static final long RAM_BASE = 0x8000_0000L;
    /** The framebuffer, 512 KiB of RAM: {@link GuestProgram#RENDER} draws its frames here. */
    public static final long FB_BASE = GuestProgram.FB_BASE;
    /** Where the map puts the movable BAR at power-on. */
    public static final long BAR_BASE = 0x4100_0000L;
    /** RAM the map gives, and the least the guest programs need (their stacks end 8 MiB into RAM). */
    public static final long DEFAULT_RAM_SIZE = 64L << 20;
    public static final long MIN_RAM_SIZE = 8L << 20;
    /** The first page of RAM is the mailbox between host and guest. */
    public static final long MAILBOX_RESULT = RAM_BASE;
    public static final long MAILBOX_NHARTS = RAM_BASE + 0x10;
    /** Instructions a hart runs between looks at the finisher. */
    static final long SLICE = 20_000;

    private final MemorySystem system;
    private final AddressSpace memory;
    private final MemoryRegion ram;
    private final MemoryRegion flash0;
    private final MemoryRegion framebuffer;
    private final MemoryRegion bar;
    private final MovableBarDevice barDevice = new MovableBarDevice();
    private final LongAdder mmioAccesses = new LongAdder();
    private final Uart16550 uart = new Uart16550();
    private final TestFinisher finisher = new TestFinisher();
    private final CfiFlash flash = new CfiFlash();
    /** What the harts hold for an atomic the library refuses (see {@link Rv64Cpu}): this machine's stop-the-world. */
    private final Object exclusive = new Object();
    /** The pages the harts hold decoded instructions from. */
    private final CodePages codePages;

    private RiscvVirtMachine(MemorySystem.RamAllocator ramAllocator, long ramSize) {
        MachineMap map = MachineMap.parse(mapJson(ramSize), ramAllocator, new Devices());
        system = map.system();
        ram = map.region("riscv_virt_board.ram");
        flash0 = map.region("virt.flash0");
        framebuffer = map.region("virt.fb");
        bar = map.region("movable-bar");
        flash.attach(flash0);
        system.transaction(() -> {
            ram.setLog(true, DirtyMemoryClient.CODE);
            flash0.setLog(true, DirtyMemoryClient.CODE);
            framebuffer.setLog(true, DirtyMemoryClient.VGA);
        });
        memory = system.addressSpaces().getFirst();
        codePages = new CodePages(CodeProtection.of(system));
    }

    /** The machine with its RAM from lazily zeroed anonymous memory ({@link HostMemoryBackend#anonymous()}). */
    public static RiscvVirtMachine create() {
        return create(HostMemoryBackend.anonymous().build(), DEFAULT_RAM_SIZE);
    }

    /**
     * The machine with {@code ramSize} bytes of RAM (a multiple of 4 KiB, at least {@link #MIN_RAM_SIZE}, at most
     * 2 GiB, the room the board leaves above {@link #RAM_BASE} below 4 GiB) from {@code ramAllocator}, which also
     * gives the flash array and the framebuffer their memory.
     */
    public static RiscvVirtMachine create(MemorySystem.RamAllocator ramAllocator, long ramSize) {
        return new RiscvVirtMachine(ramAllocator, ramSize);
    }

    /** The machine map's JSON text. */
    public static String mapJson() {
        try (InputStream in = RiscvVirtMachine.class.getResourceAsStream(MAP_RESOURCE)) {
            return new String(Objects.requireNonNull(in, MAP_RESOURCE).readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The machine map's JSON text with {@code ramSize} bytes of RAM. */
    public static String mapJson(long ramSize) {
        if (ramSize < MIN_RAM_SIZE || ramSize > (2L << 30) || (ramSize & 0xfff) != 0) {
            throw new IllegalArgumentException("ram=" + ramSize + ": the RAM size must be a multiple of 4 KiB from "
                    + MIN_RAM_SIZE + " (8 MiB) to 2 GiB");
        }
        String json = mapJson();
        String entry = "\"kind\" : \"ram\",\n      \"size\" : \"0x" + Long.toHexString(DEFAULT_RAM_SIZE) + "\"";
        int at = json.indexOf("\"riscv_virt_board.ram\" : {");
        int size = json.indexOf(entry, at);
        if (at < 0 || size < 0) {
            throw new IllegalStateException("resource=" + MAP_RESOURCE + ": no RAM entry of the default size");
        }
        return json.substring(0, size) + entry.replace(Long.toHexString(DEFAULT_RAM_SIZE), Long.toHexString(ramSize))
                + json.substring(size + entry.length());
    }

    /** The device models behind the map's {@code io} and {@code rom-device} regions. */
    private final class Devices implements MachineMap.DeviceFactory {
        @Override
        public MemoryRegionOps ops(String id, String name, MachineMap.OpsSpec spec) {
            MemoryRegionOps ops = switch (id) {
                case "serial" -> spec.builder().read(uart::read).write(uart::write).build();
                case "riscv.sifive.test" -> finisher.ops(spec.builder());
                case "virt.flash0" -> spec.builder().read(flash::read).write(flash::write).build();
                case "movable-bar" -> barDevice.ops(spec.builder());
                default -> MachineMap.UNIMPLEMENTED_DEVICES.ops(id, name, spec);
            };
            return counted(ops, spec);
        }

        /** {@code ops} (plain read and write callbacks) with every access counted in {@link #mmioAccesses}. */
        private MemoryRegionOps counted(MemoryRegionOps ops, MachineMap.OpsSpec spec) {
            MemoryRegionOps.Read read = Objects.requireNonNull(ops.read(), "read");
            MemoryRegionOps.Write write = Objects.requireNonNull(ops.write(), "write");
            return spec.builder()
                    .read((addr, size) -> {
                        mmioAccesses.increment();
                        return read.read(addr, size);
                    })
                    .write((addr, data, size) -> {
                        mmioAccesses.increment();
                        write.write(addr, data, size);
                    })
                    .build();
        }

        @Override
        public IommuOps iommu(String id, String name) {
            return MachineMap.UNIMPLEMENTED_DEVICES.iommu(id, name);
        }
    }

    public MemorySystem system() {
        return system;
    }

    /** The address space "memory", which every hart sees. */
    public AddressSpace memory() {
        return memory;
    }

    /** The RAM region's memory, guest-physical {@link #RAM_BASE} at offset 0. */
    public MemorySegment ramSegment() {
        return ram.ramSegment();
    }

    public Uart16550 uart() {
        return uart;
    }

    /** The RAM region "riscv_virt_board.ram". */
    public MemoryRegion ram() {
        return ram;
    }

    /** The flash's ROM device region "virt.flash0". */
    public MemoryRegion flash() {
        return flash0;
    }

    /** The framebuffer's RAM region "virt.fb", at {@link #FB_BASE}, logged by the VGA client. */
    public MemoryRegion framebuffer() {
        return framebuffer;
    }

    /** The movable BAR's region "movable-bar". */
    public MemoryRegion bar() {
        return bar;
    }

    public MovableBarDevice barDevice() {
        return barDevice;
    }

    /**
     * The lock every hart of this machine holds while it executes an atomic that the library refused (MMIO, RAM that
     * may fault) as a load and a store: a stand-in for QEMU's stop-the-world ({@code cpu_exec_step_atomic}).
     */
    public Object exclusive() {
        return exclusive;
    }

    /** The pages the harts of this machine hold decoded instructions from, each protected while one does. */
    public CodePages codePages() {
        return codePages;
    }

    /** Accesses served by the device models (UART, finisher, flash out of romd mode, BAR) since power-on. */
    public long mmioAccesses() {
        return mmioAccesses.sum();
    }

    public TestFinisher finisher() {
        return finisher;
    }

    /** Writes {@code image} at the start of the flash array, as a programmer would before power-on. */
    public void loadBootImage(byte[] image) {
        if (image.length > flash0.size()) {
            throw new IllegalArgumentException("size=" + image.length + " flashSize=" + flash0.size()
                    + ": the image does not fit the flash");
        }
        MemorySegment.copy(MemorySegment.ofArray(image), 0, flash0.ramSegment(), 0, image.length);
        // Written behind the access path: tell the logging clients (a migration must send these pages again).
        flash0.setDirty(0, image.length);
    }

    /**
     * Makes the machine ready to run the loaded image again: the finisher and the mailbox page back to zero. The rest
     * of RAM keeps its bytes (the guest programs initialise all they read) and its pages stay protected where code
     * was decoded, as after a warm reset.
     */
    public void reset() {
        finisher.reset();
        memory.set(RAM_BASE, (byte) 0, 4096, MemTxAttrs.UNSPECIFIED);
    }

    /** Which memory path a hart uses. */
    public enum MemoryPath {
        /** Through a per-hart {@link SoftTlb}, the checked TLB, which needs no discipline of its user. */
        SOFT_TLB,
        /** Through a per-hart {@link HostTlb}, the fast TLB, inside the hart thread's read-side section. */
        HOST_TLB,
        /** RAM as a plain {@link MemorySegment}, everything else through the address space: the limit. */
        SEGMENT
    }

    /**
     * Guest memory for one hart through {@code path}, for the calling thread: a {@link HostTlbGuestMemory} belongs to
     * the thread that makes it (close it there when the hart is done).
     */
    public GuestMemory guestMemory(MemoryPath path) {
        return switch (path) {
            case SOFT_TLB -> new TlbGuestMemory(new SoftTlb(memory));
            case HOST_TLB -> new HostTlbGuestMemory(memory);
            case SEGMENT -> new SegmentGuestMemory(ram.ramSegment(), RAM_BASE, memory);
        };
    }

    /** A hart at the reset vector (the flash) whose memory path is {@code path}, made for the calling thread. */
    public Rv64Cpu newHart(int hartId, MemoryPath path) {
        return newHart(hartId, guestMemory(path));
    }

    /** A hart of this machine at the reset vector (the flash) over {@code memory}. */
    public Rv64Cpu newHart(int hartId, GuestMemory memory) {
        Rv64Cpu cpu = new Rv64Cpu(hartId, memory, exclusive, codePages);
        cpu.setPc(FLASH_BASE);
        return cpu;
    }

    /**
     * What one run of the loaded image gave.
     *
     * @param finisherStatus what the guest wrote to the finisher ({@link TestFinisher#PASS}...), or
     *                       {@link TestFinisher#RUNNING} if it never did
     * @param checksum       the 64 bits at {@link #MAILBOX_RESULT}
     * @param console        the UART's output
     * @param retired        instructions per hart
     * @param faults         the faults of harts that stopped (empty when none did)
     * @param nanos          wall-clock time of the run
     */
    public record RunResult(int finisherStatus, long checksum, String console, long[] retired, List<String> faults,
                            long nanos) {
        public boolean passed() {
            return finisherStatus == TestFinisher.PASS && faults.isEmpty();
        }

        public long totalRetired() {
            return Arrays.stream(retired).sum();
        }

        @Override
        public String toString() {
            return "RunResult[status=0x" + Integer.toHexString(finisherStatus) + " checksum=0x"
                    + Long.toHexString(checksum) + " retired=" + Arrays.toString(retired) + " faults=" + faults
                    + " console=" + console.strip() + "]";
        }
    }

    /**
     * Runs the loaded image on {@code harts} harts until the finisher is written, every hart faulted, or a hart
     * retired {@code maxInstructions}: one thread per hart, or the calling thread for a single hart. Call
     * {@link #reset()} before running again.
     */
    public RunResult run(int harts, MemoryPath path, long maxInstructions) throws InterruptedException {
        if (harts < 1) {
            throw new IllegalArgumentException("harts=" + harts + ": at least 1");
        }
        memory.stqLe(MAILBOX_NHARTS, harts, MemTxAttrs.UNSPECIFIED);
        long[] retired = new long[harts];
        String[] faults = new String[harts];
        long start = System.nanoTime();
        if (harts == 1) {
            runHart(0, path, maxInstructions, retired, faults);
        } else {
            // Each hart's memory is made on the hart's own thread, which a HostTlb belongs to.
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < harts; i++) {
                int hartId = i;
                threads.add(Thread.ofPlatform().name("hart-" + i)
                        .start(() -> runHart(hartId, path, maxInstructions, retired, faults)));
            }
            for (Thread t : threads) {
                t.join();
            }
        }
        long nanos = System.nanoTime() - start;
        List<String> found = new ArrayList<>();
        for (String f : faults) {
            if (f != null) {
                found.add(f);
            }
        }
        long checksum = memory.ldqLe(MAILBOX_RESULT, MemTxAttrs.UNSPECIFIED, new int[1]);
        return new RunResult(finisher.status(), checksum, uart.output(), retired, List.copyOf(found), nanos);
    }

    /**
     * Runs hart {@code hartId} on the calling thread, in one read-side section from start to end (nothing in the
     * loop blocks), and leaves its instruction count and fault in the arrays.
     */
    private void runHart(int hartId, MemoryPath path, long maxInstructions, long[] retired, String[] faults) {
        try (GuestMemory guestMemory = guestMemory(path); Rv64Cpu cpu = newHart(hartId, guestMemory)) {
            guestMemory.enterSection();
            try {
                while (!finisher.finished() && cpu.fault() == null && cpu.retired() < maxInstructions) {
                    cpu.run(Math.min(SLICE, maxInstructions - cpu.retired()));
                }
            } finally {
                guestMemory.leaveSection();
            }
            retired[hartId] = cpu.retired();
            faults[hartId] = cpu.fault();
        }
    }
}
