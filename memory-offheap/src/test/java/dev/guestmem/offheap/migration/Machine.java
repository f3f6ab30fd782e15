package dev.guestmem.offheap.migration;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.RamBlock;
import dev.guestmem.memory.RamList;
import dev.guestmem.memory.U64;
import dev.guestmem.offheap.HostMemoryBackend;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A test machine: RAM regions from real backends, mapped one after another (each at a multiple of 16 MiB) in one
 * address space, so that guest stores through it mark the dirty bitmaps. Closing it unmaps and destroys them.
 */
final class Machine implements AutoCloseable {
    /** One RAM region: its name, size in bytes and backend. */
    record Ram(String name, long size, MemorySystem.RamAllocator backend) {
    }

    static final long SLOT = 16L << 20;

    final MemorySystem system;
    final AddressSpace as;
    final List<MemoryRegion> regions = new ArrayList<>();
    private final MemoryRegion root;

    Machine(int pageBits, Ram... rams) {
        this.system = new MemorySystem(MemorySystem.ANONYMOUS_RAM, false, pageBits);
        this.root = system.container("system", U64.SIZE_2_64);
        for (Ram r : rams) {
            regions.add(system.ram(r.name(), r.size(), r.backend()));
        }
        system.transaction(() -> {
            for (int i = 0; i < regions.size(); i++) {
                root.addSubregion(i * SLOT, regions.get(i));
            }
        });
        this.as = system.addressSpace("memory", root, pageBits);
    }

    /** The usual test machine: an Arena block, an anonymous mmap and a memfd, 4 KiB target pages. */
    static Machine threeBackends() {
        return new Machine(12, new Ram("pc.ram", 3 << 20, MemorySystem.ANONYMOUS_RAM),
                new Ram("ram-anon", 2 << 20, HostMemoryBackend.anonymous().build()),
                new Ram("vga.vram", 1 << 20, HostMemoryBackend.memfd().build()));
    }

    RamList ramList() {
        return system.ramList();
    }

    RamBlock block(int i) {
        return regions.get(i).ramBlock();
    }

    /** Guest-physical address of byte {@code offset} of region {@code i}. */
    long address(int i, long offset) {
        return i * SLOT + offset;
    }

    /**
     * Fills every block: about a third of the pages (chosen by {@code seed}) zero, the rest random bytes, so the
     * stream has data pages and zero pages in runs of both kinds.
     */
    void fillRandom(long seed) {
        Random rnd = new Random(seed);
        long page = 1L << system.ramList().pageBits();
        for (MemoryRegion r : regions) {
            MemorySegment m = r.ramSegment();
            byte[] bytes = new byte[(int) page];
            for (long off = 0; off < r.ramBlock().usedLength(); off += page) {
                int len = (int) Math.min(page, r.ramBlock().usedLength() - off);
                if (rnd.nextInt(3) == 0) {
                    m.asSlice(off, len).fill((byte) 0);
                } else {
                    rnd.nextBytes(bytes);
                    MemorySegment.copy(bytes, 0, m, ValueLayout.JAVA_BYTE, off, len);
                }
            }
        }
    }

    /** Every used byte of every block set to {@code b}. */
    void fill(byte b) {
        for (MemoryRegion r : regions) {
            r.ramSegment().asSlice(0, r.ramBlock().usedLength()).fill(b);
        }
    }

    /** A copy of every block's used bytes, in region order. */
    List<byte[]> contents() {
        List<byte[]> out = new ArrayList<>();
        for (MemoryRegion r : regions) {
            out.add(r.ramSegment().asSlice(0, r.ramBlock().usedLength()).toArray(ValueLayout.JAVA_BYTE));
        }
        return out;
    }

    @Override
    public void close() {
        system.destroyAddressSpace(as);
        system.transaction(() -> {
            for (MemoryRegion r : regions) {
                root.delSubregion(r);
            }
        });
        for (MemoryRegion r : regions) {
            r.destroy();
        }
        root.destroy();
    }
}
