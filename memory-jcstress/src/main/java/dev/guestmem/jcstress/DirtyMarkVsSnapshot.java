package dev.guestmem.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE_INTERESTING;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.guestmem.memory.DirtySnapshot;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.ZZ_Result;

/**
 * Claim 3, the mark: a dirty mark racing {@code DirtyBitmap.snapshotAndClear} (QEMU's
 * {@code cpu_physical_memory_snapshot_and_clear_dirty}) on a page that starts clean is taken exactly once: by that
 * snapshot or by the next one (here the arbiter's), never by neither and never by both. The vCPU stores through its
 * {@code SoftTlb}, whose write entry for the page, once a store marked it, stores on the fast path without marking
 * (QEMU's {@code TLB_NOTDIRTY}) until a take advances the dirty epoch; so each trial's mark also shows that the
 * previous trial's takes re-armed the entry. The result is (in the racing snapshot, in the arbiter's snapshot after
 * it).
 */
@JCStressTest
@Description("A guest store marks a clean page dirty while a migration snapshots and clears the page's bits.")
@Outcome(id = "false, false", expect = FORBIDDEN, desc = "The mark is lost: in neither the snapshot nor the bitmap after it.")
@Outcome(id = "true, true", expect = FORBIDDEN, desc = "The mark is taken twice: in the snapshot and still in the bitmap.")
@Outcome(id = "true, false", expect = ACCEPTABLE, desc = "The mark came first: the snapshot took it.")
@Outcome(id = "false, true", expect = ACCEPTABLE_INTERESTING, desc = "The snapshot came first: the mark waits for the next.")
@State
public class DirtyMarkVsSnapshot {
    private static final DirtyRig RIG = DirtyRig.INSTANCE;

    private final long ticket = RIG.slots.claim();
    private final long addr = DirtyRig.address(Slots.slot(ticket));
    private final DirtySnapshot snapshot = new DirtySnapshot();

    /** Starts the slot's page clean. */
    public DirtyMarkVsSnapshot() {
        RIG.take(addr, snapshot);
    }

    /** The vCPU: a guest store through its soft TLB, which marks the page (plain store, then the mark). */
    @Actor
    public void vcpu() {
        RIG.tlb().stqLe(addr, 1);
    }

    /** The migration: snapshot and clear the page's bits. */
    @Actor
    public void migration(ZZ_Result r) {
        r.r1 = RIG.take(addr, snapshot);
    }

    /** The next snapshot, which also leaves the page clean for the next trial. */
    @Arbiter
    public void after(ZZ_Result r) {
        RIG.slots.check(ticket);
        r.r2 = RIG.take(addr, snapshot);
    }
}
