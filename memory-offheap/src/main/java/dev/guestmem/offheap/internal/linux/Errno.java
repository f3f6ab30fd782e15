package dev.guestmem.offheap.internal.linux;

/** Symbolic names of Linux errno values (x86_64 and aarch64 share them), for error messages. */
public final class Errno {
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int EINTR = 4;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EFAULT = 14;
    public static final int EEXIST = 17;
    public static final int ENODEV = 19;
    public static final int ENOTDIR = 20;
    public static final int EISDIR = 21;
    public static final int EINVAL = 22;
    public static final int EROFS = 30;
    public static final int ENAMETOOLONG = 36;
    public static final int ENOSYS = 38;
    public static final int ELOOP = 40;
    public static final int EOPNOTSUPP = 95;

    /** Names indexed by errno, 0..40 (the classic Unix set, which covers what memory calls set). */
    private static final String[] NAMES = {
        "0", "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF", "ECHILD",
        "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST", "EXDEV", "ENODEV", "ENOTDIR",
        "EISDIR", "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE", "EROFS",
        "EMLINK", "EPIPE", "EDOM", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP",
    };

    private Errno() {
    }

    /** The symbolic name of {@code errno}, or {@code errno=N} for one this table does not know. */
    public static String name(int errno) {
        if (errno > 0 && errno < NAMES.length) {
            return NAMES[errno];
        }
        return switch (errno) {
            case 61 -> "ENODATA";
            case 75 -> "EOVERFLOW";
            case 95 -> "EOPNOTSUPP";
            case 98 -> "EADDRINUSE";
            case 104 -> "ECONNRESET";
            case 107 -> "ENOTCONN";
            case 111 -> "ECONNREFUSED";
            case 122 -> "EDQUOT";
            case 133 -> "EHWPOISON";
            default -> "errno=" + errno;
        };
    }
}
