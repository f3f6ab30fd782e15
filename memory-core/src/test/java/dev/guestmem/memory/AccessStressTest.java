package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Readers translating and accessing an address space while a writer remaps it without pause.
 *
 * <p>The map is {@link VersionedMap}'s without its clock: four versions k = 0..3, switched in one transaction each:
 * RAM {@code lo-k} at 0x0000 and {@code hi-k} at 0x1000, every byte of both holding k + 1, and for even k a device
 * {@code dev-k} at 0x2000 whose reads return k + 1 in every byte (a hole there for odd k). An always-mapped scratch
 * RAM at 0x10000 gives each reader its own 8 bytes.
 *
 * <p>Each reader, in a loop: an 8-byte bulk read across 0x0ffc (two pages, two sections), an 8-byte bulk read across
 * 0x1ffc (RAM into the device or the hole), a 4 KiB read from 0x0ff0 to 0x1ff0 and beyond into the device, an
 * aligned ldq inside a page, a translation of the three addresses through one loaded view, and a store then load of a
 * sequence number in its scratch slot.
 *
 * <p>Forbidden outcomes: any access whose bytes name two versions (two k, or a device's bytes with an odd k, or hole
 * zeros with an even k); a result other than OK, except DECODE_ERROR exactly when the hole was read; a translation
 * whose three sections belong to different versions; a store not seen by the next load or lost at the end; any
 * exception. Required: the writer published versions while the readers ran and the readers saw more than one.
 *
 * <p>Runs {@value VersionedMap#DEFAULT_SECONDS} seconds by default; a longer soak:
 * {@code ./guestmem test -pl memory-core -Dtest=AccessStressTest -Dguestmem.access.stress.seconds=600}.
 */
class AccessStressTest {
    private static final int VERSIONS = VersionedMap.VERSIONS;
    private static final int READERS = 3;
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    @Test
    void readersNeverSeeAMixOfTwoMaps() throws Exception {
        VersionedMap map = new VersionedMap(false, false);
        AddressSpace as = map.as;
        long[] seen = new long[READERS];
        long[] accesses = new long[READERS];
        long[] lastSeq = new long[READERS];
        map.run("reader", "writer", READERS, false, (me, stop) -> {
            byte[] eight = new byte[8];
            byte[] big = new byte[0x1020];
            int[] r = new int[1];
            long seq = 0;
            long mask = 0;
            long n = 0;
            while (!stop.get()) {
                int k = checkAcrossPages(as, eight);
                mask |= 1L << k;
                checkIntoDevice(as, eight);
                checkBig(as, big);
                long q = as.ldqLe(0x0800, U, r);
                if (r[0] != MemTxResult.OK || q == 0 || q != (q & 0xff) * 0x0101_0101_0101_0101L) {
                    throw new AssertionError("ldq=" + Long.toHexString(q));
                }
                checkTranslation(as.flatView(), map.lo, map.hi, map.dev);
                seq++;
                if (as.stqLe(VersionedMap.SCRATCH + 8L * me, seq, U) != MemTxResult.OK) {
                    throw new AssertionError("stq");
                }
                if (as.ldqLe(VersionedMap.SCRATCH + 8L * me, U, r) != seq) {
                    throw new AssertionError("lost store seq=" + seq);
                }
                n++;
            }
            seen[me] = mask;
            accesses[me] = n;
            lastSeq[me] = seq;
        });
        int[] r = new int[1];
        for (int id = 0; id < READERS; id++) {
            assertEquals(lastSeq[id], as.ldqLe(VersionedMap.SCRATCH + 8L * id, U, r), "reader " + id + "'s last store");
            assertTrue(accesses[id] > 0, "reader " + id + " made no accesses");
        }
        long union = 0;
        long total = 0;
        for (int id = 0; id < READERS; id++) {
            union |= seen[id];
            total += accesses[id];
        }
        System.out.printf("AccessStressTest: %d s, %d maps published, %d reader rounds (%d readers)%n",
                VersionedMap.SECONDS, map.published(), total, READERS);
        assertTrue(map.published() > 10, "published=" + map.published());
        assertTrue(Long.bitCount(union) > 1, "the readers saw only one version: mask=" + union);
    }

    /** 8 bytes across the page border at 0x1000: lo-k then hi-k. Returns k. */
    private static int checkAcrossPages(AddressSpace as, byte[] b) {
        int r = as.read(0x0ffc, U, b, 0, 8);
        if (r != MemTxResult.OK) {
            throw new AssertionError("result=" + MemTxResult.toString(r));
        }
        int mark = b[0];
        if (mark < 1 || mark > VERSIONS) {
            throw new AssertionError("mark=" + mark);
        }
        for (byte x : b) {
            if (x != mark) {
                throw new AssertionError("mixed bytes across 0x1000: " + Arrays.toString(b));
            }
        }
        return mark - 1;
    }

    /** 8 bytes across 0x2000: hi-k's last 4, then dev-k (k even, OK) or the hole (k odd, zeros, DECODE_ERROR). */
    private static void checkIntoDevice(AddressSpace as, byte[] b) {
        int r = as.read(0x1ffc, U, b, 0, 8);
        checkDeviceTail(b, 0, 4, r);
    }

    private static void checkDeviceTail(byte[] b, int ramStart, int devStart, int r) {
        int mark = b[ramStart];
        if (mark < 1 || mark > VERSIONS) {
            throw new AssertionError("mark=" + mark);
        }
        for (int i = ramStart; i < devStart; i++) {
            if (b[i] != mark) {
                throw new AssertionError("mixed RAM bytes at " + i + ": " + Arrays.toString(b));
            }
        }
        boolean device = (mark - 1) % 2 == 0;
        byte want = device ? (byte) mark : 0;
        for (int i = devStart; i < b.length; i++) {
            if (b[i] != want) {
                throw new AssertionError("device bytes of another version: mark=" + mark + " at " + i + ": "
                        + Arrays.toString(b));
            }
        }
        if (r != (device ? MemTxResult.OK : MemTxResult.DECODE_ERROR)) {
            throw new AssertionError("mark=" + mark + " result=" + MemTxResult.toString(r));
        }
    }

    /** 0x0ff0..0x200f: 16 bytes of lo, a whole page of hi, 16 bytes of the device or hole. */
    private static void checkBig(AddressSpace as, byte[] b) {
        int r = as.read(0x0ff0, U, b, 0, b.length);
        checkDeviceTail(b, 0, b.length - 16, r);
    }

    /** The three sections of one loaded view belong to one version. */
    private static void checkTranslation(FlatView view, MemoryRegion[] lo, MemoryRegion[] hi, MemoryRegion[] dev) {
        FlatRange l = view.lookup(0x0000);
        FlatRange h = view.lookup(0x1000);
        FlatRange d = view.lookup(0x2000);
        int k = 0;
        while (k < VERSIONS && lo[k] != l.region()) {
            k++;
        }
        if (k == VERSIONS || h.region() != hi[k] || (k % 2 == 0 ? d == null || d.region() != dev[k] : d != null)) {
            throw new AssertionError("lo=" + l + " hi=" + h + " dev=" + d);
        }
    }
}
