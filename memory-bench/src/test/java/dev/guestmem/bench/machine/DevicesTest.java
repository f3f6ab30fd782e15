package dev.guestmem.bench.machine;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The default machine's devices behave as their javadoc says, through the ops the memory system holds. */
class DevicesTest {

    @Test
    void serialTransmitsAndReadsBackItsRegisters() {
        Uart16550 uart = new Uart16550();
        MemoryRegionOps ops = uart.ops();
        assertEquals(1, ops.valid().max(), "the 16550 decodes byte accesses only");
        for (char c : "hi\n".toCharArray()) {
            ops.write().write(0, c, 1);
        }
        assertEquals("hi\n", uart.output());
        assertEquals(0x60, ops.read().read(5, 1), "LSR: transmitter empty");
        ops.write().write(7, 0x5a, 1);
        assertEquals(0x5a, ops.read().read(7, 1), "scratch register");

        ops.write().write(3, 0x83, 1); // DLAB on, 8N1
        ops.write().write(0, 0x01, 1); // divisor 1: 115200 baud
        ops.write().write(1, 0x00, 1);
        ops.write().write(3, 0x03, 1);
        assertEquals(1, uart.divisor());
        assertEquals("hi\n", uart.output(), "divisor writes are not output");
    }

    @Test
    void registerBankReadsBackLittleEndianAndKeepsReadOnlyBytes() {
        RegisterBank bank = new RegisterBank(16, 0b11);
        bank.set(0, 0xbeef, 2);
        bank.write(0, 0x1234_5678, 4);
        assertEquals(0x1234_beefL, bank.read(0, 4));
        bank.write(8, 0x0102_0304_0506_0708L, 8);
        assertEquals(0x0708, bank.read(8, 2));
        assertEquals(0x0102_0304_0506_0708L, bank.read(8, 8));
    }

    @Test
    void ioapicIsReachedThroughIndexAndWindow() {
        AddressSpace memory = DefaultPcMachine.build(new MemorySystem(MemorySystem.LAYOUT_ONLY)).get(0);
        MemoryRegion ioapic = DefaultPcMachineTest.region(memory.root(), "ioapic", DefaultPcMachine.IOAPIC_BASE);
        MemoryRegionOps ops = ioapic.ops();
        ops.write().write(0x00, 1, 4);
        assertEquals(0x0017_0011L, ops.read().read(0x10, 4), "version: 24 pins, version 0x11");
        ops.write().write(0x10, 0, 4);
        assertEquals(0x0017_0011L, ops.read().read(0x10, 4), "the version register is read-only");
        ops.write().write(0x00, 0x10, 4);
        assertEquals(1L << 16, ops.read().read(0x10, 4), "redirection entries start masked");
        ops.write().write(0x10, 0x31, 4);
        assertEquals(0x31, ops.read().read(0x10, 4));
    }

    @Test
    void cmosKeepsItsNvram() {
        AddressSpace io = DefaultPcMachine.build(new MemorySystem(MemorySystem.LAYOUT_ONLY)).get(1);
        MemoryRegionOps rtc = DefaultPcMachineTest.region(io.root(), "rtc", 0x70).ops();
        rtc.write().write(0, 0x10, 1);
        assertEquals(0x40, rtc.read().read(1, 1), "floppy type byte");
        rtc.write().write(0, 0x30, 1);
        rtc.write().write(1, 0x7f, 1);
        rtc.write().write(0, 0x30, 1);
        assertEquals(0x7f, rtc.read().read(1, 1));
    }
}
