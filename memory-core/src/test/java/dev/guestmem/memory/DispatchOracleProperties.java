package dev.guestmem.memory;

import dev.guestmem.memory.internal.dispatch.AddressSpaceDispatch;
import org.junit.jupiter.api.Test;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Random;

/**
 * Proves that the dispatch finds what the flat view holds: the random trees of {@link RenderOracleProperties} (the
 * same generator, with regions scaled to start, end and span pages), both address spaces of each tree given page
 * sizes of 1 KiB, 4 KiB or 64 KiB (often different ones, so that one view carries two dispatches), checked after
 * every change at every address where the answer can change: the edges the render oracle checks (window edges and
 * range edges, each +-1), the edges of the pages they fall in (+-1), 0 and 2^64 - 1. At each address the
 * dispatch's section must be the flat range's (region, region offset, read-only), lie inside that range and be a
 * QEMU piece of it (inside one page, or whole pages), the brute-force oracle must agree directly, and
 * {@link AddressSpace#translate} must give the same region and offset with QEMU's length rule. The sections of the
 * dispatch as QEMU lays it out ({@link AddressSpaceDispatch#qemuLayout}: the dispatch itself when built whole, a fresh
 * build when it was derived from an older one) must be exactly QEMU's pieces of the ranges, in order, with a subpage
 * container before the first piece of each shared page.
 *
 * <p>Why these addresses suffice: the render oracle's argument covers the flat view; the dispatch's answer can only
 * change where a range or a page begins or ends, and each such edge is checked on both sides.
 *
 * <p>System properties: {@code guestmem.dispatch.trees} (default {@value #DEFAULT_TREES}) and
 * {@code guestmem.dispatch.seed}; a failure names its tree's seed: rerun with
 * {@code -Dguestmem.dispatch.seed=<seed> -Dguestmem.dispatch.trees=1}.
 */
class DispatchOracleProperties {
    static final int DEFAULT_TREES = 1500;
    private static final long SEED_STEP = 0x9E3779B97F4A7C15L;
    private static final int[] PAGE_BITS = {10, 12, 16};

    @Test
    void dispatchAgreesWithTheFlatViewAndTheOracle() {
        int trees = Integer.getInteger("guestmem.dispatch.trees", DEFAULT_TREES);
        long seed = Long.getLong("guestmem.dispatch.seed", new Random().nextLong());
        System.out.println("DispatchOracleProperties: trees=" + trees + " seed=" + seed);
        Checker checker = new Checker();
        long t0 = System.nanoTime();
        for (int i = 0; i < trees; i++) {
            long treeSeed = seed + i * SEED_STEP;
            Random r = new Random(~treeSeed);
            int[] pageBits = {PAGE_BITS[r.nextInt(3)], PAGE_BITS[r.nextInt(3)]};
            long grain = switch (r.nextInt(5)) {
                case 0 -> 1;
                case 1 -> 1L << (pageBits[0] - 2);
                case 2 -> 1L << pageBits[0];
                case 3 -> 1L << (pageBits[0] + 4);
                default -> 1L << (pageBits[0] + AddressSpaceDispatch.BITS_PER_LEVEL); // spans tree levels
            };
            checker.rnd = r;
            try {
                new RenderOracleProperties.Case(treeSeed, pageBits, grain, checker).run();
            } catch (AssertionError e) {
                throw new AssertionError("pageBits=" + pageBits[0] + "," + pageBits[1] + " grain=" + U64.hex(grain)
                        + "; rerun this tree alone: -Dguestmem.dispatch.seed=" + treeSeed
                        + " -Dguestmem.dispatch.trees=1", e);
            }
        }
        System.out.printf("DispatchOracleProperties: %d trees, %d dispatch checks of %d sections (%d subpage"
                + " containers), %d address checks, %.1f s%n", trees, checker.dispatches, checker.sections,
                checker.subpages, checker.points, (System.nanoTime() - t0) / 1e9);
    }

