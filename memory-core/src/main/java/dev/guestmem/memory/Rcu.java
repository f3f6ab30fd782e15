package dev.guestmem.memory;

import org.jctools.queues.atomic.MpscUnboundedAtomicArrayQueue;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Read-copy-update for guest memory, as QEMU's {@code util/rcu.c}: readers mark the stretches of code in which they
 * use memory they reached through a published view, and a writer that wants to free such memory waits for a
 * <em>grace period</em>, until every reader that was inside such a stretch when the wait began has left it.
 *
 * <h2>Readers</h2>
 * A thread {@link #register() registers} once (QEMU's {@code rcu_register_thread}) and gets a {@link Reader}; it
 * brackets its read-side critical sections with {@link Reader#lock()} and {@link Reader#unlock()} (QEMU's
 * {@code rcu_read_lock}/{@code rcu_read_unlock}), which nest and never block. Inside a section, memory the thread
 * reached through a view stays valid, whatever writers do meanwhile: a {@link RamBlock} freed by
 * {@link MemoryRegion#destroy()} is released only after the grace period. A vCPU thread typically locks around a run
 * of guest code, as QEMU's {@code cpu_exec} does, not around each access: a lock is one ordered store (a full fence),
 * an unlock one release store.
 *
 * <p>Threads that never register are safe too: every access through an {@link AddressSpace} (or a
 * {@link SoftTlb}) that loses a race with the release of the memory it is using is redone on the current view
 * (see {@link MemoryRegion#destroy()}). What registration adds is for code that keeps memory across accesses, as a
 * JIT that keeps a page's host segment while it runs translated code.
 *
 * <h2>Writers</h2>
 * {@link #synchronize()} (QEMU's {@code synchronize_rcu}) waits for a grace period; {@link #call(Runnable)}
 * (QEMU's {@code call_rcu}) runs an action after one, on this domain's reclaimer thread, and
 * {@link #barrier()} (QEMU's {@code rcu_barrier}) waits until every action queued before it has run.
 *
 * <p>The grace-period counter is a 64-bit epoch, so one phase suffices: a reader's lock copies the current epoch into
 * its slot and fences; a grace period increments the epoch and waits until each slot holds 0 (outside a section) or
 * the new epoch or later (a section that began after the increment, which therefore sees everything the writer
 * published before it).
 *
 * <p>Threading: {@link Reader}'s lock and unlock are for the thread that registered it; everything else may be called
 * from any thread. Waiting for a grace period inside one's own read-side section would never end, so
 * {@link #synchronize()} and {@link #barrier()} throw there instead. Nor wait for one while holding a lock that a
 * reader may wait for inside its section (a {@link MemorySystem}'s topology lock, when vCPU threads commit inside
 * their sections): that would deadlock as it does in QEMU, and cannot be detected here. Freeing never waits:
 * {@link MemoryRegion#destroy()} queues the free with {@link #call}.
 */
public final class Rcu {
    private static final System.Logger LOG = System.getLogger(Rcu.class.getName());
    private static final Rcu GLOBAL = new Rcu("guestmem-rcu");
    private static final VarHandle EPOCH;
    private static final VarHandle CTR;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            EPOCH = l.findVarHandle(Rcu.class, "epoch", long.class);
            CTR = l.findVarHandle(Reader.class, "ctr", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** How long an idle reclaimer thread waits for more work before it ends; the next {@link #call} starts another. */
    private static final long RECLAIMER_IDLE_NANOS = TimeUnit.SECONDS.toNanos(1);

    private final String name;
    /** The grace-period counter; only {@link #synchronize} increments it, under {@link #gpLock}. */
    @SuppressWarnings("unused") // accessed through EPOCH
    private volatile long epoch = 1;
    /** Registered readers; registration is rare, the grace period iterates a snapshot. */
    private final CopyOnWriteArrayList<Reader> readers = new CopyOnWriteArrayList<>();
    /** Serializes grace periods, so that each waits for a fresh epoch. */
    private final ReentrantLock gpLock = new ReentrantLock();
    /** Actions waiting for a grace period: many producers, the reclaimer the one consumer. */
    private final MpscUnboundedAtomicArrayQueue<Runnable> callbacks = new MpscUnboundedAtomicArrayQueue<>(64);
    private final Object reclaimerLock = new Object();
    /** Actions queued and actions run; guarded by {@link #reclaimerLock}, which {@link #barrier()} waits on. */
    private long queued;
    private long completed;
    /** The reclaimer thread, or null when none runs; guarded by {@link #reclaimerLock}. */
    private Thread reclaimer;
    private volatile long gracePeriods;

    /** A domain of its own, with its own readers and reclaimer: for tests and for isolated subsystems. */
    public Rcu(String name) {
        this.name = Objects.requireNonNull(name, "name");
    }

    /** The domain every {@link MemorySystem} uses (QEMU has one RCU for the whole process). */
    public static Rcu global() {
        return GLOBAL;
    }

    /**
     * Registers the calling thread as a reader (QEMU's {@code rcu_register_thread}). The reader belongs to this
     * thread; {@link Reader#close()} unregisters it.
     */
    public Reader register() {
        Reader r = new Reader(this, Thread.currentThread());
        readers.add(r);
        return r;
    }

    /** Registered readers, for diagnostics. */
    public int readerCount() {
        return readers.size();
    }

    /** Grace periods completed so far, for diagnostics and tests. */
    public long gracePeriods() {
        return gracePeriods;
    }

    /**
     * Waits until every reader that was inside a read-side section when this call began has left it (QEMU's
     * {@code synchronize_rcu}). Memory that was unreachable from the published views before this call began may
     * be released when it returns.
     *
     * @throws IllegalStateException if the calling thread is inside a read-side section of this domain
     */
    public void synchronize() {
        checkNotReading("synchronize");
        gpLock.lock();
        try {
            // Full fence: everything the caller published before (a view without the memory) is visible to a
            // reader that copies the new epoch, and the reads of the slots below come after the increment.
            final long target = (long) EPOCH.getVolatile(this) + 1;
            EPOCH.setVolatile(this, target);
            for (Reader r : readers) {
                awaitQuiescent(r, target);
            }
            readers.removeIf(r -> r.abandoned);
            gracePeriods++;
        } finally {
            gpLock.unlock();
        }
    }

    /**
     * Runs {@code action} on this domain's reclaimer thread after a grace period that begins after this call (QEMU's
     * {@code call_rcu}). Actions run in the order they were queued; one that throws is logged and the rest still
     * run. Never blocks.
     */
    public void call(Runnable action) {
        Objects.requireNonNull(action, "action");
        synchronized (reclaimerLock) {
            queued++;
            callbacks.offer(action);
            if (reclaimer == null) {
                reclaimer = Thread.ofPlatform().daemon().name(name + "-reclaimer").start(this::reclaim);
            } else {
                LockSupport.unpark(reclaimer);
            }
        }
    }

    /**
     * Waits until every action given to {@link #call} before this call has run (QEMU's {@code rcu_barrier}).
     *
     * @throws IllegalStateException if the calling thread is inside a read-side section, or is the reclaimer
     */
    public void barrier() {
        checkNotReading("barrier");
        synchronized (reclaimerLock) {
            if (Thread.currentThread() == reclaimer) {
                throw new IllegalStateException("rcu=" + name + ": barrier called from an RCU callback");
            }
            final long ticket = queued;
            boolean interrupted = false;
            while (completed < ticket) {
                try {
                    reclaimerLock.wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public String toString() {
        return "Rcu[" + name + ", readers=" + readers.size() + "]";
    }

    private void checkNotReading(String what) {
        Thread me = Thread.currentThread();
        for (Reader r : readers) {
            if (r.owner == me && r.depth > 0) {
                throw new IllegalStateException("rcu=" + name + " thread=" + me.getName() + " depth=" + r.depth
                        + ": " + what + " inside a read-side critical section would wait for itself");
            }
        }
    }

    /**
     * Waits until {@code r} is outside a section or inside one that began at epoch {@code target} or later, or until
     * its thread has ended: a thread that died inside a section (an exception that skipped its unlock) can use
     * nothing any more, so it would otherwise stall every grace period for good. Such a reader is dropped, with a
     * warning.
     */
    private void awaitQuiescent(Reader r, long target) {
        long parkNanos = 1_000;
        for (int spins = 0; ; spins++) {
            final long c = (long) CTR.getVolatile(r);
            if (c == 0 || c >= target) {
                return;
            }
            if (spins < 128) {
                Thread.onSpinWait();
            } else if (!r.owner.isAlive()) {
                // Thread.isAlive is false only after the thread has terminated: its last access is long done.
                r.abandoned = true;
                LOG.log(System.Logger.Level.WARNING, "rcu=" + name + " thread=" + r.owner.getName()
                        + ": ended inside a read-side critical section; its reader is dropped");
                return;
            } else {
                LockSupport.parkNanos(parkNanos);
                parkNanos = Math.min(parkNanos * 2, 1_000_000);
            }
        }
    }

    /** The reclaimer: takes what is queued, waits one grace period for the whole batch, runs it, repeats. */
    private void reclaim() {
        final ArrayList<Runnable> batch = new ArrayList<>();
        long idleSince = System.nanoTime();
        while (true) {
            callbacks.drain(batch::add);
            if (batch.isEmpty()) {
                synchronized (reclaimerLock) {
                    if (callbacks.isEmpty() && System.nanoTime() - idleSince >= RECLAIMER_IDLE_NANOS) {
                        reclaimer = null; // the next call() starts a new one
                        return;
                    }
                }
                LockSupport.parkNanos(this, RECLAIMER_IDLE_NANOS / 4);
                continue;
            }
            synchronize();
            for (Runnable action : batch) {
                try {
                    action.run();
                } catch (Throwable t) {
                    LOG.log(System.Logger.Level.ERROR, "rcu=" + name + ": a callback failed", t);
                }
            }
            synchronized (reclaimerLock) {
                completed += batch.size();
                reclaimerLock.notifyAll();
            }
            batch.clear();
            idleSince = System.nanoTime();
        }
    }

    /**
     * One registered thread's read-side state (QEMU's per-thread {@code rcu_reader_data}). Padded so that the slots of
     * different readers do not share a cache line with each other or with the objects allocated next to them.
     *
     * <p>Threading: {@link #lock()}, {@link #unlock()}, {@link #locked()} and {@link #close()} only on the thread
     * that registered it; the slot is read by grace periods on any thread.
     */
    public static final class Reader implements AutoCloseable {
        @SuppressWarnings("unused")
        private long p01, p02, p03, p04, p05, p06, p07;
        /** The epoch at the outermost lock, or 0 outside sections. Owner writes; grace periods read. */
        @SuppressWarnings("unused") // accessed through CTR
        private volatile long ctr;
        @SuppressWarnings("unused")
        private long p11, p12, p13, p14, p15, p16, p17;
        /** Nesting depth; owner only (read by {@link Rcu#checkNotReading} for the calling thread's own readers). */
        private int depth;
        private boolean closed;
        /** Set by a grace period that found the owner dead inside a section; the reader is then unregistered. */
        private volatile boolean abandoned;
        private final Rcu rcu;
        private final Thread owner;

        private Reader(Rcu rcu, Thread owner) {
            this.rcu = rcu;
            this.owner = owner;
        }

        /**
         * Enters a read-side critical section (QEMU's {@code rcu_read_lock}); sections nest. Allocation-free, never
         * blocks.
         */
        public void lock() {
            if (depth++ == 0) {
                if (closed) {
                    depth = 0;
                    throw new IllegalStateException("rcu=" + rcu.name + " thread=" + owner.getName()
                            + ": lock on a reader that was closed");
                }
                // Volatile store (a full fence): the slot is visible to a grace period before this thread loads any
                // view, so either the grace period waits for this section or the section sees what was published
                // before the grace period's epoch increment.
                CTR.setVolatile(this, (long) EPOCH.getVolatile(rcu));
            }
        }

        /** Leaves a read-side critical section (QEMU's {@code rcu_read_unlock}). */
        public void unlock() {
            if (depth <= 0) {
                throw new IllegalStateException("rcu=" + rcu.name + " thread=" + owner.getName()
                        + ": unlock without lock");
            }
            if (--depth == 0) {
                // Release: every access of the section is done before a grace period can see the slot empty.
                CTR.setRelease(this, 0L);
            }
        }

        /** Whether the owning thread is inside a section now. */
        public boolean locked() {
            return depth > 0;
        }

        /** The domain this reader belongs to. */
        public Rcu rcu() {
            return rcu;
        }

        /**
         * Unregisters (QEMU's {@code rcu_unregister_thread}). Idempotent.
         *
         * @throws IllegalStateException if the reader is inside a section
         */
        @Override
        public void close() {
            if (depth > 0) {
                throw new IllegalStateException("rcu=" + rcu.name + " thread=" + owner.getName() + " depth=" + depth
                        + ": a reader cannot unregister inside a read-side critical section");
            }
            if (!closed) {
                closed = true;
                rcu.readers.remove(this);
            }
        }
    }
}
