package dev.guestmem.memory;

/**
 * Something a write can signal without running the device model, as QEMU's {@code EventNotifier} behind an
 * ioeventfd: an OS eventfd in memory-offheap, or a plain Java object in tests.
 *
 * <p>Threading: {@link #set()} is called from whichever thread performed the matching write.
 */
@FunctionalInterface
public interface EventNotifier {
    /** Signals the event. */
    void set();
}
