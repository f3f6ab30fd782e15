package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.guestmem.memory.internal.access.FileRam;
import dev.guestmem.memory.internal.access.RamFaultWarnings;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The atomic access API ({@link AddressSpace#atomicFetchOp}, {@link AddressSpace#atomicCmpxchg} and the same on
 * {@link SoftTlb}): every operation at both sizes and byte orders against a reference written here, through the address
 * space and through a TLB (hit and miss); what is refused (misaligned, MMIO, ROM, holes, read-only mappings for a CPU)
 * and that it leaves memory and devices alone; dirty marking and code reports as for a store; RAM that may fault. The
 * contention claims are {@link AtomicAccessStressTest}.
 */
class AtomicAccessTest {
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;
    private static final long RAM = 0x10_0000;
    private static final long RAM_SIZE = 0x10_000;
    private static final long[] EDGES = {0, 1, -1, Long.MIN_VALUE, Long.MAX_VALUE, 0x8000_0000L, 0x7fff_ffffL,
        0xffff_ffffL, 0x1_0000_0000L, 0xffff_ffff_0000_0000L};

    @TempDir
    Path dir;

    @RegisterExtension
    final RamFaultWarnings warnings = new RamFaultWarnings();

    /** A system with RAM at {@link #RAM}, a counting MMIO region, ROM, and a read-only alias of the RAM. */
    private static final class Machine {
        final MemorySystem sys = new MemorySystem();
        final MemoryRegion root = sys.container("root", -1);
        final MemoryRegion ram = sys.ram("ram", RAM_SIZE);
        final MemoryRegion rom = sys.rom("rom", 0x1000);
        final AtomicInteger mmioCalls = new AtomicInteger();
        final MemoryRegion mmio = sys.io("mmio", 0x1000, MemoryRegionOps.builder()
                .read((addr, size) -> {
                    mmioCalls.incrementAndGet();
                    return 0x5555;
                })
                .write((addr, data, size) -> mmioCalls.incrementAndGet())
                .build());
        final MemoryRegion roAlias = sys.alias("ram-ro", ram, 0, 0x1000);
        final AddressSpace as;

        Machine() {
            roAlias.setReadonly(true);
            sys.transaction(() -> {
                root.addSubregion(RAM, ram);
                root.addSubregion(0x1000, rom);
                root.addSubregion(0x2000, mmio);
                root.addSubregion(0x3000, roAlias);
            });
            as = sys.addressSpace("as", root);
        }
    }

    /** The reference: what each operation stores, computed apart from {@link AtomicOp#apply}. */
    static long reference(AtomicOp op, long old, long x, int size) {
        BigInteger mod = BigInteger.ONE.shiftLeft(8 * size);
        BigInteger uo = BigInteger.valueOf(old).mod(mod);
        BigInteger ux = BigInteger.valueOf(x).mod(mod);
        BigInteger half = mod.shiftRight(1);
        BigInteger so = uo.compareTo(half) >= 0 ? uo.subtract(mod) : uo;
        BigInteger sx = ux.compareTo(half) >= 0 ? ux.subtract(mod) : ux;
        BigInteger r = switch (op) {
            case XCHG -> ux;
            case FETCH_ADD -> uo.add(ux);
            case FETCH_AND -> uo.and(ux);
            case FETCH_OR -> uo.or(ux);
            case FETCH_XOR -> uo.xor(ux);
            case FETCH_SMIN -> so.min(sx);
            case FETCH_SMAX -> so.max(sx);
            case FETCH_UMIN -> uo.min(ux);
            case FETCH_UMAX -> uo.max(ux);
        };
        return r.mod(mod).longValue();
    }

    private static long mask(int size) {
        return size == 8 ? -1L : 0xffff_ffffL;
    }

    private static long load(AddressSpace as, long addr, int size, boolean big) {
        int[] r = {-1};
        long v = size == 8 ? (big ? as.ldqBe(addr, U, r) : as.ldqLe(addr, U, r))
                : (big ? as.ldlBe(addr, U, r) : as.ldlLe(addr, U, r)) & 0xffff_ffffL;
        assertEquals(MemTxResult.OK, r[0]);
        return v;
    }

    private static void store(AddressSpace as, long addr, long v, int size, boolean big) {
        int r = size == 8 ? (big ? as.stqBe(addr, v, U) : as.stqLe(addr, v, U))
                : (big ? as.stlBe(addr, (int) v, U) : as.stlLe(addr, (int) v, U));
        assertEquals(MemTxResult.OK, r);
    }

    @Test
    void everyOperationAtBothSizesAndOrdersMatchesTheReference() {
        Machine m = new Machine();
        SoftTlb tlb = new SoftTlb(m.as);
        Random rnd = new Random(13);
        List<long[]> pairs = new ArrayList<>();
        for (long a : EDGES) {
            for (long b : EDGES) {
                pairs.add(new long[] {a, b});
            }
        }
        for (int i = 0; i < 200; i++) {
            pairs.add(new long[] {rnd.nextLong(), rnd.nextLong()});
        }
        long guard = 0x0123_4567_89ab_cdefL;
        for (AtomicOp op : AtomicOp.values()) {
            for (int size : new int[] {4, 8}) {
                for (boolean big : new boolean[] {false, true}) {
                    for (int path = 0; path < 3; path++) {
                        long addr = RAM + 0x100 + 16L * path;
                        for (long[] p : pairs) {
                            store(m.as, addr, p[0], size, big);
                            store(m.as, addr + size, guard, size, big); // the next word must stay as it is
                            if (path == 2) {
                                tlb.flush(); // a TLB miss; path 1 hits the entry its first access filled
                            }
                            long old = path == 0
                                    ? m.as.atomicFetchOp(op, addr, p[1], size, big, null)
                                    : tlb.atomicFetchOp(op, addr, p[1], size, big);
                            String what = op + " size=" + size + " big=" + big + " path=" + path + " old="
                                    + Long.toHexString(p[0]) + " operand=" + Long.toHexString(p[1]);
                            assertEquals(p[0] & mask(size), old, what);
                            assertEquals(reference(op, p[0], p[1], size), load(m.as, addr, size, big), what);
                            assertEquals(guard & mask(size), load(m.as, addr + size, size, big), what);
                        }
                    }
                }
            }
        }
        assertEquals(MemTxResult.OK, tlb.takeResult());
    }

    @Test
    void compareAndExchangeStoresOnlyOnAMatchOfTheLowBytes() {
        Machine m = new Machine();
        SoftTlb tlb = new SoftTlb(m.as);
        for (int size : new int[] {4, 8}) {
            for (boolean big : new boolean[] {false, true}) {
                for (boolean viaTlb : new boolean[] {false, true}) {
                    long addr = RAM + 0x200;
                    long v = 0x8765_4321_fedc_ba98L & mask(size);
                    store(m.as, addr, v, size, big);
                    int[] r = {-1};
                    long found = viaTlb ? tlb.atomicCmpxchg(addr, v ^ 1, 7, size, big)
                            : m.as.atomicCmpxchg(addr, v ^ 1, 7, size, big, r);
                    assertEquals(v, found);
                    assertEquals(v, load(m.as, addr, size, big), "no match: nothing stored");
                    // For 4 bytes the expected value's high half does not count.
                    long expected = size == 4 ? v | 0xdead_0000_0000_0000L : v;
                    found = viaTlb ? tlb.atomicCmpxchg(addr, expected, 0x1122_3344_5566_7788L, size, big)
                            : m.as.atomicCmpxchg(addr, expected, 0x1122_3344_5566_7788L, size, big, r);
                    assertEquals(v, found);
                    assertEquals(0x1122_3344_5566_7788L & mask(size), load(m.as, addr, size, big));
                    assertEquals(MemTxResult.OK, viaTlb ? tlb.takeResult() : r[0]);
                }
            }
        }
    }

    @Test
    void whatCannotBeDoneAtomicallyIsRefusedAndLeftAlone() {
        Machine m = new Machine();
        SoftTlb tlb = new SoftTlb(m.as);
        store(m.as, RAM + 0x10, 0x1111_2222_3333_4444L, 8, false);
        long romWord = load(m.as, 0x1008, 8, false);
        // {address, whether the address space refuses it too}: misaligned RAM, ROM, MMIO, a hole, a read-only alias.
        long[][] cases = {{RAM + 0x14, 1}, {RAM + 0x11, 1}, {0x1008, 1}, {0x2008, 1}, {0x9000, 1}, {0x3800, 0}};
        for (long[] c : cases) {
            long addr = c[0];
            for (int size : new int[] {4, 8}) {
                if (addr == RAM + 0x14 && size == 4) {
                    continue; // aligned for 4 bytes
                }
                for (AtomicOp op : AtomicOp.values()) {
                    int[] r = {-1};
                    long v = m.as.atomicFetchOp(op, addr, 0xff, size, false, r);
                    if (c[1] == 1) {
                        assertEquals(MemTxResult.ATOMIC_REFUSED, r[0], "as addr=" + Long.toHexString(addr));
                        assertEquals(0, v);
                    }
                    assertEquals(0, tlb.atomicFetchOp(op, addr, 0xff, size, false));
                    assertEquals(MemTxResult.ATOMIC_REFUSED, tlb.takeResult(), "tlb addr=" + Long.toHexString(addr));
                }
                assertEquals(0, tlb.atomicCmpxchg(addr, 0, 1, size, true));
                assertEquals(MemTxResult.ATOMIC_REFUSED, tlb.takeResult());
            }
        }
        assertEquals(0, m.mmioCalls.get(), "no device was called");
        assertEquals(0x1111_2222_3333_4444L, load(m.as, RAM + 0x10, 8, false), "misaligned atomics wrote nothing");
        assertEquals(romWord, load(m.as, 0x1008, 8, false));
        // The address space writes through a read-only alias, as its stores do; a CPU never does.
        int[] r = {-1};
        m.as.atomicFetchOp(AtomicOp.XCHG, 0x3800, 5, 8, false, r);
        assertEquals(MemTxResult.OK, r[0]);
        assertEquals(5, load(m.as, RAM + 0x800, 8, false));
        assertThrows(IllegalArgumentException.class, () -> m.as.atomicFetchOp(AtomicOp.FETCH_ADD, RAM, 1, 2, false,
                null));
        assertThrows(IllegalArgumentException.class, () -> tlb.atomicCmpxchg(RAM, 0, 1, 16, false));
        assertEquals("ATOMIC_REFUSED", MemTxResult.toString(MemTxResult.ATOMIC_REFUSED));
    }

    @Test
    void anAtomicThatWroteIsMarkedDirtyAndAFailedCompareIsNot() {
        Machine m = new Machine();
        m.ram.setLog(true, DirtyMemoryClient.VGA);
        SoftTlb tlb = new SoftTlb(m.as);
        long page = 0x3000;
        for (int path = 0; path < 2; path++) {
            m.ram.snapshotAndClearDirty(0, RAM_SIZE, DirtyMemoryClient.VGA);
            long addr = RAM + page + 8;
            if (path == 0) {
                m.as.atomicCmpxchg(addr, 1, 2, 8, false, null);
            } else {
                tlb.atomicCmpxchg(addr, 1, 2, 8, false);
            }
            assertFalse(m.ram.getDirty(0, RAM_SIZE, DirtyMemoryClient.VGA), "a compare that failed wrote nothing");
            if (path == 0) {
                m.as.atomicFetchOp(AtomicOp.FETCH_OR, addr, 0, 4, true, null);
            } else {
                tlb.atomicFetchOp(AtomicOp.FETCH_OR, addr, 0, 4, true);
            }
            assertTrue(m.ram.getDirty(page, 1, DirtyMemoryClient.VGA), "path=" + path);
            assertFalse(m.ram.getDirty(0, page, DirtyMemoryClient.VGA));
            assertFalse(m.ram.getDirty(page + 0x1000, RAM_SIZE - page - 0x1000, DirtyMemoryClient.VGA));
            page += 0x1000;
        }
        assertEquals(MemTxResult.OK, tlb.takeResult());
    }

    @Test
    void anAtomicIntoProtectedCodeIsReportedThroughAnyPath() {
        Machine m = new Machine();
        m.ram.setLog(true, DirtyMemoryClient.CODE);
        CodeProtection cp = CodeProtection.of(m.sys);
        List<long[]> reports = new ArrayList<>();
        cp.addListener((ramAddr, length) -> reports.add(new long[] {ramAddr, length}));
        SoftTlb vcpu = new SoftTlb(m.as);
        SoftTlb jit = new SoftTlb(m.as);
        long code = RAM + 0x4000;
        // The vCPU caches the page for fast stores before anyone protects it.
        vcpu.stqLe(code + 0x40, 0);
        assertEquals(0, vcpu.atomicFetchOp(AtomicOp.FETCH_ADD, code + 0x40, 1, 8, false));
        assertTrue(reports.isEmpty(), "unprotected code pages report nothing");
        long ramAddr = jit.protectCode(code);
        vcpu.atomicFetchOp(AtomicOp.FETCH_ADD, code + 0x40, 1, 8, false);
        assertEquals(1, reports.size());
        assertEquals(ramAddr + 0x40, reports.get(0)[0]);
        assertEquals(8, reports.get(0)[1]);
        m.as.atomicFetchOp(AtomicOp.XCHG, code + 0x80, 3, 4, false, null);
        assertEquals(2, reports.size());
        assertEquals(ramAddr + 0x80, reports.get(1)[0]);
        assertEquals(4, reports.get(1)[1]);
        vcpu.atomicCmpxchg(code + 0x80, 99, 4, 4, false);
        assertEquals(2, reports.size(), "a compare that failed wrote nothing");
        vcpu.atomicCmpxchg(code + 0x80, 3, 4, 4, false);
        assertEquals(3, reports.size());
        assertEquals(2, load(m.as, code + 0x40, 8, false));
        assertEquals(4, load(m.as, code + 0x80, 4, false));
        assertEquals(MemTxResult.OK, vcpu.takeResult());
    }

    @Test
    void ramThatMayFaultIsRefusedAndNeverKillsTheJvm() throws IOException {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("as", root);
        try (FileRam file = new FileRam(dir, 0x4000)) {
            MemoryRegion ram = sys.ramFromSegment("file.ram", file.segment);
            root.addSubregion(RAM, ram);
            SoftTlb tlb = new SoftTlb(as);
            int[] r = {-1};
            // Still whole, and refused all the same: whether it faults can change at any moment.
            assertEquals(0, as.atomicFetchOp(AtomicOp.FETCH_ADD, RAM + 0x1008, 1, 8, false, r));
            assertEquals(MemTxResult.ATOMIC_REFUSED, r[0]);
            assertEquals(FileRam.word(0x1008), file.wordAt(0x1008));
            // Truncated under the guest: a compare-and-exchange here would be a SIGBUS inside the VM.
            file.channel.truncate(0x2000);
            assertEquals(0, as.atomicCmpxchg(RAM + 0x3000, FileRam.word(0x3000), 1, 8, false, r));
            assertEquals(MemTxResult.ATOMIC_REFUSED, r[0]);
            assertEquals(0, tlb.atomicFetchOp(AtomicOp.FETCH_OR, RAM + 0x3008, 1, 4, false));
            assertEquals(MemTxResult.ATOMIC_REFUSED, tlb.takeResult());
            assertEquals(0, warnings.count("file.ram"), "nothing touched the missing pages");
            // The guarded plain paths still serve what is left, as before.
            assertEquals(FileRam.word(0x1008), as.ldqLe(RAM + 0x1008, U, r));
        }
    }
}
