package dev.guestmem.offheap.vhost;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.U64;
import java.lang.invoke.VarHandle;
import java.util.List;

/**
 * The driver side of a virtio 1.0 split virtqueue in guest RAM, as a guest's virtio driver keeps it (the layout of
 * QEMU's {@code VRingDesc}/{@code VRingAvail}/{@code VRingUsed}): the descriptor table, the available ring and the used
 * ring one after the other from a guest-physical base address, every field little-endian and written and read through
 * the {@link AddressSpace}, so a device in another process sees them in the shared RAM. No event-index suppression
 * (VIRTIO_RING_F_EVENT_IDX is not negotiated): the device signals every used buffer.
 *
 * <p>Threading: one thread drives a queue.
 */
public final class SplitVirtqueue {
    /** A buffer of a request: guest-physical bytes {@code [guestAddress, guestAddress + length)}. */
    public record Buffer(long guestAddress, int length, boolean deviceWrites) {
    }

    /** A request the device finished: the head descriptor it was added with, and the bytes it wrote. */
    public record Used(int head, int written) {
    }

    private static final int DESC_SIZE = 16;
    private static final int F_NEXT = 1;
    private static final int F_WRITE = 2;
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;

    private final AddressSpace as;
    private final int size;
    private final long desc;
    private final long avail;
    private final long used;
    /** Free descriptors as a chain through {@link #next}; -1 ends it. */
    private final int[] next;
    private final int[] chainLength;
    /** The last descriptor of the request whose head is the index: kept here, not read back from guest RAM. */
    private final int[] chainTail;
    private int freeHead;
    private int free;
    private int availIdx;
    private int lastUsedIdx;
    private final VringMemory ring = new VringMemory();

    /**
     * @param base guest-physical address of the queue, 16-byte aligned; the queue takes {@link #bytes(int)} bytes
     * @param size descriptors, a power of two from 1 to 32768
     */
    public SplitVirtqueue(AddressSpace as, long base, int size) {
        if (size < 1 || size > 32768 || Integer.bitCount(size) != 1 || (base & 15) != 0) {
            throw new IllegalArgumentException("base=" + U64.hex(base) + " size=" + size
                    + ": needs a power-of-two size up to 32768 and a 16-byte aligned base");
        }
        this.as = as;
        this.size = size;
        this.desc = base;
        this.avail = base + (long) DESC_SIZE * size;
        this.used = align4(avail + 6 + 2L * size);
        this.next = new int[size];
        this.chainLength = new int[size];
        this.chainTail = new int[size];
        for (int i = 0; i < size; i++) {
            next[i] = i + 1 < size ? i + 1 : -1;
        }
        this.free = size;
        // A fresh queue: no flags, both indexes 0, as a driver finds it after reset.
        VringMemory.check(as.set(base, (byte) 0, bytes(size), ATTRS), base);
    }

    /** Bytes a queue of {@code size} descriptors takes: descriptor table, available ring, used ring. */
    public static long bytes(int size) {
        return align4((long) DESC_SIZE * size + 6 + 2L * size) + 6 + 8L * size;
    }

    public int size() {
        return size;
    }

    /** Guest-physical address of the descriptor table. */
    public long descAddress() {
        return desc;
    }

    /** Guest-physical address of the available ring. */
    public long availAddress() {
        return avail;
    }

    /** Guest-physical address of the used ring. */
    public long usedAddress() {
        return used;
    }

    /** The next available index the driver will publish (what SET_VRING_BASE and GET_VRING_BASE count). */
    public int availIndex() {
        return availIdx;
    }

    /**
     * Puts a request (a chain of buffers, those the device reads first) in the descriptor table and publishes it on
     * the available ring. The device learns of it at the next kick.
     *
     * @return the head descriptor, as {@link Used#head()} will name it
     * @throws IllegalStateException if fewer than {@code chain.size()} descriptors are free
     */
    public int add(List<Buffer> chain) {
        if (chain.isEmpty() || chain.size() > free) {
            throw new IllegalStateException("buffers=" + chain.size() + " free=" + free
                    + ": no room in the descriptor table");
        }
        int head = freeHead;
        int d = head;
        for (int i = 0; i < chain.size(); i++) {
            Buffer b = chain.get(i);
            long at = desc + (long) DESC_SIZE * d;
            boolean last = i == chain.size() - 1;
            VringMemory.store64(as, at, b.guestAddress());
            VringMemory.store32(as, at + 8, b.length());
            VringMemory.store16(as, at + 12, (last ? 0 : F_NEXT) | (b.deviceWrites() ? F_WRITE : 0));
            int following = next[d];
            VringMemory.store16(as, at + 14, last ? 0 : following);
            if (!last) {
                d = following;
            } else {
                chainTail[head] = d;
                freeHead = following;
            }
        }
        free -= chain.size();
        chainLength[head] = chain.size();
        long slot = avail + 4 + 2L * (availIdx & (size - 1));
        VringMemory.store16(as, slot, head);
        // The device must see the descriptors and the ring entry before the index that publishes them (virtio's
        // write barrier before updating avail->idx); the eventfd kick that follows is a system call, a full barrier.
        VarHandle.fullFence();
        availIdx = (availIdx + 1) & 0xffff;
        VringMemory.store16(as, avail + 2, availIdx);
        return head;
    }

    /** The next request the device finished, or null when it has used nothing more; its descriptors become free. */
    public Used poll() {
        int usedIdx = load16(used + 2);
        if (usedIdx == lastUsedIdx) {
            return null;
        }
        // Read the element only after the index that published it (virtio's read barrier).
        VarHandle.fullFence();
        long elem = used + 4 + 8L * (lastUsedIdx & (size - 1));
        int head = load32(elem);
        int written = load32(elem + 4);
        if (head < 0 || head >= size || chainLength[head] == 0) {
            throw new IllegalStateException("head=" + head + " size=" + size + ": the device used a descriptor"
                    + " that is not the head of a request");
        }
        lastUsedIdx = (lastUsedIdx + 1) & 0xffff;
        // Return the chain to the free list. Its links are still those of the free list it was taken from (add
        // only read them), so the tail is all that needs joining; nothing the device could have written is trusted.
        next[chainTail[head]] = freeHead;
        freeHead = head;
        free += chainLength[head];
        chainLength[head] = 0;
        return new Used(head, written);
    }

    private int load16(long addr) {
        return ring.load16(as, addr);
    }

    private int load32(long addr) {
        return ring.load32(as, addr);
    }

    private static long align4(long v) {
        return (v + 3) & ~3L;
    }
}
