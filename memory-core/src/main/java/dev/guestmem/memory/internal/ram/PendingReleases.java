package dev.guestmem.memory.internal.ram;

import dev.guestmem.memory.AbstractRamBlock;
import dev.guestmem.memory.RamList;
import dev.guestmem.memory.Rcu;
import dev.guestmem.memory.internal.CoreAccess;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.ArrayList;

/**
 * The blocks of regions destroyed in the open transaction, which its outermost commit releases once no published
 * view maps them: QEMU's {@code qemu_ram_free} after {@code memory_region_finalize}, deferred to the commit.
 *
 * <p>Threading: writer only (the topology lock held).
 */
public final class PendingReleases {
    private static final CoreAccess CORE = SharedSecrets.coreAccess();

    private final ArrayList<AbstractRamBlock> blocks = new ArrayList<>();

    /** Queues the block of a region destroyed in the open transaction. */
    public void add(AbstractRamBlock block) {
        blocks.add(block);
    }

    /** Whether a block waits. */
    public boolean isEmpty() {
        return blocks.isEmpty();
    }

    /**
     * Called after the views without the blocks are published: takes each block out of {@code ramList} (its ram_addr
     * range and name become free) and drops the region's reference, so its memory is freed after a grace period of
     * {@code rcu}, or after the last mapping or cache over it ends if that is later.
     */
    public void releaseAll(RamList ramList, Rcu rcu) {
        for (AbstractRamBlock b : blocks) {
            CORE.removeBlock(ramList, b);
            CORE.release(b, rcu);
        }
        blocks.clear();
    }
}
