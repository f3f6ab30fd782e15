package dev.guestmem.offheap.migration;

import java.io.IOException;

/**
 * A migration that failed, in one {@code key=value} line naming the offending field or block and what went wrong: a
 * stream that is not a guestmem RAM stream, of another version, truncated, corrupt (a checksum, a count or a page
 * number that does not add up), a destination whose RAM blocks do not match the source's, a peer that closed the
 * channel or sent nothing for the I/O timeout, or source memory that went away while it was being sent.
 */
public final class MigrationException extends IOException {
    private static final long serialVersionUID = 1L;

    /** @param message the one-line reason */
    public MigrationException(String message) {
        super(message);
    }

    /**
     * @param message the one-line reason
     * @param cause   the failure underneath (an I/O error of the channel, a fault of host memory)
     */
    public MigrationException(String message, Throwable cause) {
        super(message, cause);
    }
}
