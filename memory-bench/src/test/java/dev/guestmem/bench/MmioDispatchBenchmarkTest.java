package dev.guestmem.bench;

import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * {@link MmioDispatchBenchmark} measures what it says: one invocation through the address space and one calling the
 * callbacks directly read the same values (worked out here from the device's registers) and leave the same registers
 * behind, and an 8-byte access to the {@code impl4} device is two 4-byte calls on both sides.
 */
class MmioDispatchBenchmarkTest {

    @ParameterizedTest
    @CsvSource({"1, impl8", "2, impl8", "4, impl8", "8, impl8", "1, impl4", "2, impl4", "4, impl4", "8, impl4"})
    void mmioSidesAgree(int size, String device) {
        MmioDispatchBenchmark b = state(size, device);
        long loaded = b.loadThroughAddressSpace();
        assertNotEquals(0, loaded);
        assertEquals(b.loadDirect(), loaded, "loads");

        // every load reads the register at its offset, assembled from the device's pieces
        long expected = 0;
        for (long addr : b.addrs) {
            int reg = (int) ((addr - MmioDispatchBenchmark.DEVICE_BASE) >>> 2);
            long v = size <= 4 || device.equals("impl8") ? b.dev.regs[reg]
                    : (b.dev.regs[reg] & 0xffff_ffffL) | (b.dev.regs[reg + 1] << 32);
            expected += v & MmioDispatchBenchmark.mask(size);
        }
        assertEquals(expected, loaded);

        MmioDispatchBenchmark direct = state(size, device);
        assertEquals(MemTxResult.OK, b.storeThroughAddressSpace());
        direct.storeDirect();
        assertArrayEquals(direct.dev.regs, b.dev.regs, "stores leave the same registers");
        long last = b.addrs[b.addrs.length - 1];
        int reg = (int) ((last - MmioDispatchBenchmark.DEVICE_BASE) >>> 2);
        long v = MmioDispatchBenchmark.value(last) & MmioDispatchBenchmark.mask(size);
        if (size == 8 && device.equals("impl4")) {
            assertEquals(v & 0xffff_ffffL, b.dev.regs[reg], "low half, first call");
            assertEquals(v >>> 32, b.dev.regs[reg + 1], "high half, second call");
        } else {
            assertEquals(v, b.dev.regs[reg]);
        }
    }

    private static MmioDispatchBenchmark state(int size, String device) {
        MmioDispatchBenchmark b = new MmioDispatchBenchmark();
        b.size = size;
        b.device = device;
        b.setup();
        return b;
    }
}
