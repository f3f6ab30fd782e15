package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;

import java.util.SplittableRandom;

/**
 * The maps and address sets shared by the access-path benchmarks ({@link TranslateBenchmark},
 * {@link MmioDispatchBenchmark}, {@link BulkCopyBenchmark}), so that they all measure the same kind of machine.
 *
 * <p>A map of {@code regions} regions ({@link #build}): a 2^64 root container; the <em>working set</em>, one RAM
 * region of {@code workingSetBytes} at guest-physical {@link #RAM_BASE}; and {@code regions - 1} small
 * <em>fillers</em> from 4 GiB up, in groups of four per 16 KiB ({@link #fillerAddr}, {@link #fillerSize}):
 * <ol start="0">
 *   <li>an I/O region of 2 KiB at the group's first page,</li>
 *   <li>an I/O region of 2 KiB in the second half of that page, so the page is shared (a subpage),</li>
 *   <li>a 4 KiB alias into a 64 KiB RAM block, on a page of its own (RAM as the dispatch sees it),</li>
 *   <li>an I/O region of 256 bytes at the start of the next page, the rest of that page a hole (a subpage with
 *   a hole).</li>
 * </ol>
 * The fourth page of a group is a hole. 100,000 regions span about 400 MiB above 4 GiB.
 */
final class AccessMaps {
    /** Addresses in one precomputed set (the 1 Mi random addresses). */
    static final int ADDRESSES = 1 << 20;
    /** Guest-physical address of the working-set RAM: 1 GiB, aligned for every working set up to 1 GiB. */
    static final long RAM_BASE = 1L << 30;
    /** Guest-physical address of the first filler. */
    static final long FILLER_BASE = 1L << 32;
    /** Bytes per group of four fillers. */
    static final long GROUP_STRIDE = 0x4000;
    /** The RAM block the alias fillers look into. */
    static final long BACKING_SIZE = 0x1_0000;

    /** A built map: its memory system, root, one address space with 4 KiB pages, and the working-set RAM. */
    record Map(MemorySystem system, MemoryRegion root, AddressSpace addressSpace, MemoryRegion ram) {
    }

    private AccessMaps() {
    }

    /**
     * A map of {@code regions} regions (at least 1: the working set) in a memory system with anonymous RAM, built in
     * one transaction. Filler devices read 0 and ignore writes.
     */
    static Map build(int regions, long workingSetBytes) {
        if (regions < 1) {
            throw new IllegalArgumentException("regions=" + regions + ": the working set is one of them");
        }
        MemorySystem system = new MemorySystem(MemorySystem.ANONYMOUS_RAM);
        MemoryRegion root = system.container("system", U64.SIZE_2_64);
        MemoryRegion ram = system.ram("ram", workingSetBytes);
        MemoryRegionOps ops = MemoryRegionOps.builder()
                .read((addr, size) -> 0)
                .write((addr, data, size) -> { })
                .build();
        system.transaction(() -> {
            root.addSubregion(RAM_BASE, ram);
            MemoryRegion backing = regions > 1 ? system.ram("backing", BACKING_SIZE) : null;
            for (int i = 0; i < regions - 1; i++) {
                MemoryRegion filler = i % 4 == 2
                        ? system.alias("alias" + i, backing, (i * 0x1000L) % BACKING_SIZE, fillerSize(i))
                        : system.io("io" + i, fillerSize(i), ops);
                root.addSubregion(fillerAddr(i), filler);
            }
        });
        return new Map(system, root, system.addressSpace("memory", root), ram);
    }

    /** Guest-physical address of filler {@code i} (0-based). */
    static long fillerAddr(int i) {
        long group = FILLER_BASE + (i / 4) * GROUP_STRIDE;
        return group + switch (i % 4) {
            case 0 -> 0;
            case 1 -> 0x800;
            case 2 -> 0x1000;
            default -> 0x2000;
        };
    }

    /** Size in bytes of filler {@code i}. */
    static long fillerSize(int i) {
        return switch (i % 4) {
            case 0, 1 -> 0x800;
            case 2 -> 0x1000;
            default -> 0x100;
        };
    }

    /**
     * {@link #ADDRESSES} guest-physical addresses, each a multiple of {@code align} bytes, uniformly at random in
     * {@code [base, base + span - align]}; the same for the same seed.
     */
    static long[] randomAddresses(long seed, long base, long span, int align) {
        SplittableRandom random = new SplittableRandom(seed);
        long[] out = new long[ADDRESSES];
        long slots = span / align;
        for (int i = 0; i < out.length; i++) {
            out[i] = base + random.nextLong(slots) * align;
        }
        return out;
    }

    /**
     * {@link #ADDRESSES} guest-physical addresses, 8-byte aligned, each in a region of the map picked uniformly at
     * random (the working set or one of the {@code regions - 1} fillers), so consecutive lookups rarely hit the same
     * section.
     */
    static long[] addressesAcrossMap(long seed, int regions, long workingSetBytes) {
        SplittableRandom random = new SplittableRandom(seed);
        long[] out = new long[ADDRESSES];
        for (int i = 0; i < out.length; i++) {
            int r = random.nextInt(regions) - 1; // -1: the working set
            long base = r < 0 ? RAM_BASE : fillerAddr(r);
            long size = r < 0 ? workingSetBytes : fillerSize(r);
            out[i] = base + random.nextLong(size / 8) * 8;
        }
        return out;
    }
}
