package dev.guestmem.memory;

/**
 * QEMU's {@code RamDiscardListener}: told by a {@link RamDiscardManager} which parts of the
 * {@link MemoryRegionSection} it registered for become populated (usable by the guest) and which are discarded. A
 * listener that must not touch discarded memory (one that maps guest RAM for a device's DMA, as VFIO does) maps only
 * what it has been told is populated. Register it with {@link RamDiscardManager#registerListener}, one listener object
 * per section, as QEMU's VFIO does; a manager refuses a listener that is registered with it already.
 *
 * <p>Every section a listener is given lies inside the section it registered for; sections are cropped to it.
 *
 * <p>Threading: the manager calls the listener on the thread that plugs, unplugs, registers or unregisters, under the
 * topology lock of the region's {@link MemorySystem} (QEMU's BQL). A listener may read the memory system and open
 * transactions, but must not plug, unplug, register or unregister listeners from inside a notification.
 */
public interface RamDiscardListener {
    /**
     * QEMU's {@code notify_populate}: the memory of {@code section}, discarded until now, is about to become
     * populated. The listener may object by returning false (or throwing): the manager then tells every listener it
     * already told about this populate that the memory is discarded again ({@link #notifyDiscard}), and fails the
     * request with nothing changed.
     *
     * @param section the part of the registered section that is about to be populated
     * @return true to accept, false to refuse
     */
    boolean notifyPopulate(MemoryRegionSection section);

    /**
     * QEMU's {@code notify_discard}: the memory of {@code section}, populated until now, is discarded (or is about to
     * be): the listener drops every reference to it (unmaps it). Unless {@link #doubleDiscardSupported()}, the section
     * covers only memory this listener was told is populated.
     *
     * @param section the part of the registered section that is discarded
     */
    void notifyDiscard(MemoryRegionSection section);

    /**
     * QEMU's {@code double_discard_supported}: whether {@link #notifyDiscard} may be given sections that span parts
     * already discarded (so the manager can discard a whole section with one notification). Asked each time; the
     * answer must not change while the listener is registered.
     */
    default boolean doubleDiscardSupported() {
        return false;
    }
}
