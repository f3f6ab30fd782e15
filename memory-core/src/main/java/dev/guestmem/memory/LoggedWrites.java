package dev.guestmem.memory;

/**
 * The write entries of one soft TLB ({@link SoftTlb} or {@link HostTlb}) that went fast for a page VGA or MIGRATION
 * logs since they were last re-armed: QEMU's {@code TLB_NOTDIRTY} entries whose flag {@code tlb_set_dirty} dropped.
 * When the dirty epoch moves (a take of dirty bits, see {@code internal.dirty.DirtyEpoch}), the TLB sets
 * {@code NOTDIRTY} on exactly these again, so that their next stores mark their pages: a list of entry indexes keeps
 * that from visiting every entry of a large TLB on every take. If more entries went fast than the list holds (the same
 * entry refilled and marked again and again within one epoch), the next re-arm visits every entry.
 *
 * <p>Threading: the TLB's owner thread only; {@link #rearm} writes tags, so the TLB calls it under its entry lock.
 */
final class LoggedWrites {
    private int[] entries;
    private int count;
    private boolean overflow;

    /** Empty, for a TLB of {@code size} entries. */
    LoggedWrites(int size) {
        entries = new int[size];
    }

    /** Empty, for a TLB that now has {@code size} entries (after a resize). */
    void resize(int size) {
        entries = new int[size];
        clear();
    }

    /** Forgets every entry: the TLB emptied its write entries. */
    void clear() {
        count = 0;
        overflow = false;
    }

    /** Whether a re-arm has anything to do. */
    boolean any() {
        return count != 0 || overflow;
    }

    /** Entry {@code i} went fast for a logged page. */
    void add(int i) {
        if (count < entries.length) {
            entries[count++] = i;
        } else {
            overflow = true;
        }
    }

    /**
     * Sets {@code notDirty} on the write tag ({@code write[2i]}) of each listed entry whose page is still logged by a
     * client but CODE ({@code writeLog[i]}), then forgets them all. An invalid tag (-1) stays invalid; an entry refilled
     * since for another logged page is re-armed too, which costs it one slow store.
     */
    void rearm(long[] write, int[] writeLog, long notDirty) {
        if (overflow) {
            for (int i = 0; i < writeLog.length; i++) {
                if ((writeLog[i] & ~TlbPages.CODE) != 0) {
                    write[2 * i] |= notDirty;
                }
            }
        } else {
            for (int n = 0; n < count; n++) {
                final int i = entries[n];
                if ((writeLog[i] & ~TlbPages.CODE) != 0) {
                    write[2 * i] |= notDirty;
                }
            }
        }
        clear();
    }
}
