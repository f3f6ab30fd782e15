package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.MethodModel;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The fast soft TLB: the contract both TLBs keep ({@link TlbContractTest}), each case inside the section of a reader
 * on the test's thread, and what is its own: misaligned and page-crossing accesses never hit; fetches have their own
 * part; the section discipline (use outside it, end empties, check points keep entries of an unchanged view and drop
 * them for a new one, requested and synced flushes); resizing; what is never cached; discarded and logged stores;
 * code reports. The concurrent claims are {@link HostTlbStressTest} and
 * {@link dev.guestmem.memory.stress.CodeProtectionStressTest}.
 */
class HostTlbTest extends TlbContractTest {
    @Override
    TlbAccess open(AddressSpace as) {
        HostTlb tlb = new HostTlb(as, register(as.system().rcu()));
        tlb.begin();
        return TlbAccess.of(tlb);
    }

    @Override
    TlbAccess open(AddressSpace as, int entries) {
        HostTlb tlb = new HostTlb(as, register(as.system().rcu()), U, entries, entries);
        tlb.begin();
        return TlbAccess.of(tlb);
    }

    /** Readers this test registered on its own thread, left in a section if an assertion failed there. */
    private final List<Rcu.Reader> readers = new ArrayList<>();

    private Rcu.Reader register(Rcu rcu) {
        Rcu.Reader r = rcu.register();
        readers.add(r);
        return r;
    }

    /** A failed assertion inside a section must not leave the thread in it: grace periods would wait forever. */
    @AfterEach
    void leaveSections() {
        for (Rcu.Reader r : readers) {
            while (r.locked()) {
                r.unlock();
            }
            r.close();
        }
    }

    /** A system with 4 pages of RAM at 0 and the rest of the map empty. */
    private static AddressSpace ramAt0(MemorySystem system, long size) {
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        root.addSubregion(0, system.ram("ram", size));
        return system.addressSpace("as", root);
    }

    // ---------------------------------------------------------------- values