    /** Checks one address space's dispatch at the addresses the render oracle used, and at their page edges. */
    static final class Checker implements RenderOracleProperties.ViewCheck {
        Random rnd = new Random(0);
        long dispatches;
        long sections;
        long subpages;
        long points;

        @Override
        public void check(AddressSpace as, MemoryRegion viewRoot, long[] addresses, String step) {
            FlatView view = as.flatView();
            AddressSpaceDispatch d = view.dispatch(as.pageBits());
            if (as.dispatch() != d) {
                throw new AssertionError(step + " " + as + ": dispatch() is not the view's dispatch for its page size");
            }
            String where = step + " " + as;
            checkSections(view, d.qemuLayout(), as.system().unassignedRegion(), where);
            long mask = (1L << d.pageBits()) - 1;
            ArrayList<Long> addrs = new ArrayList<>();
            for (long a : addresses) {
                long page = a & ~mask;
                for (long x : new long[] {a, page - 1, page, page + 1, a | mask, (a | mask) + 1, (a | mask) - 1}) {
                    addrs.add(x);
                }
            }
            addrs.add(0L);
            addrs.add(-1L);
            for (long a : addrs) {
                checkAddress(as, viewRoot, view, d, a, where);
            }
            // Again in random order: the MRU hint then misses and hits in other patterns.
            Collections.shuffle(addrs, rnd);
            for (long a : addrs) {
                checkAddress(as, viewRoot, view, d, a, where);
            }
            dispatches++;
            points += 2L * addrs.size();
        }

        private void checkAddress(AddressSpace as, MemoryRegion viewRoot, FlatView view, AddressSpaceDispatch d,
                                  long a, String where) {
            int s = d.sectionIndex(a);
            FlatRange fr = view.lookup(a);
            BruteForceResolver.Hit want = BruteForceResolver.resolveFromViewRoot(viewRoot, a);
            String at = where + " pageBits=" + d.pageBits() + " addr=" + U64.hex(a) + ": ";
            if (d.isSubpage(s)) {
                throw new AssertionError(at + "lookup returned subpage container " + s);
            }
            MemoryRegionSection sec = d.section(s);
            if (fr == null || want == null) {
                if (fr != null || want != null || s != AddressSpaceDispatch.UNASSIGNED
                        || sec.region() != as.system().unassignedRegion()) {
                    throw new AssertionError(at + "view has " + fr + ", oracle " + want + ", dispatch section " + s
                            + " " + sec);
                }
            } else {
                long offset = fr.offsetInRegion() + (a - fr.start());
                boolean inRange = U64.le(fr.start(), d.sectionFirst(s)) && U64.le(d.sectionFirst(s), a)
                        && U64.le(a, d.sectionLast(s)) && U64.le(d.sectionLast(s), fr.last());
                if (sec.region() != fr.region() || d.offsetInRegion(s, a) != offset || sec.readonly() != fr.readonly()
                        || sec.nonvolatile() != fr.nonvolatile() || !inRange
                        || sec.offsetWithinRegion() != d.offsetInRegion(s, d.sectionFirst(s))
                        || want.region() != sec.region() || want.offset() != offset) {
                    throw new AssertionError(at + "view has " + fr + ", oracle " + want + ", dispatch section " + s
                            + " " + sec + " offset " + U64.hex(d.offsetInRegion(s, a)));
                }
            }
            if (d.sectionIndex(a) != s) {
                throw new AssertionError(at + "a second lookup (MRU) gave " + d.sectionIndex(a) + ", not " + s);
            }
            checkTranslate(as, d, s, a, at);
        }

