package dev.guestmem.memory;

import java.nio.ByteOrder;
import java.util.function.IntSupplier;
import java.util.function.LongSupplier;
import java.util.function.LongToIntFunction;
import java.util.function.LongUnaryOperator;

/**
 * One soft TLB's accesses as functions, so that a test written once runs against {@link SoftTlb} and {@link HostTlb},
 * which share no interface (and get none for the tests' sake). Each TLB's adapter ({@link #of(SoftTlb)},
 * {@link #of(HostTlb)}) passes its own methods; the discipline a TLB needs stays with whoever opens it, except the
 * check point, which is {@link HostTlb#checkpoint} for the fast TLB and nothing for the checked one (it checks the
 * view on every access).
 *
 * <p>Loads of 4 bytes come back zero-extended from {@link #ld}, as {@link Accesses} returns them; of the instruction
 * fetches only the 4-byte one is here, the one the tests share.
 */
final class TlbAccess {
    private final Loads data;
    private final LongToIntFunction fetch32;
    private final Stores stores;
    private final IntSupplier result;
    private final IntSupplier takeResult;
    private final LongSupplier missCount;
    private final Runnable checkpoint;
    private final FetchOp fetchOp;
    private final Cmpxchg cmpxchg;

    private TlbAccess(Loads data, LongToIntFunction fetch32, Stores stores, FetchOp fetchOp, Cmpxchg cmpxchg,
            IntSupplier result, IntSupplier takeResult, LongSupplier missCount, Runnable checkpoint) {
        this.data = data;
        this.fetch32 = fetch32;
        this.stores = stores;
        this.fetchOp = fetchOp;
        this.cmpxchg = cmpxchg;
        this.result = result;
        this.takeResult = takeResult;
        this.missCount = missCount;
        this.checkpoint = checkpoint;
    }

    /** Loads at guest-physical addresses, by width and byte order. */
    record Loads(LongToIntFunction ub, LongToIntFunction uwLe, LongToIntFunction uwBe, LongToIntFunction lLe,
            LongToIntFunction lBe, LongUnaryOperator qLe, LongUnaryOperator qBe) {
    }

    /** Stores at guest-physical addresses, by width and byte order. */
    record Stores(IntStore b, IntStore wLe, IntStore wBe, IntStore lLe, IntStore lBe, LongStore qLe, LongStore qBe) {
    }

    /** A store of 1, 2 or 4 bytes. */
    @FunctionalInterface
    interface IntStore {
        void store(long addr, int val);
    }

    /** A store of 8 bytes. */
    @FunctionalInterface
    interface LongStore {
        void store(long addr, long val);
    }

    /** The TLB's {@code atomicFetchOp}. */
    @FunctionalInterface
    interface FetchOp {
        long apply(AtomicOp op, long addr, long operand, int size, boolean bigEndian);
    }

    /** The TLB's {@code atomicCmpxchg}. */
    @FunctionalInterface
    interface Cmpxchg {
        long apply(long addr, long expected, long desired, int size, boolean bigEndian);
    }

    /** The checked TLB: no check points. */
    static TlbAccess of(SoftTlb t) {
        return new TlbAccess(new Loads(t::ldub, t::lduwLe, t::lduwBe, t::ldlLe, t::ldlBe, t::ldqLe, t::ldqBe),
                t::ldlCode,
                new Stores(t::stb, t::stwLe, t::stwBe, t::stlLe, t::stlBe, t::stqLe, t::stqBe),
                t::atomicFetchOp, t::atomicCmpxchg, t::result, t::takeResult, t::missCount, () -> { });
    }

    /** The fast TLB, which the caller has begun inside its reader's section; its check point is the TLB's. */
    static TlbAccess of(HostTlb t) {
        return new TlbAccess(new Loads(t::ldub, t::lduwLe, t::lduwBe, t::ldlLe, t::ldlBe, t::ldqLe, t::ldqBe),
                t::ldlCode,
                new Stores(t::stb, t::stwLe, t::stwBe, t::stlLe, t::stlBe, t::stqLe, t::stqBe),
                t::atomicFetchOp, t::atomicCmpxchg, t::result, t::takeResult, t::missCount, t::checkpoint);
    }

    /** A data load of {@code size} bytes in {@code order}, zero-extended. */
    long ld(long addr, int size, ByteOrder order) {
        return load(data, addr, size, order);
    }

    /** A store of the low {@code size} bytes of {@code v} in {@code order}. */
    void st(long addr, int size, ByteOrder order, long v) {
        boolean big = order == ByteOrder.BIG_ENDIAN;
        switch (size) {
            case 1 -> stores.b.store(addr, (int) v);
            case 2 -> (big ? stores.wBe : stores.wLe).store(addr, (int) v);
            case 4 -> (big ? stores.lBe : stores.lLe).store(addr, (int) v);
            default -> (big ? stores.qBe : stores.qLe).store(addr, v);
        }
    }

    long ldqLe(long addr) {
        return data.qLe.applyAsLong(addr);
    }

    long ldqBe(long addr) {
        return data.qBe.applyAsLong(addr);
    }

    int ldlLe(long addr) {
        return data.lLe.applyAsInt(addr);
    }

    int ldlCode(long addr) {
        return fetch32.applyAsInt(addr);
    }

    void stqLe(long addr, long v) {
        stores.qLe.store(addr, v);
    }

    long atomicFetchOp(AtomicOp op, long addr, long operand, int size, boolean bigEndian) {
        return fetchOp.apply(op, addr, operand, size, bigEndian);
    }

    long atomicCmpxchg(long addr, long expected, long desired, int size, boolean bigEndian) {
        return cmpxchg.apply(addr, expected, desired, size, bigEndian);
    }

    int result() {
        return result.getAsInt();
    }

    int takeResult() {
        return takeResult.getAsInt();
    }

    long missCount() {
        return missCount.getAsLong();
    }

    void checkpoint() {
        checkpoint.run();
    }

    private static long load(Loads l, long addr, int size, ByteOrder order) {
        boolean big = order == ByteOrder.BIG_ENDIAN;
        return switch (size) {
            case 1 -> l.ub.applyAsInt(addr);
            case 2 -> (big ? l.uwBe : l.uwLe).applyAsInt(addr);
            case 4 -> (big ? l.lBe : l.lLe).applyAsInt(addr) & 0xffff_ffffL;
            default -> (big ? l.qBe : l.qLe).applyAsLong(addr);
        };
    }
}
