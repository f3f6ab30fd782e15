package dev.guestmem.memory;

/**
 * One thread of a TLB stress test over a {@link VersionedMap} with its clock: the accesses and checks that
 * {@link SoftTlbStressTest}'s readers and {@link HostTlbStressTest}'s vCPUs share. A subclass makes the rounds, with
 * its TLB's own discipline. Every check throws an {@link AssertionError} naming the forbidden outcome.
 *
 * <p>Threading: confined to the thread that owns the TLB.
 */
abstract class TlbStressThread {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    final VersionedMap map;
    final TlbAccess tlb;
    private final long slot;
    private final int[] r = new int[1];
    private long seq;
    /** The last sequence number whose store was written (OK), 0 before any. */
    long written;

    TlbStressThread(VersionedMap map, TlbAccess tlb, int id) {
        this.map = map;
        this.tlb = tlb;
        this.slot = VersionedMap.SCRATCH + 8L * id;
    }

    /** The device's bytes for even k (0), the hole for odd k (1). */
    final int deviceParity(int v, int result) {
        if (v == 0) {
            if (result != MemTxResult.DECODE_ERROR) {
                throw new AssertionError("hole read 0 with " + MemTxResult.toString(result));
            }
            return 1;
        }
        int k = markOf(v & 0xffff_ffffL | 0x1_0000_0000L, "device");
        if (k % 2 != 0 || result != MemTxResult.OK) {
            throw new AssertionError("device bytes of k=" + k + " result=" + MemTxResult.toString(result));
        }
        return 0;
    }

    /** A new sequence number stored into the slot, then loaded back: 0 when written (even), 1 when discarded. */
    final int storeAndLoad() {
        seq++;
        tlb.stqLe(slot, seq);
        int sr = tlb.takeResult();
        int parity;
        if (sr == MemTxResult.OK) {
            written = seq;
            parity = 0;
        } else if (sr == MemTxResult.DECODE_ERROR) {
            parity = 1;
        } else {
            throw new AssertionError("scratch store result=" + MemTxResult.toString(sr));
        }
        long back = tlb.ldqLe(slot);
        expectOk("scratch load");
        if (back != written) {
            throw new AssertionError("scratch slot reads " + back + " but the last written store was " + written
                    + " (seq=" + seq + ", this store " + MemTxResult.toString(sr) + ")");
        }
        return parity;
    }

    /**
     * The clock through the address space. The address space publishes its dispatch and view as one reference, so
     * this comes from a map no older than any the TLB took before (at an access, or at its check point).
     */
    final long clockThroughAddressSpace() {
        long c = map.as.ldqLe(VersionedMap.CLOCK, U, r);
        if (r[0] != MemTxResult.OK) {
            throw new AssertionError("clock through the address space: " + MemTxResult.toString(r[0]));
        }
        return c;
    }

    final long clockThroughTlb() {
        long c = tlb.ldqLe(VersionedMap.CLOCK);
        expectOk("clock through the TLB");
        if (c < 0 || c >= VersionedMap.CLOCK_VALUES) {
            throw new AssertionError("clock=" + c);
        }
        return c;
    }

    final void expectOk(String what) {
        int res = tlb.takeResult();
        if (res != MemTxResult.OK) {
            throw new AssertionError(what + ": " + MemTxResult.toString(res));
        }
    }

    /**
     * The k of a RAM value whose every byte is k + 1 (a 32-bit value arrives with bit 32 set so that the upper half is
     * not read as bytes).
     */
    final int markOf(long v, String what) {
        expectOk(what);
        int width = (v >>> 32) == 1 ? 4 : 8;
        int mark = (int) (v & 0xff);
        if (mark < 1 || mark > VersionedMap.VERSIONS) {
            throw new AssertionError(what + ": " + Long.toHexString(v) + " is no version's");
        }
        for (int i = 1; i < width; i++) {
            if ((int) ((v >>> (8 * i)) & 0xff) != mark) {
                throw new AssertionError(what + ": " + Long.toHexString(v) + " mixes versions");
            }
        }
        return mark - 1;
    }

    /** The k of a 4-byte fetch at {@code addr}. */
    final int fetchMark(long addr) {
        return markOf(tlb.ldlCode(addr) & 0xffff_ffffL | 0x1_0000_0000L, "fetch");
    }

    /** How far {@code later} is ahead of {@code earlier} on the clock, or at least half the clock if it is behind. */
    static long distance(long earlier, long later) {
        return Math.floorMod(later - earlier, VersionedMap.CLOCK_VALUES);
    }
}
