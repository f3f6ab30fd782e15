package dev.guestmem.offheap.migration;

/**
 * Where a destination's RAM first differs from the source's, as {@link RamMigration#compare} finds it.
 *
 * @param idstr              the block's name
 * @param offset             block-relative offset in bytes of the first differing byte (0 for a missing block or
 *                           a length that differs)
 * @param ramAddr            the source's ram_addr of that byte
 * @param sourceByte         the source's byte there, or -1 when the blocks differ in length or the destination has
 *                           no such block
 * @param destinationByte    the destination's byte there, or -1 likewise
 * @param reason             what differs, in {@code key=value} form
 */
public record RamDifference(String idstr, long offset, long ramAddr, int sourceByte, int destinationByte,
                            String reason) {
    /** One line: the block, the offset, the ram_addr and the reason. */
    @Override
    public String toString() {
        return "block=" + idstr + " offset=0x" + Long.toHexString(offset) + " ramAddr=0x" + Long.toHexString(ramAddr)
                + " " + reason;
    }
}
