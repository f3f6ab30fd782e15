package dev.guestmem.offheap.vhost;

/**
 * A vhost-user request that failed, in one {@code key=value} line naming the socket, the request and what went
 * wrong: a reply of the wrong type, size or flags, a backend that closed the socket or answered too late (the
 * connection is then closed), or a backend that refused the request in its {@code REPLY_ACK} (the connection stays).
 */
public final class VhostUserException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message the one-line reason */
    public VhostUserException(String message) {
        super(message);
    }

    /**
     * @param message the one-line reason
     * @param cause   the failed system call
     */
    public VhostUserException(String message, Throwable cause) {
        super(message, cause);
    }
}
