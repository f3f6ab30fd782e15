package dev.guestmem.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE_INTERESTING;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.SoftTlb;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.ZZZ_Result;

/**
 * Claim 2: a TLB refill racing {@link CodeProtection#protect} of the new page neither loses the protect nor mixes the
 * old page's tag with the new page's host address. RAM that CODE logs is a JIT emulator's, and where membarrier is
 * installed (as in these forks) such a refill takes no entry lock: the protect's heavy fence and its visit's
 * compare-and-set of the tag keep it exact. The vCPU's {@link SoftTlb} has one entry, so that the store to page B
 * replaces page A's entry, while the protector protects B. Then the vCPU waits a bounded while for the protector's
 * flag and stores to B again (reported when protect had returned), and to A (which must land in A, not in B). The
 * result is (the vCPU saw the flag before its store to B, that store was reported, A's store landed in A and B's
 * bytes there are untouched).
 */
@JCStressTest
@Description("A vCPU's one-entry soft TLB refills from one code page to another while the new one is protected.")
@Outcome(id = "true, false, .*", expect = FORBIDDEN, desc = "A store that began after protect returned was not reported.")
@Outcome(id = ".*, .*, false", expect = FORBIDDEN, desc = "A store to page A landed somewhere else.")
@Outcome(id = "true, true, true", expect = ACCEPTABLE, desc = "Protect came first; the store was reported.")
@Outcome(id = "false, false, true", expect = ACCEPTABLE, desc = "The store came before protect finished.")
@Outcome(id = "false, true, true", expect = ACCEPTABLE_INTERESTING, desc = "Protect took effect before the flag.")
@State
public class TlbRefillVsProtect {
    private static final long PAGE = CodeRig.PAGE;
    private static final int SPINS = 20_000;
    private static final long MARK = 0x5a5a_5a5a_5a5a_5a5aL;

    private static final Slots SLOTS = new Slots();
    /** Two pages per slot, A then B; a report counts for the store at offset 8 of B. One-entry TLBs. */
    private static final CodeRig RIG = new CodeRig(2, PAGE + 8, 1);
    private static final MemorySegment BYTES = RIG.bytes;

    private final long ticket = SLOTS.claim();
    private final int slot = Slots.slot(ticket);
    private final long pageA = slot * 2 * PAGE;
    private final long pageB = pageA + PAGE;
    private volatile boolean isProtected;

    /** Starts the slot's pages unprotected, their bytes zero. */
    public TlbRefillVsProtect() {
        reset();
    }

    private void reset() {
        RIG.code.unprotect(RIG.ramAddr0 + pageA, 2 * PAGE);
        BYTES.asSlice(pageA, 2 * PAGE).fill((byte) 0);
        RIG.reported.set(slot, 0);
    }

    /** The vCPU: caches A, refills to B, waits a bounded while for the flag, stores to B and to A. */
    @Actor
    public void vcpu(ZZZ_Result r) {
        SoftTlb tlb = RIG.tlbs.get();
        tlb.stqLe(pageA, 1);
        tlb.stqLe(pageB, 1);
        for (int i = 0; i < SPINS && !isProtected; i++) {
            Thread.onSpinWait();
        }
        r.r1 = isProtected;
        tlb.stqLe(pageB + 8, 1);
        tlb.stqLe(pageA + 16, MARK);
    }

    /** The JIT: protects page B for translated code, then says so. */
    @Actor
    public void protector() {
        RIG.code.protect(RIG.ramAddr0 + pageB, PAGE);
        isProtected = true;
    }

    /** Whether B's store was reported and A's store is in A alone; then starts the next trial. */
    @Arbiter
    public void after(ZZZ_Result r) {
        SLOTS.check(ticket);
        r.r2 = RIG.reported.get(slot) == 1;
        r.r3 = BYTES.get(ValueLayout.JAVA_LONG_UNALIGNED, pageA + 16) == MARK
                && BYTES.get(ValueLayout.JAVA_LONG_UNALIGNED, pageB + 16) == 0;
        reset();
    }
}
