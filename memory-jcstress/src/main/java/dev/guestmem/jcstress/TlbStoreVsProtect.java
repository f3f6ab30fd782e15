package dev.guestmem.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE_INTERESTING;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.SoftTlb;
import dev.guestmem.memory.U64;
import java.util.concurrent.atomic.AtomicIntegerArray;
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
    private static final long PAGE = 4096;
    /** Flag polls before the vCPU stores anyway: long enough for a protect to finish, bounded in any case. */
    private static final int SPINS = 20_000;

    private static final Slots SLOTS = new Slots();
    private static final MemorySystem SYSTEM = new MemorySystem();
    private static final MemoryRegion RAM = SYSTEM.ram("ram", Slots.COUNT * PAGE);
    private static final AddressSpace AS;
    private static final CodeProtection CODE = CodeProtection.of(SYSTEM);
    private static final long RAM_ADDR0;
    /** Per slot: 1 once a store at offset 8 of its page was reported. */
    private static final AtomicIntegerArray REPORTED = new AtomicIntegerArray(Slots.COUNT);
    /** Each vCPU thread's TLB, as each QEMU vCPU has its own. */
    private static final ThreadLocal<SoftTlb> TLB;

    static {
        DirtyRig.checkFence(); // where membarrier is installed, the TLB refills CODE-logged pages without its lock
        MemoryRegion root = SYSTEM.container("root", U64.SIZE_2_64);
        RAM.setLog(true, DirtyMemoryClient.CODE);
        root.addSubregion(0, RAM);
        AS = SYSTEM.addressSpace("memory", root);
        RAM_ADDR0 = RAM.ramBlock().offset();
        TLB = ThreadLocal.withInitial(() -> new SoftTlb(AS));
        // Only the second store of a trial (at offset 8) counts; the first may be reported or not.
        CODE.addListener((ramAddr, length) -> {
            long offset = ramAddr - RAM_ADDR0;
            if ((offset & (PAGE - 1)) == 8) {
                REPORTED.set((int) (offset / PAGE), 1);
            }
        });
    }

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
        CODE.unprotect(RAM_ADDR0 + addr, PAGE);
        REPORTED.set(slot, 0);
    }

    /** The vCPU: a store that caches the write entry, a bounded wait for the flag, and the store under test. */
    @Actor
    public void vcpu(ZZ_Result r) {
        SoftTlb tlb = TLB.get();
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
        CODE.protect(RAM_ADDR0 + addr, PAGE);
        isProtected = true;
    }

    /** Whether the store under test was reported; then starts the next trial. */
    @Arbiter
    public void after(ZZ_Result r) {
        SLOTS.check(ticket);
        r.r2 = REPORTED.get(slot) == 1;
        reset();
    }
}
