package dev.guestmem.memory;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Coalesced-MMIO ranges and ioeventfds on regions, told to listeners as QEMU 7.2 does
 * ({@code memory_region_add_coalescing} and friends, {@code address_space_update_ioeventfds}):
 * <ul>
 *   <li>a coalesced range is announced at once, for every place the region is mapped, clipped to what each flat
 *   range shows; on topology changes its deletion comes before {@code region_del} and its addition after
 *   {@code region_add};</li>
 *   <li>ioeventfds are announced on commit as the difference between the old and the new guest-physical sets, in
 *   QEMU's sort order, with QEMU's directions (deletions forward, additions in reverse);</li>
 *   <li>the write path signals the first registration a write matches (address, size or any size, data when
 *   matched).</li>
 * </ul>
 */
class CoalescedIoeventfdTest {
    private static final MemoryRegionOps LE_OPS = MemoryRegionOps.builder().read((a, s) -> 0).write((a, d, s) -> { })
            .endianness(DeviceEndian.LITTLE).valid(1, 8, false).build();
    private static final MemoryRegionOps BE_OPS = MemoryRegionOps.builder().read((a, s) -> 0).write((a, d, s) -> { })
            .endianness(DeviceEndian.BIG).valid(1, 8, false).build();

    private MemorySystem m;
    private MemoryRegion root;
    private MemoryRegion dev;
    private AddressSpace as;
    private List<String> log;

    /** A notifier that counts and prints as its name. */
    record Notifier(String name, AtomicInteger count) implements EventNotifier {
        Notifier(String name) {
            this(name, new AtomicInteger());
        }

        @Override
        public void set() {
            count.incrementAndGet();
        }

        @Override
        public String toString() {
            return name;
        }
    }

    @BeforeEach
    void setUp() {
        m = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        root = m.container("root", -1L);
        root.addSubregionOverlap(0, m.ram("ram", 0x10000), -1);
        dev = m.io("dev", 0x100, LE_OPS);
        root.addSubregion(0x1000, dev);
        // the device's second half is mapped again through an alias
        root.addSubregion(0x5000, m.alias("dev-hi", dev, 0x80, 0x80));
        as = m.addressSpace("as", root);
        log = new ArrayList<>();
    }

    private RecordingListener listen(String name, int priority) {
        RecordingListener l = new RecordingListener(name, priority, log);
        as.registerListener(l);
        log.clear();
        return l;
    }

    @Test
    void coalescedRangesAreAnnouncedAtOnceForEveryMapping() {
        listen("L", 0);
        dev.addCoalescing(0x70, 0x20);   // straddles the alias window's start (0x80)
        assertEquals(List.of(
                "L coalesced_add 0000000000001000-00000000000010ff dev @0 0x1070+0x20",
                "L coalesced_add 0000000000005000-000000000000507f dev @80 0x5000+0x10"), log);
        assertTrue(dev.flushCoalesced());
        log.clear();
        dev.clearCoalescing();
        assertEquals(List.of(
                "L coalesced_del 0000000000001000-00000000000010ff dev @0 0x1070+0x20",
                "L coalesced_del 0000000000005000-000000000000507f dev @80 0x5000+0x10"), log);
        assertFalse(dev.flushCoalesced());
    }

    @Test
    void topologyChangesDeleteBeforeRegionDelAndAddAfterRegionAdd() {
        dev.setCoalescing();
        listen("L", 0);
        dev.setAddress(0x2000);
        // The RAM pieces around the old and new places change too (they merge and split); the coalesced range
        // is deleted just before the device's own region_del and added just after its region_add.
        assertEquals(List.of(
                "L begin",
                "L del 0000000000000000-0000000000000fff ram @0",
                "L coalesced_del 0000000000001000-00000000000010ff dev @0 0x1000+0x100",
                "L del 0000000000001000-00000000000010ff dev @0",
                "L del 0000000000001100-0000000000004fff ram @1100",
                "L add 0000000000000000-0000000000001fff ram @0",
                "L add 0000000000002000-00000000000020ff dev @0",
                "L coalesced_add 0000000000002000-00000000000020ff dev @0 0x2000+0x100",
                "L add 0000000000002100-0000000000004fff ram @2100",
                "L commit"), log.stream().filter(l -> !l.contains(" nop ")).toList());
    }

    @Test
    void ioeventfdsAreAnnouncedOnCommitWithQemusDirections() {
        listen("A", 0);
        listen("B", 1);
        Notifier e = new Notifier("e");
        dev.addEventfd(0x84, 4, true, 0x1234, e);
        // mapped twice: directly at 0x1084 and through the alias at 0x5004; additions go in reverse (B first)
        assertEquals(List.of(
                "B eventfd_add 0000000000001084-0000000000001087 data=0x1234 e",
                "A eventfd_add 0000000000001084-0000000000001087 data=0x1234 e",
                "B eventfd_add 0000000000005004-0000000000005007 data=0x1234 e",
                "A eventfd_add 0000000000005004-0000000000005007 data=0x1234 e"), log);
        log.clear();
        dev.delEventfd(0x84, 4, true, 0x1234, e);
        assertEquals(List.of(
                "A eventfd_del 0000000000001084-0000000000001087 data=0x1234 e",
                "B eventfd_del 0000000000001084-0000000000001087 data=0x1234 e",
                "A eventfd_del 0000000000005004-0000000000005007 data=0x1234 e",
                "B eventfd_del 0000000000005004-0000000000005007 data=0x1234 e"), log);
    }

