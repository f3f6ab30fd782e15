package dev.guestmem.memory;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One machine's global lock: QEMU's big QEMU lock ({@code qemu_global_mutex}, the BQL), under which device models
 * run. {@link MemorySystem#globalLock()} is the one of a system.
 *
 * <h2>What takes it</h2>
 * <ul>
 *   <li><b>MMIO</b>: an access that reaches the callbacks of a region whose {@link MemoryRegionOps} keep global
 *   locking (the default, as in QEMU, also for ROM devices and unassigned memory) runs under this lock. The access
 *   path takes it only when the calling thread does not hold it already, and releases it after the access
 *   (after each piece of a bulk copy), as QEMU's {@code prepare_mmio_access} does. Ops built with
 *   {@link MemoryRegionOps.Builder#clearGlobalLocking()} (QEMU's {@code memory_region_clear_global_locking}) are
 *   dispatched without it: their device synchronizes itself. RAM accesses never take it.</li>
 *   <li><b>Coalesced MMIO</b>: before an access to a region that {@link MemoryRegion#flushCoalesced() flushes
 *   coalesced MMIO}, the flush set with {@link #setCoalescedMmioFlush} runs under this lock (taken for the flush
 *   alone when the region does not keep global locking), QEMU's {@code qemu_flush_coalesced_mmio_buffer}. A flush
 *   never runs inside another: the writes it delivers do not flush again.</li>
 *   <li><b>Transactions</b>: {@link MemorySystem#begin()} takes this lock before the topology lock, and the matching
 *   {@link MemorySystem#commit()} releases it after, as QEMU changes its memory map under the BQL.</li>
 *   <li><b>Device models and the main loop</b>: {@link #lock()}, {@link #unlock()}, {@link #isHeld()}.</li>
 * </ul>
 *
 * <h2>Lock order</h2>
 * This lock comes first, the topology lock second: a thread that holds the topology lock holds this one too,
 * because transactions take both in that order. So a device that remaps its BAR from an MMIO write (it holds this
 * lock, then opens a transaction) cannot deadlock with a thread in a transaction that reaches MMIO (it holds both
 * already). A thread must not wait, while holding this lock, for a thread that is waiting for it: a device callback
 * that waits for another vCPU's MMIO to finish deadlocks, as in QEMU; such a device clears global locking.
 *
 * <p>Unlike QEMU's, the lock is reentrant: a thread may take it again, and releases it as often as it took it.
 * The access path keeps QEMU's rule (it takes the lock only when not held), so a device callback that drops the
 * lock a caller without the lock did not hold releases it once.
 *
 * <p>A thread that ends while holding the lock would stop every later MMIO access of the machine: {@link #lock()}
 * refuses to wait for an owner that is no longer alive, and throws {@link IllegalStateException} naming it.
 *
 * <p>Threading: any thread.
 */
public final class GlobalLock {
    /** How long a waiter sleeps between checks that the owner is still alive. */
    private static final long OWNER_CHECK_MILLIS = 100;

    /** A {@link ReentrantLock} that shows its owner, for the dead-owner check. */
    private static final class OwnedLock extends ReentrantLock {
        private static final long serialVersionUID = 1L;

        Thread owner() {
            return getOwner();
        }
    }

    private final OwnedLock lock = new OwnedLock();
    /** QEMU's coalesced MMIO flush; null when nothing buffers coalesced writes. Volatile: set by any thread. */
    private volatile Runnable coalescedMmioFlush;
    /** Whether a flush is running (QEMU's {@code coalesced_flush_in_progress}); guarded by {@link #lock}. */
    private boolean flushing;

    GlobalLock() {
    }

    /**
     * QEMU's {@code qemu_mutex_lock_iothread} ({@code bql_lock}): waits for the lock, uninterruptibly.
     *
     * @throws IllegalStateException if the thread holding it has ended without releasing it
     */
    public void lock() {
        if (lock.tryLock()) {
            return;
        }
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    if (lock.tryLock(OWNER_CHECK_MILLIS, TimeUnit.MILLISECONDS)) {
                        return;
                    }
                } catch (InterruptedException e) {
                    interrupted = true;
                }
                final Thread owner = lock.owner();
                if (owner != null && !owner.isAlive()) {
                    throw new IllegalStateException("globalLock owner=" + owner.getName() + " ownerId="
                            + owner.threadId() + " state=" + owner.getState() + ": the thread ended holding the global "
                            + "lock (inside a transaction, or between lock() and unlock()); nothing that needs it can "
                            + "run any more");
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * QEMU's {@code qemu_mutex_unlock_iothread} ({@code bql_unlock}).
     *
     * @throws IllegalMonitorStateException if the calling thread does not hold the lock
     */
    public void unlock() {
        lock.unlock();
    }

    /** QEMU's {@code qemu_mutex_iothread_locked} ({@code bql_locked}): whether the calling thread holds the lock. */
    public boolean isHeld() {
        return lock.isHeldByCurrentThread();
    }

    /**
     * Sets what flushes coalesced MMIO (QEMU's {@code qemu_flush_coalesced_mmio_buffer}, which drains the
     * accelerator's ring of buffered writes into the devices): called under this lock before each access to a region
     * that {@link MemoryRegion#flushCoalesced() flushes coalesced MMIO}. Null for none (the default).
     */
    public void setCoalescedMmioFlush(Runnable flush) {
        this.coalescedMmioFlush = flush;
    }

    /**
     * Runs the coalesced MMIO flush now, under this lock (taken for the flush if the caller does not hold it);
     * nothing when none is set or when a flush is already running on this thread.
     */
    public void flushCoalescedMmio() {
        final Runnable flush = coalescedMmioFlush;
        if (flush == null) {
            return;
        }
        final boolean take = !isHeld();
        if (take) {
            lock();
        }
        try {
            if (!flushing) {
                flushing = true;
                try {
                    flush.run();
                } finally {
                    flushing = false;
                }
            }
        } finally {
            if (take) {
                unlock();
            }
        }
    }

    @Override
    public String toString() {
        final Thread owner = lock.owner();
        return "GlobalLock[" + (owner == null ? "free" : "owner=" + owner.getName()) + "]";
    }

    // ---------------------------------------------------------------- for MMIO dispatch

    /**
     * QEMU's {@code prepare_mmio_access} for a region whose ops keep global locking: takes the lock if the calling
     * thread does not hold it, then flushes coalesced MMIO if the region asks for it.
     *
     * @param mr the region, or null for unassigned memory
     * @return whether the lock was taken here, so that the caller releases it with {@link #unlock()} after the access
     */
    public boolean prepare(MemoryRegion mr) {
        final boolean take = !lock.isHeldByCurrentThread();
        if (take) {
            lock();
        }
        if (mr != null && mr.flushCoalesced() && coalescedMmioFlush != null) {
            try {
                flushCoalescedMmio();
            } catch (RuntimeException | Error e) {
                if (take) {
                    unlock();
                }
                throw e;
            }
        }
        return take;
    }
}
