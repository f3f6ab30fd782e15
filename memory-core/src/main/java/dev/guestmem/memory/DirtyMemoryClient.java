package dev.guestmem.memory;

/**
 * A consumer of dirty-page information, each with its own {@link DirtyBitmap} over the ram_addr space. Models QEMU's
 * {@code DIRTY_MEMORY_VGA}, {@code DIRTY_MEMORY_CODE} and {@code DIRTY_MEMORY_MIGRATION} (include/exec/memory.h),
 * with the same numbering, so a client set written as a bit mask ({@code 1 << index}) means what it means in QEMU.
 *
 * <p>Threading: immutable.
 */
public enum DirtyMemoryClient {
    /** Display devices: which pages of video RAM to redraw. */
    VGA(0),
    /** Translated code: which pages a JIT must invalidate after a store (QEMU's TLB_NOTDIRTY path). */
    CODE(1),
    /** Live migration and snapshots: which pages to send again. */
    MIGRATION(2);

    /** Number of clients, QEMU's {@code DIRTY_MEMORY_NUM}. */
    public static final int COUNT = 3;
    /** Every client's bit, QEMU's {@code DIRTY_CLIENTS_ALL}. */
    public static final int ALL_MASK = (1 << COUNT) - 1;
    /** Every client's bit but CODE's, QEMU's {@code DIRTY_CLIENTS_NOCODE}. */
    public static final int NO_CODE_MASK = ALL_MASK & ~(1 << 1);

    private static final DirtyMemoryClient[] BY_INDEX = values();

    private final int index;

    DirtyMemoryClient(int index) {
        this.index = index;
    }

    /** QEMU's number of this client (0, 1 or 2). */
    public int index() {
        return index;
    }

    /** This client's bit in a client mask: {@code 1 << index()}. */
    public int mask() {
        return 1 << index;
    }

    /** The client with QEMU's number {@code index}. */
    public static DirtyMemoryClient ofIndex(int index) {
        if (index < 0 || index >= COUNT) {
            throw new IllegalArgumentException("index=" + index + " count=" + COUNT);
        }
        return BY_INDEX[index];
    }
}
