package dev.guestmem.bench;

import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link BulkCopyBenchmark} measures what it says: the copy crosses as many ranges as {@code sections} says, and the
 * address-space copies and the baseline's pieces move the same bytes to the same places, in both forms.
 */
class BulkCopyBenchmarkTest {

    @ParameterizedTest
    @CsvSource({"4096, 1", "4096, 3", "1048576, 1", "1048576, 3"})
    void bulkSidesAgree(int size, int sections) {
        BulkCopyBenchmark b = new BulkCopyBenchmark();
        b.size = size;
        b.sections = sections;
        b.setup();
        try {
            assertEquals(sections, b.addressSpace.flatView().rangeCount(), "the copy crosses this many ranges");

            // reads: both forms give what the baseline's pieces give, and those pieces are the guest's bytes
            assertEquals(MemTxResult.OK, b.readSegment());
            assertEquals(MemTxResult.OK, b.readArray());
            byte[] viaSegment = b.buffer.toArray(ValueLayout.JAVA_BYTE);
            byte[] viaArray = b.array.clone();
            assertArrayEquals(viaSegment, viaArray);
            b.buffer.fill((byte) 0);
            Arrays.fill(b.array, (byte) 0);
            assertArrayEquals(viaSegment, b.copyReadSegment().toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(viaArray, b.copyReadArray());
            byte[] guest = new byte[size];
            b.addressSpace.read(BulkCopyBenchmark.COPY_ADDR, MemTxAttrs.UNSPECIFIED, guest, 0, size);
            assertArrayEquals(guest, viaArray);
            if (sections == 3) {
                long quarter = size / 4;
                assertEquals(b.ram.get(ValueLayout.JAVA_BYTE, BulkCopyBenchmark.ALIAS_TARGET),
                        viaArray[(int) quarter], "the middle comes from the alias target");
            }

            // writes: a new pattern through the address space lands where the baseline puts it
            byte[] pattern = new byte[size];
            new SplittableRandom(5).nextBytes(pattern);
            MemorySegment.copy(pattern, 0, b.buffer, ValueLayout.JAVA_BYTE, 0, size);
            System.arraycopy(pattern, 0, b.array, 0, size);
            assertEquals(MemTxResult.OK, b.writeSegment());
            byte[] afterWrite = b.ram.toArray(ValueLayout.JAVA_BYTE);
            assertEquals(MemTxResult.OK, b.writeArray());
            assertArrayEquals(afterWrite, b.ram.toArray(ValueLayout.JAVA_BYTE));
            b.copyWriteSegment();
            assertArrayEquals(afterWrite, b.ram.toArray(ValueLayout.JAVA_BYTE));
            b.copyWriteArray();
            assertArrayEquals(afterWrite, b.ram.toArray(ValueLayout.JAVA_BYTE));
            b.addressSpace.read(BulkCopyBenchmark.COPY_ADDR, MemTxAttrs.UNSPECIFIED, guest, 0, size);
            assertArrayEquals(pattern, guest, "the guest reads back what was written");
        } finally {
            b.tearDown();
        }
    }
}
