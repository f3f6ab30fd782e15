package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * vCPU threads, each with its own {@link HostTlb} inside its RCU section, load, fetch and store while a writer
 * publishes new maps continuously and frees the RAM each map drops: {@link VersionedMap}'s map with its clock (that of
 * {@link SoftTlbStressTest}), with fresh RAM for every version.
 *
 * <p>Map version j (k = j mod 4): at 0x0000 and 0x1000 RAM regions made for this version, every byte k + 1 (the
 * writer destroys those of version j - 1 once j is published, so their memory is freed after a grace period); at
 * 0x2000 a device reading k + 1 for even k, a hole for odd k; at 0x3000 the clock, an alias whose 8 bytes read
 * {@code j mod N}; at 0x10000 scratch RAM for even j, a read-only alias of it for odd j (stores discarded with
 * DECODE_ERROR).
 *
 * <p>Each vCPU, in a loop: reads the clock through the address space ({@code c0}), passes a check point, reads it
 * through the address space again ({@code c1}) and through its TLB ({@code t}); then batches of loads from both RAM
 * pages, fetches, device loads, a store of a new sequence number into its scratch slot and a load of it, and the
 * clock through the TLB, until it sees through the address space that a commit landed, and four batches more, in
 * which the map of its check point is already replaced and its RAM queued for freeing.
 *
 * <p>Forbidden outcomes: {@code t} outside {@code [c0, c1]} (a map older than the one current at the check point);
 * within a round any access of another version than {@code t}: a RAM or fetched value whose k is not {@code t mod 4},
 * a device or scratch outcome of the other parity, the TLB's clock moving (a map that was not current at the vCPU's
 * last check point); a value that is no version's (bytes of freed or reused memory); a result other than OK except
 * DECODE_ERROR for the hole and the read-only scratch; a written store not read back; any exception, including the
 * {@code -ea} check of every hit against its block's live segment; a crash. Required: the writer published and freed
 * many versions while vCPUs ran, and rounds saw commits land.
 *
 * <p>Runs {@value VersionedMap#DEFAULT_SECONDS} seconds by default; {@code -Dguestmem.access.stress.seconds=600}
 * soaks.
 */
class HostTlbStressTest {
    private static final int VCPUS = 3;
    private static final int MAX_BATCHES = 2000;
    private static final int BATCHES_AFTER_A_COMMIT = 4;

    @Test
    void everyAccessBetweenCheckPointsUsesTheMapOfTheFirst() throws Exception {
        VersionedMap map = new VersionedMap(true, true);
        long[] rounds = new long[VCPUS];
        long[] sawCommit = new long[VCPUS];
        long[] lastWritten = new long[VCPUS];
        map.run("host-tlb-vcpu", "host-tlb-writer", VCPUS, true, (me, stop) -> {
            // The discipline: every access inside the reader's section, a check point at the start of each round.
            try (Rcu.Reader reader = map.system.rcu().register()) {
                HostTlb tlb = new HostTlb(map.as, reader, MemTxAttrs.UNSPECIFIED, 64, 64);
                Vcpu vcpu = new Vcpu(map, TlbAccess.of(tlb), me);
                tlb.begin();
                try {
                    while (!stop.get()) {
                        if (vcpu.round()) {
                            sawCommit[me]++;
                        }
                        rounds[me]++;
                    }
                } finally {
                    tlb.end();
                }
                lastWritten[me] = vcpu.written;
            }
        });
        map.system.rcu().barrier();
        long freed = map.destroyed.stream().filter(b -> ((AbstractRamBlock) b).isReleased()).count();
        long total = map.checkThreads("vCPU", lastWritten, rounds);
        long commits = Arrays.stream(sawCommit).sum();
        System.out.printf("HostTlbStressTest: %d s, %d maps published, %d blocks freed, %d rounds (%d vCPUs), %d saw "
                + "a commit land%n", VersionedMap.SECONDS, map.published(), freed, total, VCPUS, commits);
        assertTrue(map.published() > 10, "published=" + map.published());
        assertEquals(map.destroyed.size(), freed, "every destroyed block freed after the barrier");
        assertTrue(commits > 0, "no round saw a commit land");
    }

    /** One vCPU's rounds; see the class comment. */
    private static final class Vcpu extends TlbStressThread {
        Vcpu(VersionedMap map, TlbAccess tlb, int id) {
            super(map, tlb, id);
        }

        /** One round from a check point; true when a commit landed during it. */
        boolean round() {
            long c0 = clockThroughAddressSpace();
            tlb.checkpoint();
            long c1 = clockThroughAddressSpace();
            long t = clockThroughTlb();
            if (ahead(c0, t) < 0 || ahead(t, c1) < 0) {
                throw new AssertionError("the TLB's map is not one current at the check point: c0=" + c0 + " t=" + t
                        + " c1=" + c1);
            }
            int k = (int) (t % VersionedMap.VERSIONS);
            int after = -1;
            for (int batch = 0; batch < MAX_BATCHES && after < BATCHES_AFTER_A_COMMIT; batch++) {
                for (int rep = 0; rep < 8; rep++) {
                    expect(k, markOf(tlb.ldqLe(0x0800 + 8 * rep), "lo"), "lo", t);
                    expect(k, markOf(tlb.ldqBe(0x1ff8 - 8 * rep), "hi"), "hi", t);
                    expect(k, fetchMark(0x0900 + 4 * rep), "fetch", t);
                    expect(k % 2, deviceParity(tlb.ldlLe(0x2800 + 4 * rep), tlb.takeResult()), "device", t);
                    expect(k % 2, storeAndLoad(), "scratch store", t);
                }
                if (clockThroughTlb() != t) {
                    throw new AssertionError("the TLB's clock moved between check points: t=" + t);
                }
                if (batch == 1) {
                    map.armed.incrementAndGet();
                }
                if (after >= 0) {
                    after++;
                } else if (clockThroughAddressSpace() != c1) {
                    after = 0;
                }
            }
            return after >= 0;
        }

        private static void expect(int want, int got, String what, long t) {
            if (want != got) {
                throw new AssertionError(what + " saw " + got + " but the map of the check point is version " + t);
            }
        }

        /** How far {@code later} is ahead of {@code earlier} on the clock, negative if behind. */
        private static long ahead(long earlier, long later) {
            long d = distance(earlier, later);
            return d >= VersionedMap.CLOCK_VALUES / 2 ? -1 : d;
        }
    }
}
