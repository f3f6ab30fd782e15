package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.LongSupplier;
import org.junit.jupiter.api.Test;

/**
 * The access path allocates nothing per access once warm: ld/st and bulk copies on RAM, MMIO dispatch (plain and
 * with-attributes callbacks, split and widened), holes and ROM writes. Measured with the JVM's per-thread allocation
 * counter over a million accesses after a warm-up; the bound leaves room for a few stray allocations by the JIT, not
 * for one per access ({@link ThreadAllocation}).
 */
class AccessAllocationTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @Test
    void accessesDoNotAllocate() throws ReflectiveOperationException {
        LongSupplier allocatedBytes = ThreadAllocation.counter();

        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.ram("ram", 0x1000));
        root.addSubregion(0x1000, system.io("plain", 0x100, MemoryRegionOps.builder()
                .read((addr, size) -> addr)
                .write((addr, data, size) -> { })
                .impl(4, 4, false)
                .build()));
        root.addSubregion(0x2000, system.io("attrs", 0x100, MemoryRegionOps.builder()
                .endianness(DeviceEndian.BIG)
                .readWithAttrs((addr, data, size, attrs) -> {
                    data[0] = addr;
                    return MemTxResult.OK;
                })
                .writeWithAttrs((addr, data, size, attrs) -> MemTxResult.OK)
                .build()));
        root.addSubregion(0x3000, system.rom("rom", 0x100));
        AddressSpace as = system.addressSpace("as", root);
        byte[] buf = new byte[64];
        int[] r = new int[1];

        long sink = run(as, buf, r, 50_000);
        long before = allocatedBytes.getAsLong();
        sink += run(as, buf, r, 100_000);
        long allocated = allocatedBytes.getAsLong() - before;
        assertEquals(MemTxResult.OK, r[0]);
        assertTrue(sink != 42);
        // 100,000 rounds of 12 accesses: one small object per access would be tens of megabytes.
        assertTrue(allocated < 256 * 1024, "allocated=" + allocated + " bytes over 1.2 million accesses");
    }

    private static long run(AddressSpace as, byte[] buf, int[] r, int rounds) {
        long sink = 0;
        for (int i = 0; i < rounds; i++) {
            long off = (i * 8L) & 0xff;
            sink += as.ldqLe(off, U, r);
            as.stlBe(off, i, U);
            sink += as.ldub(0x1000 + (off & 0xf), U, r);
            sink += as.ldqLe(0x1000 + off, U, r);
            as.stqLe(0x1000 + off, i, U);
            sink += as.ldlBe(0x2000 + off, U, r);
            as.stwLe(0x2000 + off, i, U);
            sink += as.read(0xfe0, U, buf, 0, 64);
            sink += as.write(0x1fe0, U, buf, 0, 64);
            sink += as.stlLe(0x3000 + off, i, U);
            sink += as.ldlLe(0x8000_0000L + off, U, r);
            sink += as.ldqLe(0x2000, U, r);
        }
        return sink;
    }
}