    /**
     * Aligned accesses hit after one miss per page; misaligned ones and page-crossing ones never hit (each is a miss
     * of its own) and read and write the right bytes.
     */
    @Test
    void onlyNaturallyAlignedAccessesInsideAPageHit() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ab = system.ram("ab", 0x2000);
        root.addSubregion(0x10000, ab);
        AddressSpace as = system.addressSpace("as", root);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            tlb.begin();
            for (long off = 0; off < 0x2000; off += 8) {
                tlb.stqLe(0x10000 + off, off);
            }
            assertEquals(2, tlb.missCount(), "one miss per page");
            for (long off = 0; off < 0x2000; off += 8) {
                assertEquals(off, tlb.ldqLe(0x10000 + off));
            }
            assertEquals(2, tlb.missCount(), "the stores filled the read parts too");
            long before = tlb.missCount();
            int[] r = new int[1];
            assertEquals(as.ldqLe(0x10ff1, U, r), tlb.ldqLe(0x10ff1), "misaligned, inside the page");
            assertEquals(before + 1, tlb.missCount());
            // Across the page boundary.
            assertEquals(as.ldqLe(0x10ffc, U, r), tlb.ldqLe(0x10ffc));
            assertEquals(before + 2, tlb.missCount());
            tlb.stlBe(0x10ffe, 0x1122_3344);
            assertEquals(before + 3, tlb.missCount());
            assertEquals(0x1122_3344, as.ldlBe(0x10ffe, U, r));
            assertEquals(0x1122_3344, ab.ramSegment().get(ValueLayout.JAVA_INT_UNALIGNED
                    .withOrder(ByteOrder.BIG_ENDIAN), 0xffe));
            assertEquals(before + 3, tlb.missCount());
            assertEquals(MemTxResult.OK, tlb.takeResult());
            tlb.end();
        }
    }

    /** Fetches use their own part: a data fill does not make a fetch hit, and the reverse. */
    @Test
    void fetchesHaveTheirOwnPart() {
        MemorySystem system = new MemorySystem();
        AddressSpace as = ramAt0(system, 0x1000);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            tlb.begin();
            tlb.stlLe(0x40, 0x1234_5678);
            assertEquals(1, tlb.missCount());
            assertEquals(0x1234_5678, tlb.ldlCode(0x40));
            assertEquals(2, tlb.missCount());
            assertEquals(0x5678, tlb.lduwCode(0x40));
            assertEquals(0x78, tlb.ldubCode(0x40));
            assertEquals(0x1234_5678L, tlb.ldqCode(0x40));
            assertEquals(2, tlb.missCount());
            tlb.end();
        }
    }

    // ---------------------------------------------------------------- the section

    @Test
    void useOutsideTheSectionThrowsAndEndEmpties() {
        MemorySystem system = new MemorySystem();
        AddressSpace as = ramAt0(system, 0x1000);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> tlb.ldqLe(0));
            assertTrue(e.getMessage().contains("call=access"), e.getMessage());
            assertThrows(IllegalStateException.class, tlb::checkpoint);
            assertThrows(IllegalStateException.class, tlb::end);
            tlb.begin();
            assertTrue(reader.locked());
            assertThrows(IllegalStateException.class, tlb::begin);
            tlb.stqLe(0, 7);
            assertEquals(7, tlb.ldqLe(0));
            assertEquals(1, tlb.missCount());
            tlb.end();
            assertFalse(reader.locked());
            assertThrows(IllegalStateException.class, () -> tlb.ldqLe(0), "emptied: the access misses and throws");
            // Stores, fetches and atomics miss into their own slow paths; each refuses, and nothing is written.
            for (Executable outside : new Executable[] {() -> tlb.stqLe(0, 8), () -> tlb.stb(1, 8),
                    () -> tlb.ldlCode(0), () -> tlb.atomicCmpxchg(0, 7, 8, 8, false)}) {
                e = assertThrows(IllegalStateException.class, outside);
                assertTrue(e.getMessage().contains("outside begin/end"), e.getMessage());
            }
            assertEquals(7, as.ldqLe(0, MemTxAttrs.UNSPECIFIED, null));
            tlb.begin();
            assertEquals(7, tlb.ldqLe(0));
            assertEquals(2, tlb.missCount(), "refilled after the new section began");
            tlb.end();
        }
    }

    /**
     * A check point keeps the entries while the view stays the one they came from, and drops them when another was
     * published; until then the TLB keeps using the map of the last check point, hits and slow path alike.
     */
    @Test
    void checkPointsKeepEntriesOfTheSameViewAndTakeTheNewMap() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion one = system.ram("one", 0x1000);
        MemoryRegion two = system.ram("two", 0x1000);
        one.ramSegment().fill((byte) 1);
        two.ramSegment().fill((byte) 2);
        root.addSubregion(0, one);
        AddressSpace as = system.addressSpace("as", root);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            tlb.begin();
            assertEquals(0x0101_0101_0101_0101L, tlb.ldqLe(0x100));
            tlb.checkpoint();
            assertEquals(0x0101_0101_0101_0101L, tlb.ldqLe(0x108));
            assertEquals(1, tlb.missCount(), "the same view: kept");
            long flushes = tlb.flushCount();
            // Another thread swaps the RAM (a commit inside this thread's section would be the same).
            Thread writer = Thread.ofPlatform().start(() -> system.transaction(() -> {
                root.delSubregion(one);
                root.addSubregion(0, two);
            }));
            join(writer);
            assertEquals(0x0101_0101_0101_0101L, tlb.ldqLe(0x110), "a hit: the map of the last check point");
            assertEquals(0x01, tlb.ldub(0x201), "also a hit");
            assertEquals(0x0101, tlb.lduwLe(0x203), "the slow path uses that map too");
            assertEquals(flushes, tlb.flushCount());
            tlb.checkpoint();
            assertEquals(flushes + 1, tlb.flushCount());
            assertEquals(0x0202_0202_0202_0202L, tlb.ldqLe(0x110), "the new map after the check point");
            tlb.end();
        }
    }

    /** A flush requested from another thread is honoured at the next check point, not before. */
    @Test
    void requestedFlushWaitsForTheCheckPoint() {
        MemorySystem system = new MemorySystem();
        AddressSpace as = ramAt0(system, 0x1000);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            tlb.begin();
            tlb.ldqLe(0);
            join(Thread.ofPlatform().start(tlb::requestFlush));
            tlb.ldqLe(8);
            assertEquals(1, tlb.missCount());
            tlb.checkpoint();
            tlb.ldqLe(16);
            assertEquals(2, tlb.missCount(), "emptied at the check point");
            tlb.checkpoint();
            tlb.ldqLe(24);
            assertEquals(2, tlb.missCount(), "one request, one flush");
            tlb.end();
        }
    }

    /**
     * {@link HostTlb#flushAllSynced} returns only once the vCPU passed a check point (it sets a flag before it does,
     * which the caller must then see set), flushes the caller's own TLB at once, and does not wait for a TLB outside
     * its section.
     */
    @Test
    void syncedFlushWaitsForEveryVcpusCheckPoint() throws Exception {
        MemorySystem system = new MemorySystem();
        AddressSpace as = ramAt0(system, 0x1000);
        AtomicBoolean go = new AtomicBoolean();
        AtomicBoolean checkpointing = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch inSection = new CountDownLatch(1);
        long[] vcpuMisses = new long[1];
        Thread vcpu = Thread.ofPlatform().name("vcpu").start(() -> {
            try (Rcu.Reader reader = system.rcu().register()) {
                HostTlb tlb = new HostTlb(as, reader);
                tlb.begin();
                tlb.ldqLe(0);
                inSection.countDown();
                while (!go.get()) {
                    tlb.ldqLe(8); // a hit, without a check point
                    Thread.onSpinWait();
                }
                checkpointing.set(true);
                tlb.checkpoint();
                tlb.ldqLe(16);
                vcpuMisses[0] = tlb.missCount();
                tlb.end();
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        inSection.await();
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb mine = new HostTlb(as, reader);
            mine.begin();
            mine.ldqLe(0);
            HostTlb idle = new HostTlb(as, reader); // never begun: nothing to wait for
            Thread caller = Thread.currentThread();
            AtomicBoolean returned = new AtomicBoolean();
            Thread releaser = Thread.ofPlatform().start(() -> {
                // Lets the vCPU reach its check point only once the synced flush waits (parked) or has returned.
                while (caller.getState() != Thread.State.TIMED_WAITING && !returned.get()) {
                    Thread.onSpinWait();
                }
                go.set(true);
            });
            HostTlb.flushAllSynced(system);
            returned.set(true);
            assertTrue(checkpointing.get(), "returned before the vCPU's check point");
            join(releaser);
            mine.ldqLe(8);
            assertEquals(2, mine.missCount(), "the caller's own TLB was emptied at once");
            assertEquals(0, idle.missCount());
            mine.end();
        }
        join(vcpu);
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        assertEquals(2, vcpuMisses[0], "the vCPU's TLB was emptied at its check point");
    }

    // ---------------------------------------------------------------- size

    /**
     * Entries emptied by {@code flushPage} no longer count as used (QEMU's {@code tlb_flush_page} lowers
     * {@code n_used_entries}): filled, flushed page by page and filled again, 40 entries of 64 are 62 % used, which
     * does not grow the TLB at the next flush; counted twice, they would be 125 % and double it.
     */
    @Test
    void pagesFlushedOneByOneAreNotCountedTwiceByTheResize() {
        MemorySystem system = new MemorySystem();
        AddressSpace as = ramAt0(system, 256 * 0x1000);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader, U, 64, 1024);
            tlb.begin();
            for (int round = 0; round < 2; round++) {
                for (long page = 0; page < 40; page++) {
                    tlb.ldqLe(page * 0x1000);
                    tlb.stqLe(page * 0x1000 + 8, page);
                }
                for (long page = 0; round == 0 && page < 40; page++) {
                    tlb.flushPage(page * 0x1000);
                }
            }
            tlb.flush();
            assertEquals(64, tlb.entries());
            assertEquals(0, tlb.resizeCount());
            // The same count through the first fill alone, for contrast: 45 of 64 used (70.3 %) does grow it.
            for (long page = 0; page < 45; page++) {
                tlb.ldqLe(page * 0x1000);
            }
            tlb.flush();
            assertEquals(128, tlb.entries());
            tlb.end();
        }
    }

    /**
     * A working set four times the TLB's reach, with check points, grows the TLB until it fits; a fixed size stays;
     * a flush after the working set shrank shrinks it back; sizes out of range are one-line errors.
     */
    @Test
    void resizesWithItsUse() {
        MemorySystem system = new MemorySystem();
        AddressSpace as = ramAt0(system, 256 * 0x1000);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb growing = new HostTlb(as, reader, U, 64, 1024);
            HostTlb fixed = new HostTlb(as, reader, U, 64, 64);
            growing.begin();
            fixed.begin();
            for (int round = 0; round < 20; round++) {
                for (long page = 0; page < 256; page++) {
                    growing.ldqLe(page * 0x1000);
                    fixed.ldqLe(page * 0x1000);
                }
                growing.checkpoint();
                fixed.checkpoint();
            }
            assertEquals(64, fixed.entries());
            assertEquals(0, fixed.resizeCount());
            assertTrue(growing.entries() >= 256, "entries=" + growing.entries());
            long misses = growing.missCount();
            for (long page = 0; page < 256; page++) {
                growing.ldqLe(page * 0x1000);
            }
            long refill = growing.missCount() - misses;
            assertTrue(refill <= 256, "refills=" + refill);
            for (long page = 0; page < 256; page++) {
                growing.ldqLe(page * 0x1000 + 8);
            }
            assertEquals(growing.missCount(), misses + refill, "the working set fits now: all hits");
            // The working set shrinks to 4 pages; a flush sees the low use and shrinks.
            growing.flush();
            for (long page = 0; page < 4; page++) {
                growing.ldqLe(page * 0x1000);
            }
            growing.flush();
            assertEquals(64, growing.entries(), "shrunk to its minimum");
            growing.end();
            fixed.end();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new HostTlb(as, reader, U, 100, 1024));
            assertEquals("minEntries=100: must be a power of two from 1 to " + HostTlb.MAX_ENTRIES, e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new HostTlb(as, reader, U, 64, 32));
            assertEquals("minEntries=64 maxEntries=32: maxEntries must not be below minEntries", e.getMessage());
        }
        try (Rcu.Reader other = register(new Rcu("other"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new HostTlb(as, other));
            assertTrue(e.getMessage().startsWith("reader=Rcu[other"), e.getMessage());
        }
    }

    // ---------------------------------------------------------------- what is never cached, and stores

    /**
     * MMIO, holes, RAM over a heap segment and pages two sections share go through the slow path every time, with
     * the address space's values and results; a store through a read-only alias is discarded with DECODE_ERROR.
     */
    @Test
    void slowPathsBehaveAsTheAddressSpace() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        int[] calls = new int[1];
        root.addSubregion(0x2000, system.io("dev", 0x1000, MemoryRegionOps.builder()
                .read((addr, size) -> {
                    calls[0]++;
                    return addr;
                })
                .write((addr, data, size) -> calls[0]++)
                .build()));
        MemoryRegion ram = system.ram("ram", 0x1000);
        root.addSubregion(0, ram);
        MemoryRegion ro = system.alias("ro", ram, 0, 0x1000);
        ro.setReadonly(true);
        root.addSubregion(0x4000, ro);
        root.addSubregion(0x6000, system.ramFromSegment("heap", MemorySegment.ofArray(new byte[0x1000])));
        root.addSubregion(0x8000, system.ram("half", 0x800));
        AddressSpace as = system.addressSpace("as", root);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            tlb.begin();
            for (int i = 0; i < 3; i++) {
                int c = calls[0];
                assertEquals(0x18, tlb.ldlLe(0x2018));
                tlb.stlLe(0x2010, 5);
                assertEquals(c + 2, calls[0], "both reached the device");
                assertEquals(MemTxResult.OK, tlb.takeResult());
                assertEquals(0, tlb.ldqLe(0x9000_0000L));
                assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
                tlb.stqLe(0x6008, 42 + i);
                assertEquals(42 + i, tlb.ldqLe(0x6008));
                tlb.stqLe(0x8008, 43 + i);
                assertEquals(43 + i, tlb.ldqLe(0x8008));
                assertEquals(MemTxResult.OK, tlb.takeResult());
                tlb.stqLe(0x4000, 99);
                assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
                assertEquals(0, tlb.ldqLe(0x4000), "the read-only alias reads the RAM, which the store missed");
            }
            assertEquals(3 * 8, tlb.missCount(), "every access but the read-only alias's reads missed");
            tlb.end();
        }
    }

    /** Stores to pages that VGA or MIGRATION log take the slow path and mark them; loads still hit. */
    @Test
    void loggedPagesAreMarkedByEveryStore() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion vram = system.ram("vram", 0x2000);
        vram.setLog(true, DirtyMemoryClient.VGA);
        root.addSubregion(0, vram);
        AddressSpace as = system.addressSpace("as", root);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            tlb.begin();
            tlb.ldqLe(0);
            long misses = tlb.missCount();
            for (int i = 0; i < 2; i++) {
                vram.snapshotAndClearDirty(0, 0x2000, DirtyMemoryClient.VGA);
                tlb.stqLe(0x1008, i);
                DirtySnapshot snap = vram.snapshotAndClearDirty(0, 0x2000, DirtyMemoryClient.VGA);
                long base = vram.ramBlock().offset();
                assertTrue(snap.getDirty(base + 0x1000, 8), "store " + i + " marked its page");
                assertFalse(snap.getDirty(base, 8));
            }
            assertEquals(misses + 2, tlb.missCount());
            tlb.ldqLe(8);
            assertEquals(misses + 2, tlb.missCount(), "loads hit");
            tlb.end();
        }
    }

    /**
     * Code protection: a store to a protected page is reported after it landed and keeps being reported; once
     * unprotected, the next store drops the mark and the ones after it hit.
     */
    @Test
    void storesToProtectedCodeAreReported() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", 0x2000);
        ram.setLog(true, DirtyMemoryClient.CODE);
        root.addSubregion(0, ram);
        AddressSpace as = system.addressSpace("as", root);
        CodeProtection code = CodeProtection.of(system);
        long[] reported = {-1, 0, 0};
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            code.addListener((ramAddr, length) -> {
                reported[0] = ramAddr;
                reported[1] = length;
                reported[2]++;
                assertEquals(0x55L, ram.ramSegment().get(ValueLayout.JAVA_LONG, ramAddr - ram.ramBlock().offset()),
                        "reported after the store");
            });
            tlb.begin();
            tlb.stqLe(0x1010, 1); // cached fast before the protect
            long ramAddr = tlb.protectCode(0x1000);
            assertEquals(ram.ramBlock().offset() + 0x1000, ramAddr);
            tlb.stqLe(0x1010, 0x55);
            assertEquals(ram.ramBlock().offset() + 0x1010, reported[0]);
            assertEquals(8, reported[1]);
            tlb.stqLe(0x1010, 0x55);
            assertEquals(2, reported[2], "still protected: reported again");
            tlb.stqLe(0x10, 0x66);
            assertEquals(2, reported[2], "another page: not reported");
            code.unprotect(ramAddr, 0x1000);
            tlb.stqLe(0x1018, 0x55);
            long misses = tlb.missCount();
            tlb.stqLe(0x1020, 0x55);
            assertEquals(misses, tlb.missCount(), "fast again");
            assertEquals(2, reported[2]);
            tlb.end();
        }
        MemoryRegion plain = system.ram("plain", 0x1000);
        system.transaction(() -> root.addSubregion(0x10000, plain));
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            tlb.begin();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> tlb.protectCode(0x10000));
            assertTrue(e.getMessage().startsWith("addr=0x10000 region=plain"), e.getMessage());
            tlb.end();
        }
    }

    /** The RAM of an arena the TLB never outlives: a region destroyed after end() frees its memory. */
    @Test
    void freedRamAfterEndIsNeverTouched() {
        MemorySystem system = new MemorySystem();
        MemoryRegion root = system.container("root", U64.SIZE_2_64);
        Arena arena = Arena.ofShared();
        MemoryRegion ram = system.ramFromSegment("owned", arena.allocate(0x1000, 4096));
        root.addSubregion(0, ram);
        AddressSpace as = system.addressSpace("as", root);
        try (Rcu.Reader reader = register(system.rcu())) {
            HostTlb tlb = new HostTlb(as, reader);
            tlb.begin();
            tlb.stqLe(0, 5);
            tlb.end();
            system.transaction(() -> root.delSubregion(ram));
            arena.close(); // the owner closes its memory once the map no longer has it
            tlb.begin();
            assertEquals(0, tlb.ldqLe(0));
            assertEquals(MemTxResult.DECODE_ERROR, tlb.takeResult());
            tlb.end();
        }
    }

    /**
     * Each data access has a miss method of its own whose size and byte order are constants in its compiled code, and
     * which a caller's compiled code calls rather than inlines where misses are rare: C2 inlines a call site that is
     * not frequent only up to {@code MaxInlineSize} bytes of bytecode (35, the JDK's default), so each must be larger,
     * or the caller would inline it and call the general slow path with the constants lost.
     */
    @Test
    void eachAccessHasAMissMethodTooLargeForAColdCallSite() throws IOException {
        final ClassModel model;
        try (InputStream in = HostTlb.class.getResourceAsStream("HostTlb.class")) {
            model = ClassFile.of().parse(in.readAllBytes());
        }
        TreeMap<String, Integer> sizes = new TreeMap<>();
        for (MethodModel m : model.methods()) {
            String name = m.methodName().stringValue();
            if (name.endsWith("Miss") && !name.equals("codeMiss")) {
                sizes.put(name, m.findAttribute(Attributes.code()).orElseThrow().codeLength());
            }
        }
        assertEquals(List.of("ldlBeMiss", "ldlLeMiss", "ldqBeMiss", "ldqLeMiss", "ldubMiss", "lduwBeMiss", "lduwLeMiss",
                "stbMiss", "stlBeMiss", "stlLeMiss", "stqBeMiss", "stqLeMiss", "stwBeMiss", "stwLeMiss"),
                List.copyOf(sizes.keySet()));
        sizes.forEach((name, size) -> assertTrue(size > 35, name + " has " + size + " bytes of bytecode"));
    }

    private static void join(Thread t) {
        try {
            t.join();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }
}
