package dev.guestmem.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE_INTERESTING;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.SoftTlb;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.ZZ_Result;

/**
 * Claim 1: a store through a {@link SoftTlb} that begins after {@link CodeProtection#protect} returned is reported to
 * the code-protection listeners (QEMU's {@code tlb_protect_code} against a vCPU's {@code notdirty_write}), although
 * the TLB held a fast write entry for the page when protect began. The protector protects the slot's page and then
 * sets a volatile flag; the vCPU stores once to cache the page's write entry (fast unless protect came first), waits
 * a bounded while for the flag, and stores again. The result is (the vCPU saw the flag before its second store, that
 * store was reported).
 */
@JCStressTest
@Description("A vCPU stores through its soft TLB while another thread protects the page for translated code.")
@Outcome(id = "true, false", expect = FORBIDDEN, desc = "A store that began after protect returned was not reported.")
@Outcome(id = "true, true", expect = ACCEPTABLE, desc = "Protect came first; the store was reported.")
@Outcome(id = "false, false", expect = ACCEPTABLE, desc = "The store came before protect finished; not reported.")
@Outcome(id = "false, true", expect = ACCEPTABLE_INTERESTING, desc = "Protect took effect before the flag was seen.")
@State
public class TlbStoreVsProtect {
    private static final long PAGE = CodeRig.PAGE;
    /** Flag polls before the vCPU stores anyway: long enough for a protect to finish, bounded in any case. */
    private static final int SPINS = 20_000;

    private static final Slots SLOTS = new Slots();
    /** One page per slot; only the second store of a trial (at offset 8) counts, the first may be reported or not. */
    private static final CodeRig RIG = new CodeRig(1, 8, 0);

    private final long ticket = SLOTS.claim();
    private final int slot = Slots.slot(ticket);
    private final long addr = slot * PAGE;
    /** Set by the protector once protect returned; jcstress clears it for every trial. */
    private volatile boolean isProtected;

    /** Starts the slot's page unprotected. */
    public TlbStoreVsProtect() {
        reset();
    }

    private void reset() {
        RIG.code.unprotect(RIG.ramAddr0 + addr, PAGE);
        RIG.reported.set(slot, 0);
    }

    /** The vCPU: a store that caches the write entry, a bounded wait for the flag, and the store under test. */
    @Actor
    public void vcpu(ZZ_Result r) {
        SoftTlb tlb = RIG.tlbs.get();
        tlb.stqLe(addr, 1);
        for (int i = 0; i < SPINS && !isProtected; i++) {
            Thread.onSpinWait();
        }
        r.r1 = isProtected;
        tlb.stqLe(addr + 8, 1);
    }

    /** The JIT: protects the page for translated code, then says so. */
    @Actor
    public void protector() {
        RIG.code.protect(RIG.ramAddr0 + addr, PAGE);
        isProtected = true;
    }

    /** Whether the store under test was reported; then starts the next trial. */
    @Arbiter
    public void after(ZZ_Result r) {
        SLOTS.check(ticket);
        r.r2 = RIG.reported.get(slot) == 1;
        reset();
    }
}
