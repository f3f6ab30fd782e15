package dev.guestmem.offheap.vhost;

import dev.guestmem.memory.U64;

/**
 * One region of a vhost-user memory table, as QEMU's {@code VhostUserMemoryRegion} plus the descriptor it is sent
 * with: guest-physical bytes {@code [guestAddress, guestAddress + size)} are the front-end's process memory at
 * {@code userAddress}, which is the file behind {@code fd} from offset {@code mmapOffset}.
 *
 * @param guestAddress guest-physical address of the first byte
 * @param size         bytes
 * @param userAddress  the front-end's (this process's) address of the first byte
 * @param mmapOffset   offset in bytes of the first byte in the file behind {@code fd}
 * @param fd           the descriptor passed with the region; owned by the RAM block, not by the region
 * @param name         the name of the memory region the bytes belong to, for messages
 */
public record VhostUserMemoryRegion(long guestAddress, long size, long userAddress, long mmapOffset, int fd,
                                    String name) {
    /** Whether guest-physical bytes {@code [addr, addr + len)} lie inside this region. */
    boolean contains(long addr, long len) {
        return U64.le(guestAddress, addr) && U64.le(addr - guestAddress, size)
                && U64.le(len, size - (addr - guestAddress));
    }

    @Override
    public String toString() {
        return "region=" + name + " guest=" + U64.hex(guestAddress) + " size=" + U64.hex(size) + " user="
                + U64.hex(userAddress) + " offset=" + U64.hex(mmapOffset) + " fd=" + fd;
    }
}
