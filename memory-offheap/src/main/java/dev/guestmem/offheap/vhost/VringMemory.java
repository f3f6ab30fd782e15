package dev.guestmem.offheap.vhost;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.U64;

/**
 * The little-endian loads and stores of virtqueue fields in guest RAM, for both sides of a ring: an access that
 * does not reach RAM is an {@link IllegalStateException} naming the guest-physical address, never a silent zero;
 * one that reached RAM and faulted there ({@link MemTxResult#ERROR}: the file behind it was truncated) is its
 * subclass {@link Fault}.
 *
 * <p>Threading: one per ring thread (it holds the result scratch).
 */
final class VringMemory {
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    private final int[] scratch = new int[1];

    int load16(AddressSpace as, long addr) {
        int v = as.lduwLe(addr, ATTRS, scratch);
        check(scratch[0], addr);
        return v;
    }

    int load32(AddressSpace as, long addr) {
        int v = as.ldlLe(addr, ATTRS, scratch);
        check(scratch[0], addr);
        return v;
    }

    long load64(AddressSpace as, long addr) {
        long v = as.ldqLe(addr, ATTRS, scratch);
        check(scratch[0], addr);
        return v;
    }

    static void store16(AddressSpace as, long addr, int v) {
        check(as.stwLe(addr, v, ATTRS), addr);
    }

    static void store32(AddressSpace as, long addr, int v) {
        check(as.stlLe(addr, v, ATTRS), addr);
    }

    static void store64(AddressSpace as, long addr, long v) {
        check(as.stqLe(addr, v, ATTRS), addr);
    }

    static void check(int result, long addr) {
        if (result == MemTxResult.ERROR) {
            throw new Fault("guestAddress=" + U64.hex(addr) + " result=" + result
                    + ": the virtqueue's memory faulted (its file was truncated under the mapping)");
        }
        if (result != MemTxResult.OK) {
            throw new IllegalStateException("guestAddress=" + U64.hex(addr) + " result=" + result
                    + ": the virtqueue is not in guest RAM");
        }
    }

    /**
     * A virtqueue access that faulted in RAM: the memory under the address was taken away, where a plain
     * {@link IllegalStateException} means the address itself is bad.
     */
    static final class Fault extends IllegalStateException {
        private static final long serialVersionUID = 1L;

        Fault(String message) {
            super(message);
        }
    }
}
