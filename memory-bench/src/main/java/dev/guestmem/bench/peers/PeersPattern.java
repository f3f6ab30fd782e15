package dev.guestmem.bench.peers;

/**
 * The peers' access pattern, the same in {@link PeersBenchmark} and in the Rust harness of
 * {@code peers/vm-memory-bench} (its {@code main.rs} implements every method here again; {@code PeersPatternTest}
 * checks that both read the same words).
 *
 * <p>{@value #RAM_SIZE} bytes (64 MiB) of guest RAM in {@code regions} RAM regions of whole 4 KiB pages: the 16,384
 * pages divided evenly, the first {@code 16384 % regions} regions one page larger. Region {@code r} starts at
 * guest-physical {@link #RAM_BASE} plus its first page plus {@code r} pages: one page is left unmapped after each
 * region, so that no region continues another. Offsets into the RAM "counted without holes" ({@link #guestAddress})
 * run over {@code [0, RAM_SIZE)}.
 *
 * <p>Addresses come from SplitMix64 with a fixed seed ({@link #SEED}), uniform over the RAM's bytes, so every region
 * gets a share in proportion to its size: {@value #ACCESSES} 8-byte-aligned addresses ({@link #wordOffsets}) and
 * {@value #COPIES} page addresses for the 4 KiB copies ({@link #pageOffsets}). Every 8-byte word of the RAM starts as
 * {@link #initialWord} of its offset counted without holes, so the raw baseline's single segment and every layout hold
 * the same words at the same offsets.
 *
 * <p>Threading: immutable.
 */
final class PeersPattern {
    /** Guest-physical address of region 0: 1 GiB. */
    static final long RAM_BASE = 0x4000_0000L;
    /** Bytes of RAM over all regions: 64 MiB. */
    static final long RAM_SIZE = 64L << 20;
    static final int PAGE_SIZE = 4096;
    static final int RAM_PAGES = (int) (RAM_SIZE / PAGE_SIZE);
    /** 8-byte accesses per pass. */
    static final int ACCESSES = 1 << 20;
    /** 4 KiB copies per pass. */
    static final int COPIES = 1 << 16;
    /** The seed of every measured pass. */
    static final long SEED = 42;

    private static final long GOLDEN_GAMMA = 0x9e37_79b9_7f4a_7c15L;

    private final int regions;
    /** Pages of the smaller regions; the first {@link #largeCount} regions have one more. */
    private final int small;
    private final int largeCount;

    /**
     * The pattern over {@code regions} regions.
     *
     * @throws IllegalArgumentException unless {@code 1 <= regions <= 16384}
     */
    PeersPattern(int regions) {
        if (regions < 1 || regions > RAM_PAGES) {
            throw new IllegalArgumentException("regions=" + regions + ": expected 1 to " + RAM_PAGES);
        }
        this.regions = regions;
        this.small = RAM_PAGES / regions;
        this.largeCount = RAM_PAGES % regions;
    }

    int regions() {
        return regions;
    }

    /** Guest-physical address of region {@code r}'s first byte. */
    long regionBase(int r) {
        return RAM_BASE + (firstPage(r) + (long) r) * PAGE_SIZE;
    }

    /** Size of region {@code r} in bytes. */
    long regionSize(int r) {
        return (long) (small + (r < largeCount ? 1 : 0)) * PAGE_SIZE;
    }

    /** Offset (counted without holes) of region {@code r}'s first byte, in bytes. */
    long regionOffset(int r) {
        return (long) firstPage(r) * PAGE_SIZE;
    }

    private int firstPage(int r) {
        return r * small + Math.min(r, largeCount);
    }

    /** The region holding byte {@code offset} of the RAM counted without holes. */
    int regionOf(long offset) {
        int page = (int) (offset / PAGE_SIZE);
        int largePages = largeCount * (small + 1);
        return page < largePages ? page / (small + 1) : largeCount + (page - largePages) / small;
    }

    /** Guest-physical address of byte {@code offset} of the RAM counted without holes. */
    long guestAddress(long offset) {
        return RAM_BASE + offset + (long) regionOf(offset) * PAGE_SIZE;
    }

    /** {@link #guestAddress} of each of {@code offsets}. */
    long[] guestAddresses(long[] offsets) {
        long[] out = new long[offsets.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = guestAddress(offsets[i]);
        }
        return out;
    }

    /** {@value #ACCESSES} 8-byte-aligned offsets into the RAM counted without holes, the same for the same seed. */
    static long[] wordOffsets(long seed) {
        SplitMix64 random = new SplitMix64(seed);
        long[] out = new long[ACCESSES];
        for (int i = 0; i < out.length; i++) {
            out[i] = random.below(RAM_SIZE / 8) * 8;
        }
        return out;
    }

    /** {@value #COPIES} page-aligned offsets into the RAM counted without holes, the same for the same seed. */
    static long[] pageOffsets(long seed) {
        SplitMix64 random = new SplitMix64(seed);
        long[] out = new long[COPIES];
        for (int i = 0; i < out.length; i++) {
            out[i] = random.below(RAM_PAGES) * PAGE_SIZE;
        }
        return out;
    }

    /** The first value of the RAM word at {@code offset} (counted without holes). */
    static long initialWord(long offset) {
        return mix(offset);
    }

    /** SplitMix64's finalizer (Stafford's variant 13). */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58_476d_1ce4_e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d0_49bb_1331_11ebL;
        return z ^ (z >>> 31);
    }

    /**
     * SplitMix64 (Steele, Lea and Flood), written out rather than taken from {@link java.util.SplittableRandom} so
     * that the Rust harness can produce the same sequence, bounded values included.
     */
    static final class SplitMix64 {
        private long state;

        SplitMix64(long seed) {
            this.state = seed;
        }

        long next() {
            state += GOLDEN_GAMMA;
            return mix(state);
        }

        /** Uniform in {@code [0, bound)} for a positive {@code bound}: the high half of the 128-bit product. */
        long below(long bound) {
            return Math.unsignedMultiplyHigh(next(), bound);
        }
    }
}
