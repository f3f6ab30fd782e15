/**
 * RAM backends that need the operating system: anonymous mmap, mmapped files and fds, sealed memfds, huge pages,
 * preallocation, discard and msync, as QEMU's {@code memory-backend-*} objects ({@link
 * dev.guestmem.offheap.HostMemoryBackend}). Every native call is an FFM downcall in one internal package, so this
 * module needs native access: {@code --enable-native-access=dev.guestmem.offheap} (or {@code ALL-UNNAMED} when it is
 * on the class path).
 */
module dev.guestmem.offheap {
    requires transitive dev.guestmem.core;

    exports dev.guestmem.offheap;
    exports dev.guestmem.offheap.migration;
    exports dev.guestmem.offheap.vhost;

    // membarrier(PRIVATE_EXPEDITED) as the dirty bitmaps' asymmetric fence (memory-core's AsymmetricFence).
    provides dev.guestmem.memory.AsymmetricFence.Provider
            with dev.guestmem.offheap.internal.linux.Membarrier.Provider;
    // memmove through a critical downcall for the access path's large copies (memory-core's BulkCopier).
    provides dev.guestmem.memory.BulkCopier.Provider
            with dev.guestmem.offheap.internal.linux.Memmove.Provider;
}
