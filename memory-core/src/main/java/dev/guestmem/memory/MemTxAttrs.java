package dev.guestmem.memory;

/**
 * Attributes of a memory transaction, as QEMU's {@code MemTxAttrs}: who is accessing and how. Immutable.
 *
 * @param unspecified  the bus master did not say (QEMU's {@code MEMTXATTRS_UNSPECIFIED})
 * @param secure       an Arm TrustZone secure access
 * @param user         an unprivileged access
 * @param requesterId  the PCI requester id of a DMA access, 0 when none
 */
public record MemTxAttrs(boolean unspecified, boolean secure, boolean user, int requesterId) {
    /** QEMU's {@code MEMTXATTRS_UNSPECIFIED}. */
    public static final MemTxAttrs UNSPECIFIED = new MemTxAttrs(true, false, false, 0);

    public MemTxAttrs {
        if ((requesterId & ~0xffff) != 0) {
            throw new IllegalArgumentException("requesterId=0x" + Integer.toHexString(requesterId)
                    + " does not fit 16 bits");
        }
    }

    /** Plain specified attributes: non-secure, privileged, no requester id. */
    public static MemTxAttrs of(boolean secure, boolean user, int requesterId) {
        return new MemTxAttrs(false, secure, user, requesterId);
    }
}