        private void checkTranslate(AddressSpace as, AddressSpaceDispatch d, int s, long a, String at) {
            long[] lens = {1, 8, 1L << d.pageBits(), -1L, rnd.nextLong()};
            long len = lens[rnd.nextInt(lens.length)];
            Translation t = as.translate(a, len, rnd.nextBoolean(), MemTxAttrs.UNSPECIFIED);
            MemoryRegionSection sec = d.section(s);
            BigInteger toEnd = BruteForceResolver.unsigned(d.sectionLast(s)).subtract(BruteForceResolver.unsigned(a))
                    .add(BigInteger.ONE);
            long wantLen = sec.region().isRam() ? BruteForceResolver.unsigned(len).min(toEnd).longValue() : len;
            if (t.region() != sec.region() || t.xlat() != d.offsetInRegion(s, a) || t.len() != wantLen
                    || t.readonly() != sec.readonly()) {
                throw new AssertionError(at + "translate(len=" + U64.hex(len) + ") gave " + t + ", section " + sec
                        + " wants len " + U64.hex(wantLen));
            }
        }

        /** The sections are QEMU's pieces of the ranges, in order, each shared page's container first. */
        private void checkSections(FlatView view, AddressSpaceDispatch d, MemoryRegion unassigned, String where) {
            long mask = (1L << d.pageBits()) - 1;
            List<long[]> pieces = new ArrayList<>(); // first, last, range index
            for (int i = 0; i < view.rangeCount(); i++) {
                FlatRange r = view.range(i);
                BigInteger pos = BruteForceResolver.unsigned(r.start());
                BigInteger end = BruteForceResolver.unsigned(r.last()).add(BigInteger.ONE);
                BigInteger page = BigInteger.valueOf(mask + 1);
                while (pos.compareTo(end) < 0) {
                    BigInteger pieceEnd;
                    if (pos.mod(page).signum() != 0) {
                        pieceEnd = pos.divide(page).add(BigInteger.ONE).multiply(page).min(end); // head subpage
                    } else if (end.subtract(pos).compareTo(page) >= 0) {
                        pieceEnd = end.divide(page).multiply(page);                             // whole pages
                    } else {
                        pieceEnd = end;                                                         // tail subpage
                    }
                    pieces.add(new long[] {pos.longValue(), pieceEnd.subtract(BigInteger.ONE).longValue(), i});
                    pos = pieceEnd;
                }
            }
            if (d.section(0).region() != unassigned || d.sectionFirst(0) != 0
                    || d.sectionLast(0) != -1L) {
                throw new AssertionError(where + ": section 0 is not the unassigned whole space");
            }
            HashSet<Long> containerPages = new HashSet<>();
            int next = 0;
            for (int s = 1; s < d.sectionCount(); s++) {
                if (d.isSubpage(s)) {
                    long page = d.sectionFirst(s);
                    if ((page & mask) != 0 || d.sectionLast(s) != (page | mask) || d.section(s) != null
                            || !containerPages.add(page)) {
                        throw new AssertionError(where + ": bad subpage container " + s);
                    }
                    subpages++;
                    continue;
                }
                if (next == pieces.size()) {
                    throw new AssertionError(where + ": more sections than QEMU's pieces of the ranges");
                }
                long[] p = pieces.get(next++);
                boolean whole = (p[0] & mask) == 0 && ((p[1] + 1) & mask) == 0;
                if (d.sectionFirst(s) != p[0] || d.sectionLast(s) != p[1]
                        || d.section(s).region() != view.range((int) p[2]).region()
                        || (!whole && !containerPages.contains(p[0] & ~mask))) {
                    throw new AssertionError(where + ": section " + s + " [" + U64.hex(d.sectionFirst(s)) + ", "
                            + U64.hex(d.sectionLast(s)) + "] is not piece [" + U64.hex(p[0]) + ", " + U64.hex(p[1])
                            + "] of range " + p[2] + (whole ? "" : " or its page has no container yet"));
                }
            }
            if (next != pieces.size()) {
                throw new AssertionError(where + ": " + (pieces.size() - next) + " pieces have no section");
            }
            sections += d.sectionCount();
        }
    }
}
