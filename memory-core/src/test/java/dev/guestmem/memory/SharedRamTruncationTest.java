package dev.guestmem.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.guestmem.memory.internal.access.FileRam;
import dev.guestmem.memory.internal.access.RamFaultWarnings;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Guest RAM over a real file, truncated to half its length while threads read and write all of it: (a) by this
 * process ({@code FileChannel.truncate}), (b) by a second process (native-test-images' {@code guestmem-peer}, which
 * maps the file shared and calls {@code ftruncate}), (c) the same with an unsealed memfd that a peer created, which
 * the guest maps through {@code /proc/PID/fd/N}. One thread per access family, each over the whole block:
 * <ul>
 *   <li>the address space's loads and stores ({@code ldqLe}, {@code stqLe}, {@code ldlBe});</li>
 *   <li>a {@link SoftTlb} of its own (loads, stores, the sticky result);</li>
 *   <li>a direct {@link MemoryRegionCache} over the whole block (loads, stores, bulk reads and writes);</li>
 *   <li>DMA mappings ({@code map}/{@code unmap}, for reading and writing, across the new end of the file);</li>
 *   <li>the address space's bulk copies and fills ({@code read}, {@code write}, {@code set}) across the new end.</li>
 * </ul>
 * Each thread runs {@value #WARM_UP} rounds first, so that the JIT has compiled its accesses when the file shrinks
 * (in compiled code the fault arrives as an asynchronous error; see {@link RamFaults}), then goes on until it has run
 * {@value #AFTER} rounds that began after the truncation returned.
 *
 * <p>Forbidden: a JVM crash; any exception in a thread; from the part still inside the file, a value other than the
 * file's word (the first quarter, never written) or the thread's own last store (its scratch page in the second
 * quarter), or a result other than OK; after the truncation returned, an access to the part gone from the file that
 * does not end in {@link MemTxResult#ERROR} (loads: 0); more than one warning for the block. Required: every thread
 * met the error after the truncation.
 */
class SharedRamTruncationTest {
    static final long BASE = 0x4000_0000L;
    static final long SIZE = 0x10_0000;
    /** What the truncation leaves of the file. */
    static final long KEEP = SIZE / 2;
    /** The first quarter: never written, so it always holds {@link FileRam#word}. */
    static final long STABLE = KEEP / 2;
    static final long PAGE = 0x1000;
    static final int WARM_UP = 5_000;
    static final int AFTER = 100;
    private static final long GIVE_UP_SECONDS = 120;
    private static final MemTxAttrs ATTRS = MemTxAttrs.UNSPECIFIED;
    private static final ValueLayout.OfLong LE = FileRam.LE;

    @TempDir
    Path dir;

    @RegisterExtension
    final RamFaultWarnings warnings = new RamFaultWarnings();

    @Test
    void truncatedByThisProcess() throws Exception {
        run(file -> file.channel.truncate(KEEP));
    }

    @Test
    void truncatedByAnotherProcess() throws Exception {
        run(file -> {
            PeerProcess.Result r = PeerProcess.run(file.path, "truncate", Long.toString(KEEP));
            assertEquals(List.of("ok truncate"), r.lines());
            assertEquals(0, r.status());
        });
    }

    @Test
    void memfdTruncatedByAnotherProcess() throws Exception {
        try (PeerProcess.Memfd memfd = new PeerProcess.Memfd(SIZE, false)) {
            run(FileRam.over(memfd.path(), SIZE), file -> {
                PeerProcess.Result r = PeerProcess.run(file.path, "truncate", Long.toString(KEEP));
                assertEquals(List.of("ok truncate"), r.lines());
            });
        }
    }

    interface Truncation {
        void truncate(FileRam file) throws IOException, InterruptedException;
    }

    private void run(Truncation truncation) throws Exception {
        run(new FileRam(dir, SIZE), truncation);
    }

    /** Runs the families over {@code ram}'s file (closed at the end), which {@code truncation} cuts to {@link #KEEP}. */
    private void run(FileRam ram, Truncation truncation) throws Exception {
        MemorySystem sys = new MemorySystem();
        MemoryRegion root = sys.container("root", -1);
        AddressSpace as = sys.addressSpace("as", root);
        as.setMaxBounceBufferSize(SIZE);
        try (FileRam file = ram) {
            MemoryRegion region = sys.ramFromSegment("shared.ram", file.segment);
            root.addSubregion(BASE, region);
            String idstr = region.ramBlock().idstr();
            MemoryRegionCache cache = MemoryRegionCache.init(as, BASE, SIZE, true);
            assertTrue(cache.isDirect());
            Shared shared = new Shared();
            List<Family> families = List.of(new Space(as, 0), new Tlb(as, 1), new Cache(cache, 2), new Dma(as, 3),
                    new Bulk(as, 4));
            List<Thread> threads = new ArrayList<>();
            for (Family f : families) {
                threads.add(Thread.ofPlatform().name("truncation-" + f.getClass().getSimpleName()).start(
                        () -> f.loop(shared)));
            }
            long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(GIVE_UP_SECONDS);
            awaitRounds(families, shared, WARM_UP, giveUp);
            truncation.truncate(file);
            shared.truncated = true; // volatile: rounds that begin after this see the file short
            for (Family f : families) {
                f.roundsAtTruncation = f.rounds.get();
            }
            awaitRounds(families, shared, AFTER, giveUp);
            shared.stop = true;
            for (Thread t : threads) {
                t.join();
            }
            cache.destroy();
            if (!shared.failures.isEmpty()) {
                Throwable first = shared.failures.peek();
                AssertionError e = new AssertionError(shared.failures.size() + " failures, the first: " + first, first);
                shared.failures.forEach(e::addSuppressed);
                throw e;
            }
            for (Family f : families) {
                assertTrue(f.errorsAfter.get() > 0, f.getClass().getSimpleName() + " never met the fault");
            }
            assertEquals(1, warnings.count(idstr), () -> "warnings: " + warnings.messages());
        }
    }

    /** Waits until every family ran {@code rounds} more rounds (since the truncation, once it happened). */
    private static void awaitRounds(List<Family> families, Shared shared, long rounds, long giveUp) {
        for (Family f : families) {
            while (f.rounds.get() - f.roundsAtTruncation < rounds && shared.failures.isEmpty()) {
                if (System.nanoTime() - giveUp > 0) {
                    fail(f.getClass().getSimpleName() + " ran " + f.rounds.get() + " rounds, still short of "
                            + rounds + " after " + GIVE_UP_SECONDS + " s");
                }
                LockSupport.parkNanos(1_000_000);
            }
        }
    }

    static final class Shared {
        volatile boolean truncated;
        volatile boolean stop;
        final ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
    }

    /** One thread's access family. Its checks throw {@link AssertionError}, which ends the thread as a failure. */
    abstract static class Family {
        final AtomicLong rounds = new AtomicLong();
        volatile long roundsAtTruncation;
        final AtomicLong errorsAfter = new AtomicLong();
        /** Region offset of this thread's scratch page: only it writes there. */
        final long scratch;
        final SplittableRandom rnd;

        Family(int index) {
            scratch = STABLE + index * PAGE;
            rnd = new SplittableRandom(index);
        }

        final void loop(Shared shared) {
            try {
                while (!shared.stop) {
                    boolean after = shared.truncated;
                    round(after);
                    rounds.incrementAndGet();
                }
            } catch (Throwable t) {
                shared.failures.add(t);
            }
        }

        /** One round of accesses; {@code after}: the truncation had returned before the round began. */
        abstract void round(boolean after);

        /** A word-aligned region offset in the stable quarter. */
        long stableWord() {
            return rnd.nextLong(STABLE / 8) * 8;
        }

        /** A word-aligned region offset in the part the truncation removes. */
        long lostWord() {
            return KEEP + rnd.nextLong((SIZE - KEEP) / 8) * 8;
        }

        /** A word-aligned region offset in this thread's scratch page. */
        long scratchWord() {
            return scratch + rnd.nextLong(PAGE / 8) * 8;
        }

        /**
         * Checks the result of an access to the part that is gone: an error once the truncation has returned, either
         * result while it may be running.
         */
        void lost(boolean after, int result, String what) {
            if (after) {
                assertEquals(MemTxResult.ERROR, result, what);
                errorsAfter.incrementAndGet();
            } else if (result != MemTxResult.OK) {
                assertEquals(MemTxResult.ERROR, result, what);
            }
        }
    }

    /** The address space's ld/st family. */
    static final class Space extends Family {
        private final AddressSpace as;
        private final int[] r = new int[1];

        Space(AddressSpace as, int index) {
            super(index);
            this.as = as;
        }

        @Override
        void round(boolean after) {
            long off = stableWord();
            assertEquals(FileRam.word(off), as.ldqLe(BASE + off, ATTRS, r), "stable word");
            assertEquals(MemTxResult.OK, r[0]);
            long s = scratchWord();
            long v = rnd.nextLong();
            assertEquals(MemTxResult.OK, as.stqLe(BASE + s, v, ATTRS));
            assertEquals((int) (v >>> 32), Integer.reverseBytes(as.ldlBe(BASE + s + 4, ATTRS, r)));
            long gone = lostWord();
            long w = as.ldqLe(BASE + gone, ATTRS, r);
            lost(after, r[0], "ldq");
            if (after) {
                assertEquals(0, w);
            }
            lost(after, as.stqLe(BASE + gone, v, ATTRS), "stq");
        }
    }

    /** A soft TLB of the thread's own. */
    static final class Tlb extends Family {
        private final SoftTlb tlb;

        Tlb(AddressSpace as, int index) {
            super(index);
            this.tlb = new SoftTlb(as);
        }

        @Override
        void round(boolean after) {
            long off = stableWord();
            assertEquals(FileRam.word(off), tlb.ldqLe(BASE + off));
            long s = scratchWord();
            int v = rnd.nextInt();
            tlb.stlLe(BASE + s, v);
            assertEquals(v, tlb.ldlLe(BASE + s));
            assertEquals(MemTxResult.OK, tlb.takeResult());
            long gone = lostWord();
            long w = tlb.ldqLe(BASE + gone);
            lost(after, tlb.takeResult(), "tlb ldq");
            if (after) {
                assertEquals(0, w);
            }
            tlb.stb(BASE + gone, v);
            lost(after, tlb.takeResult(), "tlb stb");
        }
    }

    /** A direct cache over the whole block, as virtio keeps its rings. */
    static final class Cache extends Family {
        private final MemoryRegionCache cache;
        private final int[] r = new int[1];
        private final byte[] buf = new byte[256];

        Cache(MemoryRegionCache cache, int index) {
            super(index);
            this.cache = cache;
        }

        @Override
        void round(boolean after) {
            long off = stableWord();
            assertEquals(FileRam.word(off), cache.ldqLe(off, ATTRS, r));
            assertEquals(MemTxResult.OK, r[0]);
            assertEquals(MemTxResult.OK, cache.read(off & ~0xffL, buf, 0, buf.length));
            assertEquals(FileRam.word(off & ~0xffL), MemorySegment.ofArray(buf).get(LE, 0));
            long s = scratchWord();
            long v = rnd.nextLong();
            assertEquals(MemTxResult.OK, cache.stqBe(s, v, ATTRS));
            assertEquals(v, cache.ldqBe(s, ATTRS, r));
            long gone = lostWord();
            lost(after, cache.stwLe(gone, (int) v, ATTRS), "cache stw");
            cache.lduwBe(gone, ATTRS, r);
            lost(after, r[0], "cache lduw");
            lost(after, cache.write(gone & ~0xffL, buf, 0, buf.length), "cache write");
        }
    }

    /** DMA mappings across the new end of the file: they bounce, and the copies meet the fault. */
    static final class Dma extends Family {
        private final AddressSpace as;

        Dma(AddressSpace as, int index) {
            super(index);
            this.as = as;
        }

        @Override
        void round(boolean after) {
            long len = 2 * PAGE;
            DmaMapping in = as.map(BASE + KEEP - PAGE, len, false, ATTRS);
            assertEquals(len, in.length());
            MemorySegment seg = in.segment();
            long off = rnd.nextLong((PAGE - 64) / 8) * 8; // below the last 64 bytes, which Bulk fills
            assertEquals(FileRam.word(KEEP - PAGE + off), seg.get(LE, off), "mapped from the part still there");
            if (after) {
                assertEquals(0, seg.get(LE, PAGE + off), "mapped from the part gone");
                errorsAfter.incrementAndGet();
            }
            as.unmap(in, false, len);
            DmaMapping out = as.map(BASE + scratch, PAGE, true, ATTRS);
            long v = rnd.nextLong();
            out.segment().set(LE, 0, v);
            as.unmap(out, true, 8);
            int[] r = new int[1];
            assertEquals(v, as.ldqLe(BASE + scratch, ATTRS, r));
            DmaMapping gone = as.map(BASE + lostWord(), 64, true, ATTRS);
            as.unmap(gone, true, gone.length());
        }
    }

    /** The address space's bulk copies and fills, across the new end of the file and inside the part kept. */
    static final class Bulk extends Family {
        private final AddressSpace as;
        private final byte[] buf = new byte[(int) (3 * PAGE)];

        Bulk(AddressSpace as, int index) {
            super(index);
            this.as = as;
        }

        @Override
        void round(boolean after) {
            long start = KEEP - PAGE - 8 * rnd.nextInt(16);
            int result = as.read(BASE + start, ATTRS, buf, 0, buf.length);
            lost(after, result, "read across the end");
            MemorySegment got = MemorySegment.ofArray(buf);
            for (long i = 0; start + i < KEEP - 64; i += 8) { // up to the bytes this thread's fill below writes
                assertEquals(FileRam.word(start + i), got.get(LE, i));
            }
            for (long i = KEEP - start; after && i < buf.length; i += 8) {
                assertEquals(0, got.get(LE, i), "read from the part gone");
            }
            byte c = (byte) rnd.nextInt();
            assertEquals(MemTxResult.OK, as.set(BASE + scratch, c, PAGE, ATTRS));
            assertEquals(MemTxResult.OK, as.read(BASE + scratch, ATTRS, buf, 0, (int) PAGE));
            assertEquals((c & 0xffL) * 0x0101_0101_0101_0101L, got.get(LE, rnd.nextLong(PAGE / 8) * 8));
            lost(after, as.set(BASE + KEEP - 64, c, 2 * PAGE, ATTRS), "fill across the end");
            lost(after, as.write(BASE + Math.min(lostWord(), SIZE - 512), ATTRS, buf, 0, 512), "write");
        }
    }
}
