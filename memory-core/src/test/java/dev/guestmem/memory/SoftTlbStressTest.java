package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Readers, each with its own {@link SoftTlb}, load, fetch and store while a writer publishes new maps continuously.
 * Every access of a reader must be one of a map version that was current while the access ran: no stale translation
 * survives a commit.
 *
 * <p>The map is {@link VersionedMap}'s with its clock, the same RAM regions {@code lo-k} and {@code hi-k} for every
 * version of the same k: version j (one transaction each; k = j mod 4) has RAM whose every byte is k + 1 at 0x0000
 * and 0x1000, a device reading k + 1 at 0x2000 for even k and a hole for odd k, the clock at 0x3000 reading
 * {@code j mod N}, and at 0x10000 scratch RAM for even j and a read-only alias of it for odd j.
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
 * <p>Runs {@value VersionedMap#DEFAULT_SECONDS} seconds by default; {@code -Dguestmem.access.stress.seconds=600}
 * soaks.
 */
class SoftTlbStressTest {
    private static final int READERS = 3;
    /** A round's batches of accesses wait this long at most for a commit. */
    private static final int MAX_BATCHES = 2000;
    /** Batches a round still makes after it saw a commit. */
    private static final int BATCHES_AFTER_A_COMMIT = 4;
    private static final int VERSIONS = VersionedMap.VERSIONS;

    @Test
    void everyTlbAccessBelongsToAVersionCurrentWhileItRan() throws Exception {
        VersionedMap map = new VersionedMap(true, false);
        long[] rounds = new long[READERS];
        long[] checkedAcrossChange = new long[READERS];
        long[] lastWritten = new long[READERS];
        map.run("tlb-reader", "tlb-writer", READERS, true, (me, stop) -> {
            // No discipline: the checked TLB checks the view on every access.
            Reader reader = new Reader(map, TlbAccess.of(new SoftTlb(map.as, 64, MemTxAttrs.UNSPECIFIED)), me);
            while (!stop.get()) {
                if (reader.round()) {
                    checkedAcrossChange[me]++;
                }
                rounds[me]++;
            }
            lastWritten[me] = reader.written;
        });
        long total = map.checkThreads("reader", lastWritten, rounds);
        long checked = Arrays.stream(checkedAcrossChange).sum();
        System.out.printf("SoftTlbStressTest: %d s, %d maps published, %d reader rounds (%d readers), %d checked "
                + "across a change of version%n", VersionedMap.SECONDS, map.published(), total, READERS, checked);
        assertTrue(map.published() > 10, "published=" + map.published());
        assertTrue(checked > 0, "no round spanned a change of version in a checkable window");
    }

    /** One reader's rounds; see the class comment. */
    private static final class Reader extends TlbStressThread {
        private long previousT1 = -1;

        Reader(VersionedMap map, TlbAccess tlb, int id) {
            super(map, tlb, id);
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
                    ramSeen |= 1 << fetchMark(0x0900 + 4 * rep);
                    deviceSeen |= 1 << deviceParity(tlb.ldlLe(0x2800 + 4 * rep), tlb.takeResult());
                    storeSeen |= 1 << storeAndLoad();
                }
                if (batch == 1) {
                    map.armed.incrementAndGet();
                }
                if (after >= 0) {
                    after++;
                } else if (clockThroughAddressSpace() != c0) {
                    after = 0;
                }
            }
            long t1 = clockThroughTlb();
            long c1 = clockThroughAddressSpace();

            // The clock never goes backwards in this thread.
            long window = ahead(c0, c1, "c0", "c1");
            ahead(c0, t0, "c0", "t0");
            long span = ahead(t0, t1, "t0", "t1");
            ahead(t1, c1, "t1", "c1");
            if (previousT1 >= 0) {
                ahead(previousT1, t0, "previous t1", "t0");
            }
            previousT1 = t1;
            if (window >= VersionedMap.CLOCK_VALUES / 2) {
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

        private static void require(int seen, int allowed, String what) {
            if ((seen & ~allowed) != 0) {
                throw new AssertionError("stale or future translation: " + what);
            }
        }

        /** How far {@code later} is ahead of {@code earlier} on the clock; throws if it is behind. */
        private static long ahead(long earlier, long later, String e, String l) {
            long d = distance(earlier, later);
            if (d >= VersionedMap.CLOCK_VALUES / 2) {
                throw new AssertionError("clock went backwards: " + e + "=" + earlier + " " + l + "=" + later);
            }
            return d;
        }
    }
}
