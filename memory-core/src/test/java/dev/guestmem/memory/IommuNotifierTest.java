package dev.guestmem.memory;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * IOMMU notifiers as QEMU 7.2 keeps them: the IOMMU hears the union of its notifiers' flags change (and may refuse,
 * undoing the registration); events reach notifiers of the same context whose range overlaps and whose flags ask for
 * the event's kind, device-IOTLB notifiers get entries cropped to their range; replay translates every minimum page
 * unless the IOMMU replays itself; an alias of an IOMMU registers on the IOMMU.
 */
class IommuNotifierTest {

    /** An IOMMU that maps the even 4 KiB pages of its input to 1 GiB + input, and records flag changes. */
    static final class EvenPagesIommu implements IommuOps {
        final List<String> flagChanges = new ArrayList<>();
        boolean refuseDevIotlb;

        @Override
        public IommuTlbEntry translate(long addr, int flag, int iommuIdx) {
            long page = addr & ~0xfffL;
            int perm = (page >>> 12) % 2 == 0 ? IOMMU_RW : IOMMU_NONE;
            return new IommuTlbEntry(null, page, (1L << 30) + page, 0xfff, perm);
        }

        @Override
        public int numIndexes() {
            return 2;
        }

        @Override
        public void notifyFlagChanged(int oldFlags, int newFlags) {
            if (refuseDevIotlb && (newFlags & IommuNotifier.DEVIOTLB_UNMAP) != 0) {
                throw new IllegalStateException("flags=" + newFlags + ": this IOMMU has no device IOTLB");
            }
            flagChanges.add(oldFlags + "->" + newFlags);
        }
    }

    private final MemorySystem m = new MemorySystem(MemorySystem.LAYOUT_ONLY);
    private final EvenPagesIommu ops = new EvenPagesIommu();
    private final MemoryRegion iommu = m.iommu("iommu", 0x8000, ops);
    private final List<String> heard = new ArrayList<>();

    private IommuNotifier notifier(String name, int flags, long start, long end, int idx) {
        return new IommuNotifier((n, e) -> heard.add(name + " " + U64.hex(e.iova()) + "+" + U64.hex(e.addrMask())
                + " perm=" + e.perm()), flags, start, end, idx);
    }

    private static IommuTlbEvent map(long iova, long mask) {
        return new IommuTlbEvent(IommuNotifier.MAP, new IommuTlbEntry(null, iova, iova, mask, IommuOps.IOMMU_RW));
    }

    @Test
    void theIommuHearsTheUnionOfFlagsChange() {
        IommuNotifier a = notifier("a", IommuNotifier.MAP, 0, 0xffff, 0);
        IommuNotifier b = notifier("b", IommuNotifier.IOTLB_EVENTS, 0, 0xffff, 0);
        iommu.registerIommuNotifier(a);
        iommu.registerIommuNotifier(b);
        iommu.unregisterIommuNotifier(a);   // union still MAP|UNMAP: no change to report
        iommu.unregisterIommuNotifier(b);
        assertEquals(List.of("0->2", "2->3", "3->0"), ops.flagChanges);
        assertEquals(0, iommu.iommuNotifyFlags());
    }

    @Test
    void aRefusedRegistrationIsUndone() {
        ops.refuseDevIotlb = true;
        IommuNotifier dev = notifier("dev", IommuNotifier.DEVIOTLB_UNMAP, 0, 0xffff, 0);
        assertThrows(IllegalStateException.class, () -> iommu.registerIommuNotifier(dev));
        assertEquals(0, iommu.iommuNotifyFlags());
        iommu.notifyIommu(0, new IommuTlbEvent(IommuNotifier.DEVIOTLB_UNMAP,
                new IommuTlbEntry(null, 0, 0, 0xfff, IommuOps.IOMMU_NONE)));
        assertEquals(List.of(), heard, "the refused notifier is not registered");
    }

