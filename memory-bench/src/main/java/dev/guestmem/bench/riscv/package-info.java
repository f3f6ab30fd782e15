/**
 * A small RV64IMA guest CPU and the RISC-V {@code virt}-shaped machine it runs on: a workload for guestmem, not a
 * product. {@link dev.guestmem.bench.riscv.Rv64Cpu} interprets machine-mode RV64IMA (with the Zicsr and Zifencei
 * instructions the guest programs use) over a {@link dev.guestmem.bench.riscv.GuestMemory}: through a per-vCPU
 * {@link dev.guestmem.memory.HostTlb} inside the vCPU thread's RCU read-side section
 * ({@link dev.guestmem.bench.riscv.HostTlbGuestMemory}), through a per-vCPU {@link dev.guestmem.memory.SoftTlb}
 * ({@link dev.guestmem.bench.riscv.TlbGuestMemory}), or over a plain
 * {@link java.lang.foreign.MemorySegment} ({@link dev.guestmem.bench.riscv.SegmentGuestMemory}, the JVM's limit, for
 * the benchmark's baseline). {@link dev.guestmem.bench.riscv.RiscvVirtMachine} builds the board from its
 * {@code guestmem-map/1} map and runs the guest programs of native-test-images
 * ({@link dev.guestmem.bench.riscv.GuestProgram}); {@link dev.guestmem.bench.riscv.CodePages} counts the harts that
 * hold decoded code per page, so that a page is protected exactly while one does.
 */
package dev.guestmem.bench.riscv;
