package dev.guestmem.bench.riscv;

/**
 * The decoded instructions of one 4 KiB page of guest code, as one vCPU cached them: QEMU's translation blocks of a
 * page, reduced to one decoded instruction per word. Slots are decoded on first execution, after the page was
 * protected ({@link GuestMemory#protectCode}), so that any store that lands later is reported and marks the page
 * {@link #stale}.
 *
 * <p>Threading: the arrays belong to the owning vCPU thread; {@link #stale} is set by whichever thread's store was
 * reported, and read by the owner before every instruction.
 */
final class DecodedPage {
    static final int PAGE_BITS = 12;
    static final long PAGE_SIZE = 1L << PAGE_BITS;
    static final int SLOTS = (int) (PAGE_SIZE / 4);

    /** Guest-physical address of the page's first byte. */
    final long pageAddr;
    /** The page's key in the code-write reports ({@link GuestMemory#protectCode}), or -1 when not cacheable. */
    final long key;
    /** {@link Rv64Decoder} kinds; {@link Rv64Decoder#UNDECODED} until executed (always, when not cacheable). */
    final int[] kinds;
    final int[] words;
    final int[] imms;
    /**
     * The map generation ({@link GuestMemory#checkpoint()}) in which the owner last found {@link #pageAddr} to be
     * the memory named {@link #key}; owner thread only.
     */
    long generation;
    /** Set when a store to the page was reported: the owner drops the page before its next instruction. */
    volatile boolean stale;

    DecodedPage(long pageAddr, long key, boolean cacheable) {
        this.pageAddr = pageAddr;
        this.key = cacheable ? key : -1;
        int slots = cacheable ? SLOTS : 0;
        this.kinds = new int[slots];
        this.words = new int[slots];
        this.imms = new int[slots];
    }

    boolean cacheable() {
        return key != -1;
    }
}
