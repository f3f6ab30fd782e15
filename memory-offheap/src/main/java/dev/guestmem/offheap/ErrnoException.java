package dev.guestmem.offheap;

/**
 * A Linux call that failed: its name, the arguments it was given and the {@code errno} it set, in one line such as
 * {@code mmap(length=0x400000000, prot=RW, flags=SHARED, fd=17, offset=0) failed: ENOMEM}. The backends attach it
 * as the cause of the error they report about the RAM they were asked for.
 */
public final class ErrnoException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int errno;
    private final String errnoName;

    /**
     * @param call      the call with its arguments, e.g. {@code munmap(addr=0x7f0000000000, length=0x1000)}
     * @param errno     the value of {@code errno} the call left
     * @param errnoName the errno's symbolic name, e.g. {@code ENOMEM}
     */
    public ErrnoException(String call, int errno, String errnoName) {
        super(call + " failed: " + errnoName);
        this.call = call;
        this.errno = errno;
        this.errnoName = errnoName;
    }

    /** The call and its arguments, as in the message. */
    public String call() {
        return call;
    }

    /** The {@code errno} value, e.g. 12 for ENOMEM. */
    public int errno() {
        return errno;
    }

    /** The errno's symbolic name, e.g. {@code ENOMEM}, or {@code errno=N} for one without a known name. */
    public String errnoName() {
        return errnoName;
    }
}
