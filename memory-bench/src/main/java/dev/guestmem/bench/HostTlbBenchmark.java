package dev.guestmem.bench;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DirtyMemoryClient;
import dev.guestmem.memory.HostTlb;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.Rcu;
import dev.guestmem.memory.SoftTlb;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.CompilerControl;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;

/**
 * Whether {@link HostTlb} is at the JVM's limit for a translated guest access, one 8-byte load or store per
 * invocation step, all in the same run:
 * <ul>
 *   <li>{@code raw*}: {@link MemorySegment} access to one segment of the working set's size, the limit for RAM;
 *   {@code rawAcquire*}, the same with the acquire read of a published reference per access, as the address space
 *   reads its published map: the raw limit for an access path that must see the current map at every access;</li>
 *   <li>{@code limit*}: a hand-written direct-mapped TLB of tags and host-address addends over ONE unbounded segment
 *   ({@code MemorySegment.NULL.reinterpret(Long.MAX_VALUE)}, a static final), the host address being guest address
 *   plus addend, as QEMU's {@code CPUTLBEntry}: the JVM's limit for a translated access. Its refill knows the one RAM
 *   region and costs nothing; {@code limitCalled*}, the same TLB with its refill out of line (a call, never
 *   inlined) and emptied at the start of each invocation, as {@code hostTlbLoad}/{@code hostTlbStore}: the
 *   hand-written limit for a TLB whose miss is a call, as every real TLB's is;</li>
 *   <li>{@code window*}: the same TLB over one bounded window (a static final segment holding all guest RAM, the
 *   addend leading to an offset in it): the safer layout a reserved mapping would give;</li>
 *   <li>{@code hostTlb*}: {@link HostTlb} of {@code tlbEntries} entries (fixed size), used inside its RCU section,
 *   flushed at the start of each invocation (at 1 MiB, 256 misses in 1 Mi accesses). A TLB that never misses while
 *   C2 profiles its caller gets its miss compiled as a trap instead of a call, and then runs as fast as
 *   {@code limit*}, whose refill is inlined; a user's TLB misses, so these rows keep the miss in the profile. Before
 *   the flush one fork in eight or ten ran that way (1.56 ns against 2.23-2.33 in the others, all ten compiled alike
 *   but for that call, by {@code -XX:+LogCompilation});</li>
 *   <li>{@code hostTlbResizing*}: {@link HostTlb} starting at {@code tlbEntries} and growing to 65,536 entries, with a
 *   check point per invocation (where it resizes);</li>
 *   <li>{@code softTlb*}: the checked {@link SoftTlb} of {@code tlbEntries} entries;</li>
 *   <li>{@code addressSpace*}: {@link AddressSpace#ldqLe}/{@link AddressSpace#stqLe}, no TLB;</li>
 *   <li>{@code hostTlbMiss*}: a {@link HostTlb} of one entry, so that nearly every access misses and refills from
 *   RAM (the pages are random), to compare with {@code addressSpace*}; {@code hostTlbMissStoreCode}, the same over
 *   RAM that CODE logs with nothing protected (the RAM of translated code), whose refill records the page's ram_addr
 *   and reads its CODE bit, and {@code hostTlbMissLoadCode} its load; {@code addressSpaceStoreCode}, the address
 *   space's store to that RAM, their baseline; {@code hostTlbMissStoreVgaCall}, the called store miss over RAM that VGA
 *   logs with every page marked (a framebuffer between two frames, RAM in a migration round), whose refill finds the
 *   page marked and fills it fast, and {@code addressSpaceStoreVgaCall}, its baseline;</li>
 *   <li>{@code *Call}: {@code hostTlbMiss*} with {@link HostTlb}'s miss methods (one per access, {@code ldqLeMiss},
 *   {@code stqLeMiss}) compiled out of line, and {@code addressSpace*} with the address space's access compiled out
 *   of line, each row in a JVM told so ({@code -XX:CompileCommand=dontinline}): one call per access on both sides.
 *   This is the miss a user meets: where misses are rare, C2 keeps the miss method out of the hit it inlines into the
 *   caller (too big for a call site that is not frequent), and a miss is a call that loads afresh what it needs. In the one-entry loops above, where every
 *   access misses, C2 may inline all of it into the loop and hoist the loads that stay the same from miss to miss
 *   (the range's record and its fields) out of it, or leave {@code stqLe} uninlined when its compiled code, miss
 *   included, has grown past {@code InlineSmallCode}: which of the two happens depends on what C2 compiled first;</li>
 *   <li>{@code limitMiss*}: the hand-written TLB of one entry, every access a refill of its two stores, and
 *   {@code limitMissStoreWide}, whose refill makes the five stores of a {@link HostTlb} refill: what the stores of a
 *   refill cost by themselves; {@code limitMiss*Call}, the same refill out of line (never inlined), as
 *   {@link HostTlb}'s.</li>
 * </ul>
 * Each invocation walks {@value SoftTlbBenchmark#ADDRESSES} precomputed random 8-byte-aligned addresses spread over the
 * working set ({@code workingSet}: 1 MiB or 64 MiB, 4 KiB pages); times are per access. Loads return the sum of what
 * they read; stores write the loop index. The RAM is one region at 1 GiB, alone in its address space.
 *
 * <p>Run: {@code ./guestmem bench HostTlbBenchmark}; one working set: {@code -p workingSet=1048576}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@OperationsPerInvocation(SoftTlbBenchmark.ADDRESSES)
public class HostTlbBenchmark {
    static final int PAGE_BITS = 12;
    static final long PAGE_MASK = -(1L << PAGE_BITS);
    static final long MAX_WORKING_SET = 64L << 20;
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final MemTxAttrs U = MemTxAttrs.UNSPECIFIED;

    private static final String NATIVE = "--enable-native-access=ALL-UNNAMED";
    private static final String QUIET = "-XX:CompileCommand=quiet";
    private static final String DONT_INLINE = "-XX:CompileCommand=dontinline,dev.guestmem.memory.";
    /** HostTlb's miss methods, one per access (ldqLeMiss, stqLeMiss, ...), which a caller's code calls. */
    private static final String TLB_MISS_CALLED = DONT_INLINE + "HostTlb::*Miss";
    private static final String AS_LOAD_CALLED = DONT_INLINE + "AddressSpace::ldqLe";
    private static final String AS_STORE_CALLED = DONT_INLINE + "AddressSpace::stqLe";

    /** The unbounded segment of the hand-written limit: base 0, every host address. */
    static final MemorySegment ALL = unbounded();
    /** The bounded window: one segment holding all guest RAM of the {@code window*} TLB, as a reservation would. */
    static final MemorySegment WINDOW = Arena.global().allocate(MAX_WORKING_SET, 4096);

    @SuppressWarnings("restricted") // the hand-written limit needs the unbounded segment, as HostTlb does
    private static MemorySegment unbounded() {
        return MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    }

    /** The working set, its random guest-physical addresses, and the raw baseline's segment of the same bytes. */
    @State(Scope.Thread)
    public static class WorkingSet {
        @Param({"1048576", "67108864"})
        public long workingSet;

        /** A reference published as the address space publishes its map: read with acquire by {@code rawAcquire*}. */
        static final class Published {
            volatile Object map = new Object();
        }

        final Published published = new Published();
        long[] offsets;
        /** Guest-physical: {@link SoftTlbBenchmark#RAM_BASE} plus each offset. */
        long[] addresses;
        MemorySegment raw;

        @Setup
        public void setup() {
            offsets = SoftTlbBenchmark.randomOffsets(workingSet, 42);
            addresses = new long[offsets.length];
            for (int i = 0; i < addresses.length; i++) {
                addresses[i] = SoftTlbBenchmark.RAM_BASE + offsets[i];
            }
            raw = Arena.ofAuto().allocate(workingSet, 4096);
            SoftTlbBenchmark.fill(raw);
            SoftTlbBenchmark.fill(WINDOW.asSlice(0, workingSet));
        }
    }

    /**
     * The hand-written TLB: {@code entries} direct-mapped entries of {@code [tag, addend]} over {@code seg}, the
     * guest's RAM at {@link SoftTlbBenchmark#RAM_BASE} being at {@code base} in {@code seg}. The miss path fills the
     * entry and retries; it knows the one region and does nothing else.
     */
    static final class LimitTlb {
        final long[] t;
        final long addend;

        LimitTlb(int entries, long base) {
            t = new long[2 * entries];
            empty();
            addend = base - SoftTlbBenchmark.RAM_BASE;
        }

        /** Every entry invalid, as a TLB's flush leaves it. */
        void empty() {
            for (int k = 0; k < t.length; k += 2) {
                t[k] = -1;
            }
        }

        /** {@link #refill}, never inlined: a refill out of line, as {@link HostTlb}'s. */
        @CompilerControl(CompilerControl.Mode.DONT_INLINE)
        int refillOutOfLine(long addr) {
            return refill(addr);
        }

        int refill(long addr) {
            final int k = ((int) (addr >>> PAGE_BITS) << 1) & (t.length - 2);
            t[k] = addr & PAGE_MASK;
            t[k + 1] = addend;
            return k;
        }
    }

    /**
     * A one-entry hand-written TLB whose refill makes the stores a {@link HostTlb} refill makes (the tag and addend of
     * the read part and of the write part, and the miss count) and nothing else: no lookup, no check. Beside the
     * one-entry {@link LimitTlb} (two stores per refill) it shows what the refill's stores alone cost a store miss.
     */
    static final class WideLimitTlb {
        final long[] read = {-1, 0};
        final long[] write = {-1, 0};
        final long addend;
        long misses;

        WideLimitTlb(long base) {
            addend = base - SoftTlbBenchmark.RAM_BASE;
        }

        void refill(long addr) {
            misses++;
            read[0] = addr & PAGE_MASK;
            read[1] = addend;
            write[0] = addr & PAGE_MASK;
            write[1] = addend;
        }
    }

    /** The guest: RAM, its address space, and the TLBs over it, all on the benchmark thread. */
    @State(Scope.Thread)
    public static class Guest {
        @Param({"1024"})
        public int tlbEntries;

        AddressSpace addressSpace;
        Rcu.Reader reader;
        HostTlb hostTlb;
        HostTlb resizing;
        HostTlb oneEntry;
        /** A one-entry TLB over RAM that CODE logs (nothing protected), as the RAM of translated code is. */
        HostTlb codeOneEntry;
        /** The address space of {@link #codeOneEntry}: its RAM logged by CODE. */
        AddressSpace codeAddressSpace;
        /**
         * A one-entry TLB over RAM that VGA logs, every page marked (a new block starts dirty, and nothing here takes its
         * bits), as a display's framebuffer between two frames or guest RAM during a migration round.
         */
        HostTlb vgaOneEntry;
        /** The address space of {@link #vgaOneEntry}: its RAM logged by VGA. */
        AddressSpace vgaAddressSpace;
        SoftTlb softTlb;
        LimitTlb limit;
        /** The hand-written TLB of {@code tlbEntries} entries whose refill is a call: {@code limitCalled*}. */
        LimitTlb limitCalled;
        LimitTlb window;
        LimitTlb limitOne;
        WideLimitTlb wideOne;

        @Setup
        public void setup(WorkingSet set) {
            MemorySystem system = new MemorySystem();
            MemoryRegion ram = system.ram("ram", set.workingSet);
            SoftTlbBenchmark.fill(ram.ramSegment());
            addressSpace = system.addressSpace("memory", SoftTlbBenchmark.buildMap(system, ram, 1));
            reader = system.rcu().register();
            hostTlb = new HostTlb(addressSpace, reader, U, tlbEntries, tlbEntries);
            resizing = new HostTlb(addressSpace, reader, U, tlbEntries, 1 << 16);
            oneEntry = new HostTlb(addressSpace, reader, U, 1, 1);
            MemoryRegion codeRam = system.ram("code-ram", set.workingSet);
            SoftTlbBenchmark.fill(codeRam.ramSegment());
            codeRam.setLog(true, DirtyMemoryClient.CODE);
            codeAddressSpace = system.addressSpace("code", SoftTlbBenchmark.buildMap(system, codeRam, 1));
            codeOneEntry = new HostTlb(codeAddressSpace, reader, U, 1, 1);
            MemoryRegion vgaRam = system.ram("vga-ram", set.workingSet);
            SoftTlbBenchmark.fill(vgaRam.ramSegment());
            vgaRam.setLog(true, DirtyMemoryClient.VGA);
            vgaAddressSpace = system.addressSpace("vga", SoftTlbBenchmark.buildMap(system, vgaRam, 1));
            vgaOneEntry = new HostTlb(vgaAddressSpace, reader, U, 1, 1);
            softTlb = new SoftTlb(addressSpace, tlbEntries, U);
            limit = new LimitTlb(tlbEntries, ram.ramSegment().address());
            limitCalled = new LimitTlb(tlbEntries, ram.ramSegment().address());
            window = new LimitTlb(tlbEntries, 0);
            limitOne = new LimitTlb(1, ram.ramSegment().address());
            wideOne = new WideLimitTlb(ram.ramSegment().address());
            hostTlb.begin();
            resizing.begin();
            oneEntry.begin();
            codeOneEntry.begin();
            vgaOneEntry.begin();
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            hostTlb.end();
            resizing.end();
            oneEntry.end();
            codeOneEntry.end();
            vgaOneEntry.end();
            reader.close();
        }
    }

    // ---------------------------------------------------------------- loads

    @Benchmark
    public long rawLoad(WorkingSet set) {
        final MemorySegment seg = set.raw;
        long sum = 0;
        for (long off : set.offsets) {
            sum += seg.get(U64_LE, off);
        }
        return sum;
    }

    /**
     * {@link #rawLoad} with, per access, the acquire read of a published reference, as {@link AddressSpace} reads its
     * published dispatch: the raw limit for an access path that must see the current map at every access.
     */
    @Benchmark
    public long rawAcquireLoad(WorkingSet set) {
        final MemorySegment seg = set.raw;
        final WorkingSet.Published published = set.published;
        long sum = 0;
        for (long off : set.offsets) {
            if (published.map == null) {
                throw new IllegalStateException("nothing published");
            }
            sum += seg.get(U64_LE, off);
        }
        return sum;
    }

    @Benchmark
    public long limitLoad(WorkingSet set, Guest guest) {
        final LimitTlb tlb = guest.limit;
        long sum = 0;
        for (long addr : set.addresses) {
            final long[] t = tlb.t;
            int k = ((int) (addr >>> PAGE_BITS) << 1) & (t.length - 2);
            if (t[k] != (addr & (PAGE_MASK | 7))) {
                k = tlb.refill(addr);
            }
            sum += ALL.get(U64_LE, addr + t[k + 1]);
        }
        return sum;
    }

    /**
     * {@link #limitLoad} with its refill out of line ({@link LimitTlb#refillOutOfLine}, never inlined) and the TLB
     * emptied first, as {@link #hostTlbLoad}: the hand-written limit for a TLB whose miss is a call.
     */
    @Benchmark
    public long limitCalledLoad(WorkingSet set, Guest guest) {
        guest.limitCalled.empty();
        return calledRefillLoads(guest.limitCalled, set.addresses);
    }

    /** {@link #limitLoad} with one entry: every access a refill of two stores. */
    @Benchmark
    public long limitMissLoad(WorkingSet set, Guest guest) {
        final LimitTlb tlb = guest.limitOne;
        long sum = 0;
        for (long addr : set.addresses) {
            final long[] t = tlb.t;
            int k = ((int) (addr >>> PAGE_BITS) << 1) & (t.length - 2);
            if (t[k] != (addr & (PAGE_MASK | 7))) {
                k = tlb.refill(addr);
            }
            sum += ALL.get(U64_LE, addr + t[k + 1]);
        }
        return sum;
    }

    /** {@link #limitMissLoad} with the refill out of line ({@link LimitTlb#refillOutOfLine}). */
    @Benchmark
    public long limitMissLoadCall(WorkingSet set, Guest guest) {
        return calledRefillLoads(guest.limitOne, set.addresses);
    }

    @Benchmark
    public long windowLoad(WorkingSet set, Guest guest) {
        final LimitTlb tlb = guest.window;
        long sum = 0;
        for (long addr : set.addresses) {
            final long[] t = tlb.t;
            int k = ((int) (addr >>> PAGE_BITS) << 1) & (t.length - 2);
            if (t[k] != (addr & (PAGE_MASK | 7))) {
                k = tlb.refill(addr);
            }
            sum += WINDOW.get(U64_LE, addr + t[k + 1]);
        }
        return sum;
    }

    @Benchmark
    public long hostTlbLoad(WorkingSet set, Guest guest) {
        guest.hostTlb.flush(); // see the class comment: its misses are in the profile, as a user's are
        return hostLoads(guest.hostTlb, set.addresses);
    }

    @Benchmark
    public long hostTlbResizingLoad(WorkingSet set, Guest guest) {
        guest.resizing.checkpoint();
        return hostLoads(guest.resizing, set.addresses);
    }

    @Benchmark
    public long hostTlbMissLoad(WorkingSet set, Guest guest) {
        return hostLoads(guest.oneEntry, set.addresses);
    }

    /** {@link #hostTlbMissLoad} with the miss a call: see the class comment. */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {NATIVE, QUIET, TLB_MISS_CALLED})
    public long hostTlbMissLoadCall(WorkingSet set, Guest guest) {
        return hostLoads(guest.oneEntry, set.addresses);
    }

    /** {@link #hostTlbMissLoadCode} with the miss a call. */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {NATIVE, QUIET, TLB_MISS_CALLED})
    public long hostTlbMissLoadCodeCall(WorkingSet set, Guest guest) {
        return hostLoads(guest.codeOneEntry, set.addresses);
    }

    @Benchmark
    public long hostTlbMissLoadCode(WorkingSet set, Guest guest) {
        return hostLoads(guest.codeOneEntry, set.addresses);
    }

    @Benchmark
    public long softTlbLoad(WorkingSet set, Guest guest) {
        final SoftTlb tlb = guest.softTlb;
        long sum = 0;
        for (long addr : set.addresses) {
            sum += tlb.ldqLe(addr);
        }
        return sum;
    }

    /** {@link #addressSpaceLoad} with the address space's load a call: the baseline of the {@code *Call} rows. */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {NATIVE, QUIET, AS_LOAD_CALLED})
    public long addressSpaceLoadCall(WorkingSet set, Guest guest) {
        return addressSpaceLoad(set, guest);
    }

    @Benchmark
    public long addressSpaceLoad(WorkingSet set, Guest guest) {
        final AddressSpace as = guest.addressSpace;
        long sum = 0;
        for (long addr : set.addresses) {
            sum += as.ldqLe(addr, U, null);
        }
        return sum;
    }

    // ---------------------------------------------------------------- stores

    @Benchmark
    public void rawStore(WorkingSet set) {
        SoftTlbBenchmark.rawStores(set.raw, set.offsets);
    }

    /** {@link #rawStore} with the acquire read of {@link #rawAcquireLoad} per access. */
    @Benchmark
    public void rawAcquireStore(WorkingSet set) {
        final MemorySegment seg = set.raw;
        final WorkingSet.Published published = set.published;
        final long[] offsets = set.offsets;
        for (int i = 0; i < offsets.length; i++) {
            if (published.map == null) {
                throw new IllegalStateException("nothing published");
            }
            seg.set(U64_LE, offsets[i], i);
        }
    }

    @Benchmark
    public void limitStore(WorkingSet set, Guest guest) {
        final LimitTlb tlb = guest.limit;
        final long[] addresses = set.addresses;
        for (int i = 0; i < addresses.length; i++) {
            final long addr = addresses[i];
            final long[] t = tlb.t;
            int k = ((int) (addr >>> PAGE_BITS) << 1) & (t.length - 2);
            if (t[k] != (addr & (PAGE_MASK | 7))) {
                k = tlb.refill(addr);
            }
            ALL.set(U64_LE, addr + t[k + 1], i);
        }
    }

    /** {@link #limitStore} with its refill a call and the TLB emptied first: {@link #limitCalledLoad}'s store. */
    @Benchmark
    public void limitCalledStore(WorkingSet set, Guest guest) {
        guest.limitCalled.empty();
        calledRefillStores(guest.limitCalled, set.addresses);
    }

    /** {@link #limitStore} with one entry: every access a refill of two stores. */
    @Benchmark
    public void limitMissStore(WorkingSet set, Guest guest) {
        final LimitTlb tlb = guest.limitOne;
        final long[] addresses = set.addresses;
        for (int i = 0; i < addresses.length; i++) {
            final long addr = addresses[i];
            final long[] t = tlb.t;
            int k = ((int) (addr >>> PAGE_BITS) << 1) & (t.length - 2);
            if (t[k] != (addr & (PAGE_MASK | 7))) {
                k = tlb.refill(addr);
            }
            ALL.set(U64_LE, addr + t[k + 1], i);
        }
    }

    /** {@link #limitMissStore} with the refill out of line ({@link LimitTlb#refillOutOfLine}). */
    @Benchmark
    public void limitMissStoreCall(WorkingSet set, Guest guest) {
        calledRefillStores(guest.limitOne, set.addresses);
    }

    /** {@link #limitMissStore} whose refill makes a {@link HostTlb} refill's five stores ({@link WideLimitTlb}). */
    @Benchmark
    public void limitMissStoreWide(WorkingSet set, Guest guest) {
        final WideLimitTlb tlb = guest.wideOne;
        final long[] addresses = set.addresses;
        for (int i = 0; i < addresses.length; i++) {
            final long addr = addresses[i];
            final long[] t = tlb.write;
            if (t[0] != (addr & (PAGE_MASK | 7))) {
                tlb.refill(addr);
            }
            ALL.set(U64_LE, addr + t[1], i);
        }
    }

    @Benchmark
    public void windowStore(WorkingSet set, Guest guest) {
        final LimitTlb tlb = guest.window;
        final long[] addresses = set.addresses;
        for (int i = 0; i < addresses.length; i++) {
            final long addr = addresses[i];
            final long[] t = tlb.t;
            int k = ((int) (addr >>> PAGE_BITS) << 1) & (t.length - 2);
            if (t[k] != (addr & (PAGE_MASK | 7))) {
                k = tlb.refill(addr);
            }
            WINDOW.set(U64_LE, addr + t[k + 1], i);
        }
    }

    @Benchmark
    public int hostTlbStore(WorkingSet set, Guest guest) {
        guest.hostTlb.flush(); // as hostTlbLoad
        return hostStores(guest.hostTlb, set.addresses);
    }

    @Benchmark
    public int hostTlbResizingStore(WorkingSet set, Guest guest) {
        guest.resizing.checkpoint();
        return hostStores(guest.resizing, set.addresses);
    }

    @Benchmark
    public int hostTlbMissStore(WorkingSet set, Guest guest) {
        return hostStores(guest.oneEntry, set.addresses);
    }

    /** {@link #hostTlbMissStore} with the miss a call: see the class comment. */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {NATIVE, QUIET, TLB_MISS_CALLED})
    public int hostTlbMissStoreCall(WorkingSet set, Guest guest) {
        return hostStores(guest.oneEntry, set.addresses);
    }

    /** {@link #hostTlbMissStoreCode} with the miss a call. */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {NATIVE, QUIET, TLB_MISS_CALLED})
    public int hostTlbMissStoreCodeCall(WorkingSet set, Guest guest) {
        return hostStores(guest.codeOneEntry, set.addresses);
    }

    /**
     * {@link #hostTlbMissStoreCall} on RAM that VGA logs, every page already marked: each store a miss whose fill finds
     * the page marked (with the asymmetric fence installed) and then the store with the dirty epoch's check.
     */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {NATIVE, QUIET, TLB_MISS_CALLED})
    public int hostTlbMissStoreVgaCall(WorkingSet set, Guest guest) {
        return hostStores(guest.vgaOneEntry, set.addresses);
    }

    @Benchmark
    public int hostTlbMissStoreCode(WorkingSet set, Guest guest) {
        return hostStores(guest.codeOneEntry, set.addresses);
    }

    @Benchmark
    public int softTlbStore(WorkingSet set, Guest guest) {
        return SoftTlbBenchmark.tlbStores(guest.softTlb, set.addresses);
    }

    @Benchmark
    public int addressSpaceStore(WorkingSet set, Guest guest) {
        return SoftTlbBenchmark.addressSpaceStores(guest.addressSpace, set.addresses);
    }

    /** {@link #addressSpaceStore} to RAM that CODE logs, nothing protected; the baseline of hostTlbMissStoreCode. */
    @Benchmark
    public int addressSpaceStoreCode(WorkingSet set, Guest guest) {
        return SoftTlbBenchmark.addressSpaceStores(guest.codeAddressSpace, set.addresses);
    }

    /** {@link #addressSpaceStore} with the address space's store a call: the baseline of the {@code *Call} rows. */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {NATIVE, QUIET, AS_STORE_CALLED})
    public int addressSpaceStoreCall(WorkingSet set, Guest guest) {
        return SoftTlbBenchmark.addressSpaceStores(guest.addressSpace, set.addresses);
    }

    /** The address space's store, a call, to {@link #hostTlbMissStoreVgaCall}'s RAM: its baseline. */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {NATIVE, QUIET, AS_STORE_CALLED})
    public int addressSpaceStoreVgaCall(WorkingSet set, Guest guest) {
        return SoftTlbBenchmark.addressSpaceStores(guest.vgaAddressSpace, set.addresses);
    }

    /** {@link #addressSpaceStoreCode} with the address space's store a call. */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {NATIVE, QUIET, AS_STORE_CALLED})
    public int addressSpaceStoreCodeCall(WorkingSet set, Guest guest) {
        return SoftTlbBenchmark.addressSpaceStores(guest.codeAddressSpace, set.addresses);
    }

    // ---------------------------------------------------------------- the loops

    /** 8-byte loads at each of {@code addresses} through the hand-written {@code tlb}, its refill a call. */
    static long calledRefillLoads(LimitTlb tlb, long[] addresses) {
        long sum = 0;
        for (long addr : addresses) {
            final long[] t = tlb.t;
            int k = ((int) (addr >>> PAGE_BITS) << 1) & (t.length - 2);
            if (t[k] != (addr & (PAGE_MASK | 7))) {
                k = tlb.refillOutOfLine(addr);
            }
            sum += ALL.get(U64_LE, addr + t[k + 1]);
        }
        return sum;
    }

    /** 8-byte stores of the loop index through the hand-written {@code tlb}, its refill a call. */
    static void calledRefillStores(LimitTlb tlb, long[] addresses) {
        for (int i = 0; i < addresses.length; i++) {
            final long addr = addresses[i];
            final long[] t = tlb.t;
            int k = ((int) (addr >>> PAGE_BITS) << 1) & (t.length - 2);
            if (t[k] != (addr & (PAGE_MASK | 7))) {
                k = tlb.refillOutOfLine(addr);
            }
            ALL.set(U64_LE, addr + t[k + 1], i);
        }
    }

    /** {@code ldq_le} at each of {@code addresses} through {@code tlb}; returns the sum. */
    static long hostLoads(HostTlb tlb, long[] addresses) {
        long sum = 0;
        for (long addr : addresses) {
            sum += tlb.ldqLe(addr);
        }
        return sum;
    }

    /** {@code stq_le} of the loop index at each of {@code addresses} through {@code tlb}; returns its result. */
    static int hostStores(HostTlb tlb, long[] addresses) {
        for (int i = 0; i < addresses.length; i++) {
            tlb.stqLe(addresses[i], i);
        }
        return tlb.takeResult();
    }
}
