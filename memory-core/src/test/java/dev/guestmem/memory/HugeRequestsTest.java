package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Requests far larger than anything mapped or allocatable: a fill of 2^62 bytes costs what is mapped (RAM filled,
 * the device called for its own bytes, holes passed over whole as one decode error), and anonymous RAM the JVM cannot
 * allocate is one clear exception naming the size, never an {@link OutOfMemoryError}, leaving no block behind.
 */
class HugeRequestsTest {
    private static final MemTxAttrs ANY = MemTxAttrs.UNSPECIFIED;

    @Test
    void aFillOf2To62BytesFillsWhatIsMappedAndReportsTheRest() {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", U64.SIZE_2_64);
        MemoryRegion ram = sys.ram("ram", 0x2000);
        AtomicLong deviceBytes = new AtomicLong();
        MemoryRegionOps ops = MemoryRegionOps.builder()
                .read((addr, size) -> 0)
                .write((addr, data, size) -> {
                    assertEquals(0xababababababababL >>> (64 - 8 * size), data, "the pattern, size=" + size);
                    deviceBytes.addAndGet(size);
                })
                .build();
        root.addSubregion(0x1000, ram);
        root.addSubregion(0x10_0000, sys.reservation("hole", 0x1000_0000));
        root.addSubregion(0x2000_0000, sys.io("dev", 0x100, ops));
        AddressSpace as = sys.addressSpace("memory", root);

        assertEquals(MemTxResult.DECODE_ERROR, as.set(0, (byte) 0xab, 1L << 62, ANY));
        for (long a = 0x1000; a < 0x3000; a += 0x7f) {
            assertEquals(0xab, as.ldub(a, ANY, null), "RAM at " + U64.hex(a));
        }
        assertEquals(0x100, deviceBytes.get(), "the device got exactly its own bytes");

        // What is mapped alone: OK. A fill that runs past 2^64 goes on at 0, as QEMU's address arithmetic does.
        assertEquals(MemTxResult.OK, as.set(0x1000, (byte) 0, 0x2000, ANY));
        assertEquals(MemTxResult.DECODE_ERROR, as.set(-0x1000L, (byte) 0x5a, 0x3000, ANY));
        assertEquals(0x5a, as.ldub(0x1fff, ANY, null));
        assertEquals(0, as.ldub(0x2000, ANY, null));
        // The longest fill there is, from 2^63 + 0x4000: it wraps and ends at 0x3ffe, over the RAM.
        assertEquals(MemTxResult.DECODE_ERROR, as.set(Long.MIN_VALUE + 0x4000, (byte) 1, Long.MAX_VALUE, ANY));
        assertEquals(1, as.ldub(0x1000, ANY, null), "the fill wrapped around to the RAM");
        assertEquals(1, as.ldub(0x2fff, ANY, null), "the fill wrapped around to the RAM");
    }

    @Test
    void anonymousRamOfLongMaxValueIsOneClearException() {
        MemorySystem sys = new MemorySystem();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> sys.ram("huge", Long.MAX_VALUE));
        assertTrue(e.getMessage().startsWith("region=huge size=0x7fffffffffffffff: the JVM cannot allocate this much "
                + "anonymous RAM ("), e.getMessage());
        assertEquals(OutOfMemoryError.class, e.getCause().getClass());
        assertNothingLeft(sys, "huge");
    }

    @Test
    void anonymousRamOf64GiBIsOneClearExceptionWhereTheMachineCannotHaveIt() throws Exception {
        // Only where the OS must refuse it: with less physical memory than that and heuristic or strict overcommit;
        // elsewhere the allocation could succeed, and zeroing 64 GiB is not a unit test.
        Path meminfo = Path.of("/proc/meminfo");
        Path overcommit = Path.of("/proc/sys/vm/overcommit_memory");
        assumeTrue(Files.isReadable(meminfo), "a Linux machine");
        long physicalKiB = Files.readAllLines(meminfo).stream().filter(l -> l.startsWith("MemTotal:"))
                .mapToLong(l -> Long.parseLong(l.replaceAll("[^0-9]", ""))).findFirst().orElse(Long.MAX_VALUE);
        assumeTrue(physicalKiB < (48L << 20), "MemTotal=" + physicalKiB + " kB");
        assumeTrue(Files.isReadable(overcommit) && !Files.readString(overcommit).trim().equals("1"),
                "overcommit_memory must not be 1 (always)");
        MemorySystem sys = new MemorySystem();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> sys.ram("ram64g", 64L << 30));
        assertTrue(e.getMessage().startsWith("region=ram64g size=0x1000000000: the JVM cannot allocate this much "
                + "anonymous RAM (Unable to allocate "), e.getMessage());
        assertNothingLeft(sys, "ram64g");
    }

    /** The refused block left no trace: its name is free and nothing occupies the ram_addr space. */
    private static void assertNothingLeft(MemorySystem sys, String name) {
        assertNull(sys.ramList().blockByName(name));
        assertTrue(sys.ramList().blocks().isEmpty(), sys.ramList().blocks().toString());
        MemoryRegion again = sys.ram(name, 0x1000);
        assertEquals(name, again.ramBlock().idstr(), "the name was given back");
    }
}
