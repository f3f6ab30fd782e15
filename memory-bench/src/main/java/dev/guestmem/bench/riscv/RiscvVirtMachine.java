package dev.guestmem.bench.riscv;

import dev.guestmem.bench.machine.CfiFlash;
import dev.guestmem.bench.machine.Uart16550;
import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DirtyMemoryClient;
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

/**
 * A RISC-V machine in the layout of QEMU's {@code virt} board, with what the guest programs use: RAM at 0x8000_0000
 * ("riscv_virt_board.ram", 64 MiB), the 16550 UART "serial" at 0x1000_0000, the test finisher "riscv.sifive.test" at
 * 0x10_0000, and the CFI flash "virt.flash0" at 0x2000_0000, a ROM device in romd mode holding the boot image, where
 * every hart starts executing in place. Built from the {@code guestmem-map/1} map {@value #MAP_RESOURCE} (this
 * package's resource, {@code memory-bench/src/main/resources/dev/guestmem/bench/riscv/riscv-virt.json}) plus the
 * device models, so {@code ./guestmem mtree} on that file prints this machine. RAM and the flash log CODE, so that
 * decoded instructions can be protected.
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
    /** The first page of RAM is the mailbox between host and guest. */
    public static final long MAILBOX_RESULT = RAM_BASE;
    public static final long MAILBOX_NHARTS = RAM_BASE + 0x10;
    /** Instructions a hart runs between looks at the finisher. */
    static final long SLICE = 20_000;

    private final MemorySystem system;
    private final AddressSpace memory;
    private final MemoryRegion ram;
    private final MemoryRegion flash0;
    private final Uart16550 uart = new Uart16550();
    private final TestFinisher finisher = new TestFinisher();
    private final CfiFlash flash = new CfiFlash();
    private final GuestAtomics atomics = GuestAtomics.locked();

    private RiscvVirtMachine(MemorySystem.RamAllocator ramAllocator) {
        MachineMap map = MachineMap.parse(mapJson(), ramAllocator, new Devices());
        system = map.system();
        ram = map.region("riscv_virt_board.ram");
        flash0 = map.region("virt.flash0");
        flash.attach(flash0);
        system.transaction(() -> {
            ram.setLog(true, DirtyMemoryClient.CODE);
            flash0.setLog(true, DirtyMemoryClient.CODE);
        });
        memory = system.addressSpaces().getFirst();
    }

    /** The machine with its RAM from lazily zeroed anonymous memory ({@link HostMemoryBackend#anonymous()}). */
    public static RiscvVirtMachine create() {
        return new RiscvVirtMachine(HostMemoryBackend.anonymous().build());
    }

    /** The machine map's JSON text. */
    public static String mapJson() {
        try (InputStream in = RiscvVirtMachine.class.getResourceAsStream(MAP_RESOURCE)) {
            return new String(Objects.requireNonNull(in, MAP_RESOURCE).readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The device models behind the map's {@code io} and {@code rom-device} regions. */
    private final class Devices implements MachineMap.DeviceFactory {
        @Override
        public MemoryRegionOps ops(String id, String name, MachineMap.OpsSpec spec) {
            return switch (id) {
                case "serial" -> spec.builder().read(uart::read).write(uart::write).build();
                case "riscv.sifive.test" -> finisher.ops(spec.builder());
                case "virt.flash0" -> spec.builder().read(flash::read).write(flash::write).build();
                default -> MachineMap.UNIMPLEMENTED_DEVICES.ops(id, name, spec);
            };
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
        /** Through a per-hart {@link SoftTlb}: guestmem's path. */
        SOFT_TLB,
        /** RAM as a plain {@link MemorySegment}, everything else through the address space: the limit. */
        SEGMENT
    }

    /** A hart at the reset vector (the flash) whose memory path is {@code path}. */
    public Rv64Cpu newHart(int hartId, MemoryPath path) {
        GuestMemory guestMemory = path == MemoryPath.SOFT_TLB
                ? new TlbGuestMemory(new SoftTlb(memory))
                : new SegmentGuestMemory(ram.ramSegment(), RAM_BASE, memory);
        Rv64Cpu cpu = new Rv64Cpu(hartId, guestMemory, atomics);
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
        List<Rv64Cpu> cpus = new ArrayList<>();
        for (int i = 0; i < harts; i++) {
            cpus.add(newHart(i, path));
        }
        long start = System.nanoTime();
        if (harts == 1) {
            runHart(cpus.getFirst(), maxInstructions);
        } else {
            List<Thread> threads = new ArrayList<>();
            for (Rv64Cpu cpu : cpus) {
                threads.add(Thread.ofPlatform().name("hart-" + cpu.hartId())
                        .start(() -> runHart(cpu, maxInstructions)));
            }
            for (Thread t : threads) {
                t.join();
            }
        }
        long nanos = System.nanoTime() - start;
        long[] retired = new long[harts];
        List<String> faults = new ArrayList<>();
        for (Rv64Cpu cpu : cpus) {
            retired[cpu.hartId()] = cpu.retired();
            if (cpu.fault() != null) {
                faults.add(cpu.fault());
            }
            cpu.close();
        }
        long checksum = memory.ldqLe(MAILBOX_RESULT, MemTxAttrs.UNSPECIFIED, new int[1]);
        return new RunResult(finisher.status(), checksum, uart.output(), retired, List.copyOf(faults), nanos);
    }

    private void runHart(Rv64Cpu cpu, long maxInstructions) {
        while (!finisher.finished() && cpu.fault() == null && cpu.retired() < maxInstructions) {
            cpu.run(Math.min(SLICE, maxInstructions - cpu.retired()));
        }
    }
}
