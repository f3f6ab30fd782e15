package dev.guestmem.offheap.internal.linux;

/**
 * What {@code fstatfs} says about the file system of an fd that the backends use.
 *
 * @param type      {@code f_type}, e.g. {@link Linux#HUGETLBFS_MAGIC}
 * @param blockSize {@code f_bsize}: bytes, the huge page size on hugetlbfs
 */
public record FileSystemStat(long type, long blockSize) {
}
