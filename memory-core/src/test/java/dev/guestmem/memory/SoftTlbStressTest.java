package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.MmioDispatch;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Readers, each with its own {@link SoftTlb}, load, fetch and store while a writer publishes new maps continuously.
 * Every access of a reader must be one of a map version that was current while the access ran: no stale translation
 * survives a commit.
 *
 * <p>Map version j (j = 0, 1, 2, ..., one transaction each; k = j mod 4):
 * <ul>
 *   <li>0x0000 and 0x1000: RAM {@code lo-k} and {@code hi-k}, every byte k + 1;</li>
 *   <li>0x2000: for even k a device {@code dev-k} reading k + 1 in every byte, for odd k a hole;</li>
 *   <li>0x3000: the <em>clock</em>, a one-page alias into a RAM of consecutive 64-bit numbers, at offset
 *   {@code 8 * (j mod N)}, so the 8 bytes at 0x3000 read {@code j mod N} (N = {@value #CLOCK_VALUES});</li>
 *   <li>0x10000: for even j a scratch RAM, for odd j a read-only alias of the same RAM, so that a CPU store is
 *   written for even j and discarded with DECODE_ERROR for odd j.</li>
 * </ul>
 *
 * <p>Each reader, in a loop: reads the clock through the address space ({@code c0}), then through its TLB
 * ({@code t0}), loads from lo, hi and the device, fetches from lo, stores a new sequence number into its scratch slot
 * and loads the slot back, all through the TLB, reads the clock through the TLB again ({@code t1}) and through the
 * address space ({@code c1}). The accesses come in batches, repeated until the reader sees (through the address
 * space) that a commit landed and then four batches more; the writer, in turn, commits as soon as a reader is inside
 * a round (or after a millisecond), so that most rounds span exactly one commit even on a machine too busy to run
 * every thread at once. Accesses happen in program order and each one uses a view current when it began, so
 * every access between {@code t0} and {@code t1} must belong to a version in {@code [t0, t1]}, which must lie in
 * {@code [c0, c1]}.
 *
 * <p>Forbidden outcomes: a value that is no version's (a torn or mixed value, bytes of two k); the clock going
 * backwards within a reader (t0 &lt; c0, t1 &lt; t0, c1 &lt; t1, or t0 before the previous round's t1); a load, fetch
 * or store whose version k (or, for the device and the scratch store, its parity) matches no version in
 * {@code [t0, t1]} when that window holds fewer than four versions, which a stale TLB entry used after a commit would
 * produce; a result other than OK except DECODE_ERROR exactly for the hole and the read-only scratch; a discarded store
 * that became visible or a written store that did not; any exception. Required: the writer published more than ten
 * versions, and some readers' rounds spanned a change of version while the window still allowed checking.
 *
 * <p>Runs {@value AccessStressTest#DEFAULT_SECONDS} seconds by default; the soak flag of {@link AccessStressTest}
 * ({@code -Dguestmem.access.stress.seconds=600}) lengthens this test too.
 */
class SoftTlbStressTest {
    private static final long SECONDS = Long.getLong("guestmem.access.stress.seconds",
            AccessStressTest.DEFAULT_SECONDS);
    private static final int VERSIONS = 4;
    private static final int CLOCK_VALUES = 1 << 16;
    private static final long CLOCK = 0x3000;
    private static final long SCRATCH = 0x10000;
    private static final int READERS = 3;
    /** A round's batches of accesses wait this long at most for a commit. */
    private static final int MAX_BATCHES = 2000;
    /** Batches a round still makes after it saw a commit. */
    private static final int BATCHES_AFTER_A_COMMIT = 4;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @Test
    void everyTlbAccessBelongsToAVersionCurrentWhileItRan() throws Exception {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion[] lo = new MemoryRegion[VERSIONS];
        MemoryRegion[] hi = new MemoryRegion[VERSIONS];
        MemoryRegion[] dev = new MemoryRegion[VERSIONS];
        for (int k = 0; k < VERSIONS; k++) {
            lo[k] = system.ram("lo-" + k, 0x1000);
            hi[k] = system.ram("hi-" + k, 0x1000);
            lo[k].ramSegment().fill((byte) (k + 1));
            hi[k].ramSegment().fill((byte) (k + 1));
            long pattern = (k + 1) * 0x0101_0101_0101_0101L;
            dev[k] = system.io("dev-" + k, 0x1000, MemoryRegionOps.builder()
                    .read((addr, size) -> pattern & MmioDispatch.mask(size))
                    .build());
        }
        MemoryRegion clockRam = system.ram("clock-ram", 8L * CLOCK_VALUES + 0x1000);
        for (int i = 0; i < CLOCK_VALUES; i++) {
            clockRam.ramSegment().setAtIndex(ValueLayout.JAVA_LONG, i, i);
        }
        MemoryRegion clock = system.alias("clock", clockRam, 0, 0x1000);
        MemoryRegion scratch = system.ram("scratch", 0x1000);
        MemoryRegion scratchRo = system.alias("scratch-ro", scratch, 0, 0x1000);
        scratchRo.setReadonly(true);
        system.transaction(() -> {
            root.addSubregion(0x0000, lo[0]);
            root.addSubregion(0x1000, hi[0]);
            root.addSubregion(0x2000, dev[0]);
            root.addSubregion(CLOCK, clock);
            root.addSubregion(SCRATCH, scratch);
        });
        AddressSpace as = system.addressSpace("as", root);

        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicLong published = new AtomicLong();
        AtomicLong armed = new AtomicLong();
        long[] rounds = new long[READERS];
        long[] checkedAcrossChange = new long[READERS];
        long[] lastWritten = new long[READERS];

        List<Thread> threads = new ArrayList<>();
        for (int id = 0; id < READERS; id++) {
            int me = id;
            threads.add(Thread.ofPlatform().name("tlb-reader-" + id).unstarted(() -> {
                try {
                    Reader reader = new Reader(as, new SoftTlb(as, 64, U), SCRATCH + 8L * me, armed);
                    while (!stop.get()) {
                        if (reader.round()) {
                            checkedAcrossChange[me]++;
                        }
                        rounds[me]++;
                    }
                    lastWritten[me] = reader.written;
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                    stop.set(true);
                }
            }));
        }
        Thread writer = Thread.ofPlatform().name("tlb-writer").unstarted(() -> {
            try {
                long j = 0;
                while (!stop.get()) {
                    // Commit while a reader is inside a round if one gets there within a millisecond; on a busy
                    // machine the threads would otherwise rarely run at the same time.
                    long seen = armed.get();
                    long until = System.nanoTime() + 1_000_000;
                    while (armed.get() == seen && System.nanoTime() < until && !stop.get()) {
                        Thread.onSpinWait();
                    }
                    int from = (int) (j % VERSIONS);
                    long next = j + 1;
                    int to = (int) (next % VERSIONS);
                    system.transaction(() -> {
                        root.delSubregion(lo[from]);
                        root.delSubregion(hi[from]);
                        if (from % 2 == 0) {
                            root.delSubregion(dev[from]);
                        }
                        root.addSubregion(0x0000, lo[to]);
                        root.addSubregion(0x1000, hi[to]);
                        if (to % 2 == 0) {
                            root.addSubregion(0x2000, dev[to]);
                        }
                        clock.setAliasOffset(8 * (next % CLOCK_VALUES));
                        root.delSubregion(next % 2 == 0 ? scratchRo : scratch);
                        root.addSubregion(SCRATCH, next % 2 == 0 ? scratch : scratchRo);
                    });
                    j = next;
                    published.incrementAndGet();
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                stop.set(true);
            }
        });
        threads.forEach(Thread::start);
        writer.start();
        long deadline = System.nanoTime() + SECONDS * 1_000_000_000L;
        while (!stop.get() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        stop.set(true);
        writer.join();
        for (Thread t : threads) {
            t.join();
        }
        if (failure.get() != null) {
            throw new AssertionError("forbidden outcome", failure.get());
        }
        long total = 0;
        long checked = 0;
        for (int id = 0; id < READERS; id++) {
            assertEquals(lastWritten[id], scratch.ramSegment().get(ValueLayout.JAVA_LONG, 8L * id),
                    "reader " + id + "'s last written store");
            assertTrue(rounds[id] > 0, "reader " + id + " made no rounds");
            total += rounds[id];
            checked += checkedAcrossChange[id];
        }
        System.out.printf("SoftTlbStressTest: %d s, %d maps published, %d reader rounds (%d readers), %d checked "
                + "across a change of version%n", SECONDS, published.get(), total, READERS, checked);
        assertTrue(published.get() > 10, "published=" + published.get());
        assertTrue(checked > 0, "no round spanned a change of version in a checkable window");
    }

    /** One reader's state and checks; see the class comment. */
    private static final class Reader {
        private final AtomicLong armed;
        private final AddressSpace as;
        private final SoftTlb tlb;
        private final long slot;
        private final int[] r = new int[1];
        private long previousT1 = -1;
        private long seq;
        /** The last sequence number whose store was written (OK), 0 before any. */
        long written;

        Reader(AddressSpace as, SoftTlb tlb, long slot, AtomicLong armed) {
            this.armed = armed;
            this.as = as;
            this.tlb = tlb;
            this.slot = slot;
        }

        /** One round; true when it spanned a change of version with fewer than four versions in its window. */
        boolean round() {
            long c0 = clockThroughAddressSpace();
            long t0 = clockThroughTlb();
            // Bit k: some access saw version k (RAM), or parity k (0 even, 1 odd) for the device and scratch store.
            int ramSeen = 0;
            int deviceSeen = 0;
            int storeSeen = 0;
            // Batches until a commit lands (or a bound), then a few more: most rounds span exactly one commit, and
            // the batches after it are where a stale entry would show.
            int after = -1;
            for (int batch = 0; batch < MAX_BATCHES && after < BATCHES_AFTER_A_COMMIT; batch++) {
                for (int rep = 0; rep < 8; rep++) {
                    ramSeen |= 1 << markOf(tlb.ldqLe(0x0800 + 8 * rep), "lo");
                    ramSeen |= 1 << markOf(tlb.ldqBe(0x1ff8 - 8 * rep), "hi");
                    ramSeen |= 1 << markOf(tlb.ldlCode(0x0900 + 4 * rep) & 0xffff_ffffL | 0x1_0000_0000L, "fetch");
                    deviceSeen |= 1 << deviceParity(tlb.ldlLe(0x2800 + 4 * rep), tlb.takeResult());
                    storeSeen |= 1 << storeAndLoad();
                }
                if (batch == 1) {
                    armed.incrementAndGet();
                }
                if (after >= 0) {
                    after++;
                } else if (clockThroughAddressSpace() != c0) {
                    after = 0;
                }
            }
            long t1 = clockThroughTlb();
            long c1 = clockThroughCaughtUpAddressSpace();

            // The clock never goes backwards in this thread.
            long window = ahead(c0, c1, "c0", "c1");
            ahead(c0, t0, "c0", "t0");
            long span = ahead(t0, t1, "t0", "t1");
            ahead(t1, c1, "t1", "c1");
            if (previousT1 >= 0) {
                ahead(previousT1, t0, "previous t1", "t0");
            }
            previousT1 = t1;
            if (window >= CLOCK_VALUES / 2) {
                throw new AssertionError("clock went backwards: c0=" + c0 + " c1=" + c1);
            }
            if (span < VERSIONS - 1) {
                int ramAllowed = 0;
                int parityAllowed = 0;
                for (long i = 0; i <= span; i++) {
                    ramAllowed |= 1 << (int) ((t0 + i) % VERSIONS);
                    parityAllowed |= 1 << (int) ((t0 + i) % 2);
                }
                String where = " in versions [" + t0 + ", " + t1 + "]";
                require(ramSeen, ramAllowed, "RAM or fetch saw k in " + Integer.toBinaryString(ramSeen) + where);
                require(deviceSeen, parityAllowed, "device saw parities " + Integer.toBinaryString(deviceSeen) + where);
                require(storeSeen, parityAllowed, "scratch stores saw parities " + Integer.toBinaryString(storeSeen)
                        + where);
            }
            return span > 0 && span < VERSIONS - 1;
        }

        /** The device's bytes for even k (0), the hole for odd k (1). */
        private int deviceParity(int v, int result) {
            if (v == 0) {
                if (result != MemTxResult.DECODE_ERROR) {
                    throw new AssertionError("hole read 0 with " + MemTxResult.toString(result));
                }
                return 1;
            }
            int k = markOf(v & 0xffff_ffffL | 0x1_0000_0000L, "device");
            if (k % 2 != 0 || result != MemTxResult.OK) {
                throw new AssertionError("device bytes of k=" + k + " result=" + MemTxResult.toString(result));
            }
            return 0;
        }

        /** A new sequence number stored into the slot, then loaded back: 0 when written (even), 1 when discarded. */
        private int storeAndLoad() {
            seq++;
            tlb.stqLe(slot, seq);
            int sr = tlb.takeResult();
            int parity;
            if (sr == MemTxResult.OK) {
                written = seq;
                parity = 0;
            } else if (sr == MemTxResult.DECODE_ERROR) {
                parity = 1;
            } else {
                throw new AssertionError("scratch store result=" + MemTxResult.toString(sr));
            }
            long back = tlb.ldqLe(slot);
            expectOk("scratch load");
            if (back != written) {
                throw new AssertionError("scratch slot reads " + back + " but the last written store was " + written
                        + " (seq=" + seq + ", this store " + MemTxResult.toString(sr) + ")");
            }
            return parity;
        }

        private static void require(int seen, int allowed, String what) {
            if ((seen & ~allowed) != 0) {
                throw new AssertionError("stale or future translation: " + what);
            }
        }

        private long clockThroughAddressSpace() {
            long c = as.ldqLe(CLOCK, U, r);
            if (r[0] != MemTxResult.OK) {
                throw new AssertionError("clock through the address space: " + MemTxResult.toString(r[0]));
            }
            return c;
        }

        /**
         * The clock through the address space once its dispatch has caught up with its view. A commit publishes the
         * view, then its dispatch; the TLB checks the view, while the address space's access path reads the
         * dispatch, which may still be the one before for an instant. Reading after both agree makes c1 come from a
         * map no older than the one the TLB's last access used.
         */
        private long clockThroughCaughtUpAddressSpace() {
            HostTlbStressTest.awaitDispatchOfView(as);
            return clockThroughAddressSpace();
        }

        private long clockThroughTlb() {
            long c = tlb.ldqLe(CLOCK);
            expectOk("clock through the TLB");
            if (c < 0 || c >= CLOCK_VALUES) {
                throw new AssertionError("clock=" + c);
            }
            return c;
        }

        private void expectOk(String what) {
            int res = tlb.takeResult();
            if (res != MemTxResult.OK) {
                throw new AssertionError(what + ": " + MemTxResult.toString(res));
            }
        }

        /**
         * The k of a RAM value whose every byte is k + 1 (a 32-bit value arrives with bit 32 set so that the upper
         * half is not read as bytes).
         */
        private int markOf(long v, String what) {
            expectOk(what);
            int width = (v >>> 32) == 1 ? 4 : 8;
            int mark = (int) (v & 0xff);
            if (mark < 1 || mark > VERSIONS) {
                throw new AssertionError(what + ": " + Long.toHexString(v) + " is no version's");
            }
            for (int i = 1; i < width; i++) {
                if ((int) ((v >>> (8 * i)) & 0xff) != mark) {
                    throw new AssertionError(what + ": " + Long.toHexString(v) + " mixes versions");
                }
            }
            return mark - 1;
        }

        /** How far {@code later} is ahead of {@code earlier} on the clock; throws if it is behind. */
        private static long ahead(long earlier, long later, String e, String l) {
            long d = Math.floorMod(later - earlier, CLOCK_VALUES);
            if (d >= CLOCK_VALUES / 2) {
                throw new AssertionError("clock went backwards: " + e + "=" + earlier + " " + l + "=" + later);
            }
            return d;
        }
    }
}