    @Test
    void movingARegionMovesItsIoeventfdsAndSizeZeroMatchesAnySize() {
        Notifier any = new Notifier("any");
        dev.addEventfd(0x10, 0, false, 0, any);
        listen("L", 0);
        dev.setAddress(0x3000);
        assertEquals(List.of(
                "L eventfd_del 0000000000001010 any-size any-data any",
                "L eventfd_add 0000000000003010 any-size any-data any"),
                log.stream().filter(l -> l.contains("eventfd")).toList());
        assertTrue(dev.dispatchWriteEventfds(0x10, 7, 2));
        assertTrue(dev.dispatchWriteEventfds(0x10, 9, 8));
        assertFalse(dev.dispatchWriteEventfds(0x11, 7, 1));
        assertEquals(2, any.count().get());
    }

    @Test
    void writePathMatchesAddressSizeAndData() {
        Notifier exact = new Notifier("exact");
        Notifier anyData = new Notifier("anyData");
        dev.addEventfd(0x8, 4, true, 0xcafe, exact);
        dev.addEventfd(0xc, 2, false, 0, anyData);
        assertFalse(dev.dispatchWriteEventfds(0x8, 0xbeef, 4), "data differs");
        assertFalse(dev.dispatchWriteEventfds(0x8, 0xcafe, 2), "size differs");
        assertTrue(dev.dispatchWriteEventfds(0x8, 0xcafe, 4));
        assertTrue(dev.dispatchWriteEventfds(0xc, 0x1, 2));
        assertTrue(dev.dispatchWriteEventfds(0xc, 0x2, 2));
        assertEquals(1, exact.count().get());
        assertEquals(2, anyData.count().get());
    }

    @Test
    void guestWritesThatMatchSignalInsteadOfReachingTheDevice() {
        List<String> deviceSaw = new ArrayList<>();
        MemoryRegion doorbell = m.io("doorbell", 0x10, MemoryRegionOps.builder()
                .read((a, s) -> 0)
                .write((a, d, s) -> deviceSaw.add(U64.hex(a) + "=" + U64.hex(d)))
                .valid(1, 4, false).build());
        root.addSubregion(0x9000, doorbell);
        Notifier kick = new Notifier("kick");
        doorbell.addEventfd(0x4, 4, true, 1, kick);
        assertEquals(MemTxResult.OK, as.stlLe(0x9004, 1, MemTxAttrs.UNSPECIFIED));
        assertEquals(MemTxResult.OK, as.stlLe(0x9004, 2, MemTxAttrs.UNSPECIFIED));
        assertEquals(MemTxResult.OK, as.stwLe(0x9004, 1, MemTxAttrs.UNSPECIFIED));
        assertEquals(1, kick.count().get(), "only the 4-byte write of 1 matches");
        assertEquals(List.of("0x4=0x2", "0x4=0x1"), deviceSaw, "the others reach the device");
    }

    @Test
    void matchDataIsKeptInTheDevicesByteOrder() {
        MemoryRegion be = m.io("be", 0x10, BE_OPS);
        root.addSubregion(0x8000, be);
        listen("L", 0);
        Notifier e = new Notifier("e");
        // the guest (little-endian target) writes 0x11223344; a big-endian device sees 0x44332211
        be.addEventfd(0, 4, true, 0x11223344L, e);
        assertEquals(List.of("L eventfd_add 0000000000008000-0000000000008003 data=0x44332211 e"), log);
        assertTrue(be.dispatchWriteEventfds(0, 0x44332211L, 4));
        assertFalse(be.dispatchWriteEventfds(0, 0x11223344L, 4));
    }

    @Test
    void unknownRegistrationsAndSizesAreRefused() {
        Notifier e = new Notifier("e");
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                () -> dev.delEventfd(0x8, 4, true, 1, e));
        assertTrue(ex.getMessage().contains("region=dev addr=0x8 size=4"), ex.getMessage());
        ex = assertThrows(IllegalArgumentException.class, () -> dev.addEventfd(0x8, 3, false, 0, e));
        assertTrue(ex.getMessage().contains("size=3"), ex.getMessage());
    }

    @Test
    void disabledRegionsAnnounceNothingUntilEnabled() {
        listen("L", 0);
        dev.setEnabled(false);
        log.clear();
        Notifier e = new Notifier("e");
        dev.addEventfd(0x8, 4, false, 0, e);
        assertEquals(List.of(), log);
        dev.setEnabled(true);
        assertTrue(log.contains("L eventfd_add 0000000000001008-000000000000100b any-data e"), log.toString());
    }
}
