package dev.guestmem.offheap;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import dev.guestmem.offheap.internal.linux.Errno;
import dev.guestmem.offheap.internal.linux.Linux;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicReference;

/**
 * QEMU's {@code qemu_prealloc_mem}: populates every page of a new mapping, the range split into one contiguous part
 * per thread. Each part is populated by the kernel ({@code MADV_POPULATE_WRITE}, or {@code MADV_POPULATE_READ} for a
 * read-only mapping), which reports memory it cannot provide (ENOMEM, or EFAULT where an access would have been a
 * SIGBUS, such as exhausted hugetlb pages) as an error; on a kernel without it (EINVAL), each page is touched through
 * a Java segment access instead, never from native code, so that a SIGBUS surfaces as an {@link InternalError}.
 *
 * <p>Threading: called by the allocating thread, which waits for the threads it starts.
 */
final class Preallocator {
    private Preallocator() {
    }

    /**
     * @param where    the allocation, as error messages name it
     * @param address  the mapping's first byte, page-aligned
     * @param length   bytes, a multiple of the page size
     * @param writable whether the mapping may be written (populated for writing, copy-on-write done)
     * @param threads  at least 1
     * @throws IllegalStateException if the host cannot provide the memory
     */
    static void populate(String where, long address, long length, boolean writable, int threads) {
        populate(where, address, length, writable, threads, true);
    }

    /**
     * {@link #populate(String, long, long, boolean, int)}, with the kernel's MADV_POPULATE_* ({@code kernel}) or
     * with page touching only, which is otherwise the fallback for kernels without it (tests take it directly).
     */
    static void populate(String where, long address, long length, boolean writable, int threads, boolean kernel) {
        long pages = length / HostMemoryBackend.HOST_PAGE;
        int n = (int) Math.max(1, Math.min(threads, pages));
        long perThread = (pages + n - 1) / n * HostMemoryBackend.HOST_PAGE;
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread[] workers = new Thread[n];
        for (int i = 0; i < n; i++) {
            long start = i * perThread;
            long len = Math.min(perThread, length - start);
            Runnable part = () -> {
                try {
                    if (kernel) {
                        populatePart(address + start, len, writable);
                    } else {
                        touch(address + start, len, writable);
                    }
                } catch (RuntimeException | InternalError e) {
                    failure.compareAndSet(null, e);
                }
            };
            if (n == 1) {
                part.run();
            } else {
                workers[i] = Thread.ofPlatform().name("guestmem-prealloc-" + i).start(part);
            }
        }
        boolean interrupted = false;
        for (Thread w : workers) {
            while (w != null) {
                try {
                    w.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true; // the parts still touch the mapping: wait for them before it can be unmapped
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        Throwable f = failure.get();
        if (f != null) {
            throw new IllegalStateException(where + " size=0x" + Long.toHexString(length) + " prealloc=on: "
                    + "the host cannot provide the memory: " + f.getMessage(), f);
        }
    }

    private static void populatePart(long address, long length, boolean writable) {
        if (length <= 0) {
            return;
        }
        try {
            Linux.madvise(address, length, writable ? Linux.MADV_POPULATE_WRITE : Linux.MADV_POPULATE_READ);
        } catch (ErrnoException e) {
            if (e.errno() != Errno.EINVAL) {
                throw e;
            }
            touch(address, length, writable);
        }
    }

    /** Reads (and writes back) one byte per page through a segment access, which survives a SIGBUS. */
    @SuppressWarnings("restricted") // a view of the new mapping, used before any block or arena owns it
    private static void touch(long address, long length, boolean writable) {
        if (length <= 0) {
            return; // a thread whose part starts past the end (more threads than whole parts)
        }
        MemorySegment part = MemorySegment.ofAddress(address).reinterpret(length);
        for (long off = 0; off < length; off += HostMemoryBackend.HOST_PAGE) {
            byte b = part.get(JAVA_BYTE, off);
            if (writable) {
                part.set(JAVA_BYTE, off, b);
            }
        }
    }
}
