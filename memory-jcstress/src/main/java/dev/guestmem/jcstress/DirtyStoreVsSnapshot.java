package dev.guestmem.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE_INTERESTING;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.guestmem.memory.DirtySnapshot;
import dev.guestmem.memory.MemTxAttrs;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.ZZ_Result;

/**
 * Claim 3, the data behind the mark: a guest store to a page that is already dirty makes a mark that only reads the
 * page's bit (no fence of its own under {@code membarrier}); a migration that snapshots and clears the bit and then
 * copies the page must have the store in its copy, or find the page dirty again afterwards. This is what the
 * asymmetric fence ({@code AsymmetricFence.heavy()} after every take that took a bit) is for: without it the store
 * can still sit in the vCPU's store buffer when the copy reads the page, while its mark read the bit before the swap
 * and so set nothing. The result is (the copy holds the store, the page is dirty after the take).
 */
@JCStressTest
@Description("A guest store to a dirty page races a migration's snapshot-and-clear followed by its copy of the page.")
@Outcome(id = "false, false", expect = FORBIDDEN, desc = "The store is lost: not in the copy, and the page is clean.")
@Outcome(id = "true, false", expect = ACCEPTABLE, desc = "The store came first: the copy holds it.")
@Outcome(id = "true, true", expect = ACCEPTABLE, desc = "The copy holds the store, and its mark came after the swap.")
@Outcome(id = "false, true", expect = ACCEPTABLE_INTERESTING, desc = "The take came first: the page is dirty again.")
@State
public class DirtyStoreVsSnapshot {
    private static final DirtyRig RIG = DirtyRig.INSTANCE;

    private final long ticket = RIG.slots.claim();
    private final long addr = DirtyRig.address(Slots.slot(ticket));
    private final DirtySnapshot snapshot = new DirtySnapshot();

    /** Starts the slot's page dirty, holding 0. */
    public DirtyStoreVsSnapshot() {
        reset();
    }

    private void reset() {
        RIG.writeUnlogged(addr, 0);
        RIG.markDirty(addr);
    }

    /** The vCPU: a guest store of 1 through the address space; its mark finds the bit set and only reads it. */
    @Actor
    public void vcpu() {
        RIG.as.stqLe(addr, 1, MemTxAttrs.UNSPECIFIED);
    }

    /** The migration: snapshot and clear the page's bits (the page was dirty), then copy the page. */
    @Actor
    public void migration(ZZ_Result r) {
        if (!RIG.take(addr, snapshot)) {
            throw new IllegalStateException("addr=0x" + Long.toHexString(addr) + ": the page was not dirty");
        }
        r.r1 = RIG.read(addr) == 1;
    }

    /** Whether the page is dirty again after the take; then starts the next trial. */
    @Arbiter
    public void after(ZZ_Result r) {
        RIG.slots.check(ticket);
        r.r2 = RIG.take(addr, snapshot);
        reset();
    }
}
