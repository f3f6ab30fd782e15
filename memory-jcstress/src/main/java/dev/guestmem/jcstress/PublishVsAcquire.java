package dev.guestmem.jcstress;

import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE_INTERESTING;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.J_Result;

/**
 * Claim 2: a view's publish (the release store at the end of a commit, QEMU's {@code qatomic_rcu_set} of the
 * address space's current map) against a reader's acquire load of the view. Slot {@code k} is guest-physical page
 * {@code k}, where one of two RAM regions is mapped: the mapped one holds {@value #OLD}, the other {@value #STALE}. The
 * writer stores {@value #NEW} into the unmapped one through its segment (plain stores) and then maps it in place of the
 * other in one transaction. The reader loads the word through the address space until it sees something other than
 * {@value #OLD} (a bounded while), so it reads just as the new view appears. Seeing the new view must mean seeing what
 * was written before its publication. The result is the word the reader saw last.
 */
@JCStressTest
@Description("A writer fills a RAM region and maps it in one commit while a reader loads from its address.")
@Outcome(id = "0", expect = FORBIDDEN, desc = "The reader saw the new view but not the data written before its publish.")
@Outcome(id = "2", expect = ACCEPTABLE_INTERESTING, desc = "The reader saw the new view and its data.")
@Outcome(id = "1", expect = ACCEPTABLE, desc = "The reader gave up waiting and saw the old view.")
@State
public class PublishVsAcquire {
    static final long STALE = 0;
    static final long OLD = 1;
    static final long NEW = 2;
    private static final long PAGE = 4096;
    /** Loads before the reader settles for the old view: longer than a commit takes, bounded in any case. */
    private static final int SPINS = 20_000;

    private static final Slots SLOTS = new Slots();
    private static final MemorySystem SYSTEM = new MemorySystem();
    private static final MemoryRegion ROOT = SYSTEM.container("root", U64.SIZE_2_64);
    private static final AddressSpace AS = SYSTEM.addressSpace("memory", ROOT);
    /** Per slot, its two regions; {@code MAPPED[k]} is the index of the one mapped now. */
    private static final MemoryRegion[][] REGIONS = new MemoryRegion[Slots.COUNT][2];
    private static final int[] MAPPED = new int[Slots.COUNT];

    static {
        SYSTEM.transaction(() -> {
            for (int k = 0; k < Slots.COUNT; k++) {
                REGIONS[k][0] = SYSTEM.ram("a" + k, PAGE);
                REGIONS[k][1] = SYSTEM.ram("b" + k, PAGE);
                ROOT.addSubregion(k * PAGE, REGIONS[k][0]);
            }
        });
    }

    private final long ticket = SLOTS.claim();
    private final int slot = Slots.slot(ticket);
    private final long addr = slot * PAGE;

    /** Fills the slot's regions: the mapped one with {@value #OLD}, the other with {@value #STALE}. */
    public PublishVsAcquire() {
        reset();
    }

    private void reset() {
        REGIONS[slot][MAPPED[slot]].ramSegment().set(JAVA_LONG_UNALIGNED, 0, OLD);
        REGIONS[slot][1 - MAPPED[slot]].ramSegment().set(JAVA_LONG_UNALIGNED, 0, STALE);
    }

    /** The writer: fills the unmapped region, then maps it in place of the mapped one (the commit publishes). */
    @Actor
    public void writer() {
        MemoryRegion current = REGIONS[slot][MAPPED[slot]];
        MemoryRegion next = REGIONS[slot][1 - MAPPED[slot]];
        next.ramSegment().set(JAVA_LONG_UNALIGNED, 0, NEW);
        SYSTEM.transaction(() -> {
            ROOT.delSubregion(current);
            ROOT.addSubregion(addr, next);
        });
        MAPPED[slot] = 1 - MAPPED[slot];
    }

    /** The reader: loads the word through the address space until it changes, a bounded number of times. */
    @Actor
    public void reader(J_Result r) {
        long seen = AS.ldqLe(addr, MemTxAttrs.UNSPECIFIED, null);
        for (int i = 0; i < SPINS && seen == OLD; i++) {
            seen = AS.ldqLe(addr, MemTxAttrs.UNSPECIFIED, null);
        }
        r.r1 = seen;
    }

    /** Starts the next trial (the writer's region is now the mapped one). */
    @Arbiter
    public void after(J_Result r) {
        SLOTS.check(ticket);
        reset();
    }
}
