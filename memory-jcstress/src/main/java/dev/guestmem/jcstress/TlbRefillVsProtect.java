package dev.guestmem.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE_INTERESTING;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicIntegerArray;
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
    private static final long PAGE = 4096;
    private static final int SPINS = 20_000;
    private static final long MARK = 0x5a5a_5a5a_5a5a_5a5aL;

    private static final Slots SLOTS = new Slots();
    private static final MemorySystem SYSTEM = new MemorySystem();
    private static final MemoryRegion RAM = SYSTEM.ram("ram", Slots.COUNT * 2 * PAGE);
    private static final MemorySegment BYTES = RAM.ramSegment();
    private static final AddressSpace AS;
    private static final CodeProtection CODE = CodeProtection.of(SYSTEM);
    private static final long RAM_ADDR0;
    /** Per slot: 1 once a store at offset 8 of its page B was reported. */
    private static final AtomicIntegerArray REPORTED = new AtomicIntegerArray(Slots.COUNT);
    /** Each vCPU thread's TLB of one entry, so that every store to another page refills it. */
    private static final ThreadLocal<SoftTlb> TLB;

    static {
        DirtyRig.checkFence(); // where membarrier is installed, the TLB refills CODE-logged pages without its lock
        MemoryRegion root = SYSTEM.container("root", U64.SIZE_2_64);
        RAM.setLog(true, DirtyMemoryClient.CODE);
        root.addSubregion(0, RAM);
        AS = SYSTEM.addressSpace("memory", root);
        RAM_ADDR0 = RAM.ramBlock().offset();
        TLB = ThreadLocal.withInitial(() -> new SoftTlb(AS, 1, MemTxAttrs.UNSPECIFIED));
        CODE.addListener((ramAddr, length) -> {
            long offset = ramAddr - RAM_ADDR0;
            if ((offset & (2 * PAGE - 1)) == PAGE + 8) {
                REPORTED.set((int) (offset / (2 * PAGE)), 1);
            }
        });
    }

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
        CODE.unprotect(RAM_ADDR0 + pageA, 2 * PAGE);
        BYTES.asSlice(pageA, 2 * PAGE).fill((byte) 0);
        REPORTED.set(slot, 0);
    }

    /** The vCPU: caches A, refills to B, waits a bounded while for the flag, stores to B and to A. */
    @Actor
    public void vcpu(ZZZ_Result r) {
        SoftTlb tlb = TLB.get();
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
        CODE.protect(RAM_ADDR0 + pageB, PAGE);
        isProtected = true;
    }

    /** Whether B's store was reported and A's store is in A alone; then starts the next trial. */
    @Arbiter
    public void after(ZZZ_Result r) {
        SLOTS.check(ticket);
        r.r2 = REPORTED.get(slot) == 1;
        r.r3 = BYTES.get(ValueLayout.JAVA_LONG_UNALIGNED, pageA + 16) == MARK
                && BYTES.get(ValueLayout.JAVA_LONG_UNALIGNED, pageB + 16) == 0;
        reset();
    }
}
