package dev.guestmem.offheap;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.CodeProtection;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.Rcu;
import dev.guestmem.memory.SoftTlb;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongSupplier;
import java.util.function.LongUnaryOperator;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The soft TLBs' fills of RAM that CODE logs (a JIT emulator's RAM), step by step, with the fence this JVM installed:
 * with {@code membarrier} such a fill takes no entry lock and reads the page's CODE bit after writing the entry, with
 * the fallback it fills under the lock (memory-offheap's tests run with both). Either way: a store to protected code
 * is reported and lands in its page, a store to code-free RAM is not reported and its page's entry goes fast (the
 * next store hits), a protect reaches a cached fast entry, a one-entry TLB switching between a protected and an
 * unprotected page never stores into the other one, and a store after a load refilled the entry is reported.
 */
class TlbCodeFillTest {
    private static final long PAGE = 4096;
    private static final long BASE = 0x10_0000;
    private static final long P = 2 * PAGE;
    private static final long Q = 5 * PAGE;

    /** A guest's 8-byte store through a TLB. */
    @FunctionalInterface
    private interface Store {
        void stqLe(long addr, long value);
    }

    @ParameterizedTest
    @ValueSource(strings = {"SoftTlb", "HostTlb"})
    void fillsOfCodeRamReportProtectedPagesAndKeepTheRestFast(String kind) {
        final MemorySystem system = new MemorySystem();
        final MemoryRegion ram = system.ram("ram", 16 * PAGE);
        final MemoryRegion root = system.container("system", 1L << 32);
        ram.setLog(true, DirtyMemoryClient.CODE);
        root.addSubregion(BASE, ram);
        final AddressSpace as = system.addressSpace("memory", root);
        final long ramAddr = ram.ramBlock().offset();
        final CodeProtection code = CodeProtection.of(system);
        final List<String> reports = new ArrayList<>();
        code.addListener((a, n) -> reports.add(Long.toHexString(a - ramAddr) + "+" + n));
        code.protect(ramAddr + P, PAGE);
        if (kind.equals("HostTlb")) {
            try (Rcu.Reader reader = system.rcu().register()) {
                final HostTlb tlb = new HostTlb(as, reader, MemTxAttrs.UNSPECIFIED, 1, 1);
                tlb.begin();
                try {
                    steps(ram.ramSegment(), code, ramAddr, reports, tlb::stqLe, tlb::ldqLe, tlb::missCount);
                } finally {
                    tlb.end();
                }
            }
        } else {
            final SoftTlb tlb = new SoftTlb(as, 1, MemTxAttrs.UNSPECIFIED);
            steps(ram.ramSegment(), code, ramAddr, reports, tlb::stqLe, tlb::ldqLe, tlb::missCount);
        }
    }

    /** The steps, through a TLB of one entry: page P (offset 2 pages) is protected code, page Q (5) is not. */
    private static void steps(MemorySegment bytes, CodeProtection code, long ramAddr, List<String> reports, Store tlb,
                              LongUnaryOperator load, LongSupplier missCount) {
        tlb.stqLe(BASE + Q, 1);
        assertEquals(List.of(), reports, "a store to code-free RAM");
        tlb.stqLe(BASE + P + 8, 2);
        assertEquals(List.of("2008+8"), reports, "a store that refilled the entry with protected code");
        tlb.stqLe(BASE + Q + 16, 3);
        tlb.stqLe(BASE + P + 24, 4);
        tlb.stqLe(BASE + P + 32, 5); // a hit on the entry, NOTDIRTY: reported again
        assertEquals(List.of("2008+8", "2018+8", "2020+8"), reports, "stores to protected code, each reported");
        assertEquals(3, word(bytes, Q + 16), "the store to Q after the entry held P");
        assertEquals(0, word(bytes, P + 16), "P's bytes where Q's store went");
        assertEquals(4, word(bytes, P + 24), "the store to P after the entry held Q");
        assertEquals(0, word(bytes, Q + 24), "Q's bytes where P's store went");
        assertEquals(5, word(bytes, P + 32), "the store through the NOTDIRTY entry of P");

        tlb.stqLe(BASE + Q + 40, 6);
        final long misses = missCount.getAsLong();
        tlb.stqLe(BASE + Q + 48, 7);
        assertEquals(misses, missCount.getAsLong(), "a store to code-free RAM just cached: a hit");
        code.protect(ramAddr + Q, PAGE);
        tlb.stqLe(BASE + Q + 56, 8);
        assertEquals("5038+8", reports.getLast(), "a store after protect reached the cached fast entry");
        code.unprotect(ramAddr + Q, PAGE);
        reports.clear();
        tlb.stqLe(BASE + Q + 64, 9); // slow once: finds the page unprotected and drops NOTDIRTY
        final long before = missCount.getAsLong();
        tlb.stqLe(BASE + Q + 72, 10);
        assertEquals(before, missCount.getAsLong(), "the entry fast again once unprotected and stored to");
        assertEquals(List.of(), reports, "stores after unprotect");
        assertEquals(8, word(bytes, Q + 56));
        assertEquals(10, word(bytes, Q + 72));

        // A load refills the entry with protected code (a HostTlb fills its read part alone): the next store is
        // still reported.
        assertEquals(2, load.applyAsLong(BASE + P + 8), "a load from protected code");
        tlb.stqLe(BASE + P + 40, 11);
        assertEquals(List.of("2028+8"), reports, "a store after a load refilled the entry with protected code");
        assertEquals(11, word(bytes, P + 40));
    }

    private static long word(MemorySegment bytes, long offset) {
        return bytes.get(ValueLayout.JAVA_LONG_UNALIGNED, offset);
    }
}