    @Test
    void eventsReachNotifiersByContextRangeAndKind() {
        iommu.registerIommuNotifier(notifier("low0", IommuNotifier.MAP, 0x0000, 0x3fff, 0));
        iommu.registerIommuNotifier(notifier("high0", IommuNotifier.IOTLB_EVENTS, 0x4000, 0x7fff, 0));
        iommu.registerIommuNotifier(notifier("all1", IommuNotifier.MAP, 0x0000, 0x7fff, 1));
        iommu.notifyIommu(0, map(0x1000, 0xfff));
        iommu.notifyIommu(0, map(0x5000, 0xfff));
        iommu.notifyIommu(0, new IommuTlbEvent(IommuNotifier.UNMAP,
                new IommuTlbEntry(null, 0x1000, 0, 0xfff, IommuOps.IOMMU_NONE)));
        iommu.notifyIommu(1, map(0x2000, 0xfff));
        assertEquals(List.of("low0 0x1000+0xfff perm=3", "high0 0x5000+0xfff perm=3", "all1 0x2000+0xfff perm=3"),
                heard);
    }

    @Test
    void deviceIotlbNotifiersGetCroppedEntriesOthersMustBeInside() {
        iommu.registerIommuNotifier(notifier("dev", IommuNotifier.DEVIOTLB_UNMAP, 0x1800, 0x27ff, 0));
        iommu.notifyIommu(0, new IommuTlbEvent(IommuNotifier.DEVIOTLB_UNMAP,
                new IommuTlbEntry(null, 0x0000, 0, 0x3fff, IommuOps.IOMMU_NONE)));
        assertEquals(List.of("dev 0x1800+0xfff perm=0"), heard);
        iommu.registerIommuNotifier(notifier("map", IommuNotifier.MAP, 0x1000, 0x1fff, 0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> iommu.notifyIommu(0, map(0x0000, 0x3fff)));
        assertTrue(e.getMessage().contains("notifierStart=0x1000"), e.getMessage());
    }

    @Test
    void genericReplayNotifiesEveryMappedPage() {
        IommuNotifier n = notifier("r", IommuNotifier.MAP, 0, 0x7fff, 0);
        iommu.iommuReplay(n);
        assertEquals(List.of("r 0x0+0xfff perm=3", "r 0x2000+0xfff perm=3", "r 0x4000+0xfff perm=3",
                "r 0x6000+0xfff perm=3"), heard);
    }

    @Test
    void anIommuThatReplaysItselfIsAskedFirst() {
        MemoryRegion custom = m.iommu("custom", 0x8000, new IommuOps() {
            @Override
            public IommuTlbEntry translate(long addr, int flag, int iommuIdx) {
                throw new AssertionError("generic replay must not run");
            }

            @Override
            public boolean replay(MemoryRegion region, IommuNotifier notifier) {
                heard.add("own replay of " + region.name());
                return true;
            }
        });
        custom.iommuReplay(notifier("r", IommuNotifier.MAP, 0, 0x7fff, 0));
        assertEquals(List.of("own replay of custom"), heard);
    }

    @Test
    void unmapRangeAndAliasesOfTheIommu() {
        MemoryRegion alias = m.alias("iommu-alias", iommu, 0, 0x8000);
        IommuNotifier n = notifier("n", IommuNotifier.UNMAP, 0x2000, 0x2fff, 0);
        alias.registerIommuNotifier(n);
        assertEquals(IommuNotifier.UNMAP, iommu.iommuNotifyFlags(), "registered on the IOMMU behind the alias");
        MemoryRegion.unmapIommuNotifierRange(n);
        assertEquals(List.of("n 0x2000+0xfff perm=0"), heard);
        assertThrows(IllegalArgumentException.class,
                () -> iommu.registerIommuNotifier(notifier("x", IommuNotifier.MAP, 0, 1, 2)), "no context 2");
        MemoryRegion ram = m.ram("ram", 0x1000);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ram.registerIommuNotifier(n));
        assertTrue(e.getMessage().contains("region=ram kind=ram"), e.getMessage());
    }
}
