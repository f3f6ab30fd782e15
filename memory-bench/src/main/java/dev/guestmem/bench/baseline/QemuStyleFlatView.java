package dev.guestmem.bench.baseline;

import dev.guestmem.memory.MemoryRegion;

import java.util.Arrays;

/**
 * The baseline's flat view: QEMU's array of {@code FlatRange} structs as parallel arrays, sorted by address, grown
 * by doubling, with insertion by shifting the tail (QEMU's {@code flatview_insert}).
 *
 * <p>Threading: built by one thread; immutable once {@link QemuStyleRenderer#render} returns it.
 */
public final class QemuStyleFlatView {
    long[] start = new long[16];
    /** Inclusive. */
    long[] last = new long[16];
    long[] offsetInRegion = new long[16];
    QemuStyleRenderer.Node[] node = new QemuStyleRenderer.Node[16];
    boolean[] readonly = new boolean[16];
    int count;

    QemuStyleFlatView() {
    }

    void insert(int at, long first, long lastAddr, QemuStyleRenderer.Node mr, long offset, boolean ro) {
        if (count == start.length) {
            int n = count * 2;
            start = Arrays.copyOf(start, n);
            last = Arrays.copyOf(last, n);
            offsetInRegion = Arrays.copyOf(offsetInRegion, n);
            node = Arrays.copyOf(node, n);
            readonly = Arrays.copyOf(readonly, n);
        }
        int tail = count - at;
        System.arraycopy(start, at, start, at + 1, tail);
        System.arraycopy(last, at, last, at + 1, tail);
        System.arraycopy(offsetInRegion, at, offsetInRegion, at + 1, tail);
        System.arraycopy(node, at, node, at + 1, tail);
        System.arraycopy(readonly, at, readonly, at + 1, tail);
        start[at] = first;
        last[at] = lastAddr;
        offsetInRegion[at] = offset;
        node[at] = mr;
        readonly[at] = ro;
        count++;
    }

    /** QEMU's {@code flatview_simplify}: merges runs of ranges that continue each other, in place. */
    void simplify() {
        int out = 0;
        int i = 0;
        while (i < count) {
            int j = i + 1;
            while (j < count && continues(j - 1, j)) {
                j++;
            }
            start[out] = start[i];
            last[out] = last[j - 1];
            offsetInRegion[out] = offsetInRegion[i];
            node[out] = node[i];
            readonly[out] = readonly[i];
            out++;
            i = j;
        }
        Arrays.fill(node, out, count, null);
        count = out;
    }

    private boolean continues(int a, int b) {
        return last[a] + 1 == start[b] && last[a] != -1L
                && node[a] == node[b]
                && offsetInRegion[a] + (last[a] - start[a]) + 1 == offsetInRegion[b]
                && readonly[a] == readonly[b];
    }

    public int rangeCount() {
        return count;
    }

    public long start(int i) {
        return start[i];
    }

    /** Inclusive. */
    public long last(int i) {
        return last[i];
    }

    public long offsetInRegion(int i) {
        return offsetInRegion[i];
    }

    public MemoryRegion region(int i) {
        return node[i].region;
    }

    public boolean readonly(int i) {
        return readonly[i];
    }
}
