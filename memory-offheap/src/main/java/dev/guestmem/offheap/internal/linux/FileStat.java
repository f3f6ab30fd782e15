package dev.guestmem.offheap.internal.linux;

/**
 * What {@code fstat} says about an fd that the backends check: the file type and its size.
 *
 * @param mode      {@code st_mode}: the file type and permission bits
 * @param size      {@code st_size}: bytes, for a regular file
 * @param blockSize {@code st_blksize}: the preferred I/O size (the huge page size for hugetlb files)
 */
public record FileStat(int mode, long size, long blockSize) {
    private static final int S_IFMT = 0xf000;
    private static final int S_IFREG = 0x8000;
    private static final int S_IFDIR = 0x4000;
    private static final int S_IFCHR = 0x2000;
    private static final int S_IFBLK = 0x6000;

    public boolean isRegularFile() {
        return (mode & S_IFMT) == S_IFREG;
    }

    public boolean isDirectory() {
        return (mode & S_IFMT) == S_IFDIR;
    }

    /** A character or block device, which may be mappable (/dev/zero, a DAX device) or not (/dev/null). */
    public boolean isDevice() {
        int type = mode & S_IFMT;
        return type == S_IFCHR || type == S_IFBLK;
    }

    /** The file type in words, for error messages. */
    public String typeName() {
        return switch (mode & S_IFMT) {
            case S_IFREG -> "regular file";
            case S_IFDIR -> "directory";
            case S_IFCHR -> "character device";
            case S_IFBLK -> "block device";
            case 0x1000 -> "fifo";
            case 0xc000 -> "socket";
            case 0xa000 -> "symbolic link";
            default -> "file of type 0x" + Integer.toHexString(mode & S_IFMT);
        };
    }
}
