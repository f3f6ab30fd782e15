/**
 * RAM backends that need the operating system: mmapped files, fds and memfds, huge pages, discard, and exporting
 * guest RAM to other processes. Every native call is an FFM downcall in one internal package.
 *
 * <p>This module's backends arrive with the OS-backed RAM issue; today it only fixes its place in the build
 * (bench -> offheap -> core).
 */
module dev.guestmem.offheap {
    requires transitive dev.guestmem.core;
}
