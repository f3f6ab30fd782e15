package dev.guestmem.offheap.vhost;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The backend's side of the shared dirty log (libvhost-user's {@code vu_log_write}): sets the bit of every 4 KiB
 * guest-physical page a write touched, with atomic ORs on the 64-bit words the front-end takes with atomic ANDs
 * ({@link VhostUserDirtyLog#syncInto}). Pages beyond the log are not logged, as in libvhost-user.
 *
 * <p>Threading: any number of ring threads at once.
 */
final class VhostUserLogWriter {
    private static final VarHandle WORD = JAVA_LONG.varHandle();

    private final MemorySegment log;

    /** @param log the mapped log, 8-byte aligned, a whole number of words */
    VhostUserLogWriter(MemorySegment log) {
        this.log = log;
    }

    /** Marks the pages of guest-physical bytes {@code [addr, addr + len)}; nothing for {@code len} 0. */
    void mark(long addr, long len) {
        if (len <= 0) {
            return;
        }
        long words = log.byteSize() >>> 3;
        for (long page = addr >>> 12; page <= (addr + len - 1) >>> 12; page++) {
            long word = page >>> 6;
            if (word < 0 || word >= words) {
                return;
            }
            WORD.getAndBitwiseOr(log, word << 3, 1L << (page & 63));
        }
    }
}
