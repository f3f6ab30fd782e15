package dev.guestmem.memory.stress;

import dev.guestmem.memory.DirtyBitmap;
import java.lang.foreign.Arena;
import java.util.List;

/**
 * A {@link DirtyBitmap} implementation under test, named for the test report: every contract and stress test of the
 * bitmaps runs once per entry of {@link #all()}.
 *
 * @param name    as the report shows it
 * @param factory makes a bitmap of the implementation
 */
public record DirtyBitmapImpl(String name, Factory factory) {
    /** Makes a bitmap of {@code pageCount} pages of {@code pageSize} bytes in blocks of {@code blockPages} pages. */
    public interface Factory {
        /** A new, clean bitmap. */
        DirtyBitmap create(long pageSize, long pageCount, long blockPages);
    }

    /** Every implementation: the heap layout and the off-heap layout (in an automatic arena). */
    public static List<DirtyBitmapImpl> all() {
        return List.of(new DirtyBitmapImpl("heap", DirtyBitmap::onHeap),
                new DirtyBitmapImpl("off-heap", (pageSize, pageCount, blockPages) ->
                        DirtyBitmap.offHeap(pageSize, pageCount, blockPages, Arena.ofAuto())));
    }

    /** A new, clean bitmap of this implementation. */
    public DirtyBitmap create(long pageSize, long pageCount, long blockPages) {
        return factory.create(pageSize, pageCount, blockPages);
    }

    @Override
    public String toString() {
        return name;
    }
}
