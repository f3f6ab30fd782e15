package dev.guestmem.memory.internal.render;

import java.util.AbstractList;
import java.util.Arrays;
import java.util.Objects;
import java.util.RandomAccess;

/**
 * A list in an array with a gap where the last insertion or removal happened (a gap buffer), for a container's
 * subregions: adding a run of regions at the same place in the priority order (many regions of one priority after
 * many of a higher one) moves no element after the first, where an {@code ArrayList} shifts everything behind the
 * insertion point each time, quadratic in the run. Moving the gap costs the distance it moves; reading an index is
 * one branch more than an {@code ArrayList}'s.
 *
 * <p>Threading: not thread-safe; a container's list is changed by the writer under the topology lock.
 *
 * @param <E> the elements
 */
public final class GapList<E> extends AbstractList<E> implements RandomAccess {
    private static final Object[] EMPTY = {};

    /** The elements: {@code [0, gapStart)} then {@code [gapEnd, a.length)}; the gap holds nulls only. */
    private Object[] a = EMPTY;
    private int gapStart;
    private int gapEnd;
    /** Elements moved to make room so far, for tests that count the work of a run of insertions. */
    private long moves;

    @Override
    public int size() {
        return a.length - (gapEnd - gapStart);
    }

    @Override
    @SuppressWarnings("unchecked")
    public E get(int index) {
        Objects.checkIndex(index, size());
        return (E) a[index < gapStart ? index : index + (gapEnd - gapStart)];
    }

    @Override
    public void add(int index, E element) {
        Objects.checkIndex(index, size() + 1);
        if (gapStart == gapEnd) {
            grow();
        }
        moveGapTo(index);
        a[gapStart++] = element;
        modCount++;
    }

    @Override
    @SuppressWarnings("unchecked")
    public E remove(int index) {
        Objects.checkIndex(index, size());
        moveGapTo(index);
        E e = (E) a[gapEnd];
        a[gapEnd++] = null;
        modCount++;
        return e;
    }

    /** How many elements insertions and removals have moved so far (a measure of their work, not of time). */
    public long moves() {
        return moves;
    }

    /** Moves the gap so that it starts at {@code index}, clearing the slots the moved elements leave. */
    private void moveGapTo(int index) {
        int gap = gapEnd - gapStart;
        if (index < gapStart) {
            int n = gapStart - index;
            System.arraycopy(a, index, a, index + gap, n);
            Arrays.fill(a, index, Math.min(gapStart, index + gap), null);
            moves += n;
        } else if (index > gapStart) {
            int n = index - gapStart;
            System.arraycopy(a, gapEnd, a, gapStart, n);
            Arrays.fill(a, Math.max(gapEnd, index), gapEnd + n, null);
            moves += n;
        }
        gapStart = index;
        gapEnd = index + gap;
    }

    /** Doubles the array (at least 4 slots), the gap where it was. */
    private void grow() {
        int size = size();
        Object[] b = new Object[Math.max(4, size * 2)];
        System.arraycopy(a, 0, b, 0, gapStart);
        int tail = a.length - gapEnd;
        System.arraycopy(a, gapEnd, b, b.length - tail, tail);
        gapEnd = b.length - tail;
        a = b;
    }
}
