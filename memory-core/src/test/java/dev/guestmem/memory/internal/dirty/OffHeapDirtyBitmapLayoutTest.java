package dev.guestmem.memory.internal.dirty;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The off-heap bitmap's layout, read back byte by byte as another process would see it: blocks
 * {@value OffHeapDirtyBitmap#BLOCK_ALIGNMENT}-byte aligned, 64-bit little-endian words, bit i of word w (over the
 * blocks laid end to end) = page 64 * w + i.
 */
class OffHeapDirtyBitmapLayoutTest {
    @Test
    void bitIOfWordWIsPage64WPlusIInLittleEndianWords() {
        try (Arena arena = Arena.ofShared()) {
            OffHeapDirtyBitmap bitmap = new OffHeapDirtyBitmap(4096, 512, 128, arena);
            long[] pages = {0, 7, 63, 64, 66, 127, 128, 200, 511};
            for (long page : pages) {
                bitmap.setDirtyRange(page * 4096, 1);
            }
            long marked = 0;
            for (int b = 0; b < 4; b++) {
                MemorySegment block = bitmap.blockSegment(b);
                assertEquals(16, block.byteSize(), "block=" + b);
                assertEquals(0, block.address() % OffHeapDirtyBitmap.BLOCK_ALIGNMENT, "block=" + b);
                for (long byteIndex = 0; byteIndex < 16; byteIndex++) {
                    int value = Byte.toUnsignedInt(block.get(ValueLayout.JAVA_BYTE, byteIndex));
                    for (int bitInByte = 0; bitInByte < 8; bitInByte++) {
                        // Little-endian: byte k of word w holds bits 8k..8k+7, so page = 64w + 8k + bit.
                        long page = b * 128 + byteIndex * 8 + bitInByte;
                        boolean expected = Arrays.stream(pages).anyMatch(p -> p == page);
                        assertEquals(expected, (value & (1 << bitInByte)) != 0, "page=" + page);
                        marked += expected ? 1 : 0;
                    }
                }
            }
            assertEquals(pages.length, marked);
            // A peer's mark (an OR into the shared word) is seen by the owner.
            MemorySegment block1 = bitmap.blockSegment(1);
            block1.set(ValueLayout.JAVA_BYTE, 9, (byte) 0x04); // word 1 of block 1, byte 1, bit 2: page 128+64+8+2
            assertEquals(true, bitmap.getDirty((128 + 64 + 8 + 2) * 4096L, 4096));
        }
    }
}
