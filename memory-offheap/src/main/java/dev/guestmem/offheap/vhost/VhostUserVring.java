package dev.guestmem.offheap.vhost;

import dev.guestmem.offheap.internal.linux.Linux;
import dev.guestmem.offheap.internal.linux.Sockets;

/**
 * One virtqueue handed to a vhost-user backend, as QEMU's {@code vhost_virtqueue_start} hands it: its size, base,
 * ring addresses (this process's addresses of the rings in shared guest RAM), a kick eventfd the front-end signals
 * and a call eventfd the backend signals, then enabled. The eventfds belong to this object.
 *
 * <p>Threading: one thread drives a vring; {@link #close()} once, after {@link #stop()}.
 */
public final class VhostUserVring implements AutoCloseable {
    private final VhostUserFrontend frontend;
    private final int index;
    private final int kick;
    private final int call;
    private boolean closed;

    private VhostUserVring(VhostUserFrontend frontend, int index, int kick, int call) {
        this.frontend = frontend;
        this.index = index;
        this.kick = kick;
        this.call = call;
    }

    /**
     * Sends SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_KICK, SET_VRING_CALL and SET_VRING_ENABLE for
     * {@code queue}, whose rings must lie in RAM the memory table covers.
     *
     * @param log whether the backend logs its used-ring writes into the dirty log ({@link VhostUserFrontend#VRING_F_LOG})
     */
    public static VhostUserVring start(VhostUserFrontend frontend, VhostUserMemoryListener memory,
                                       SplitVirtqueue queue, int index, boolean log) {
        int size = queue.size();
        long descUser = memory.userAddress(queue.descAddress(), 16L * size);
        long availUser = memory.userAddress(queue.availAddress(), 6 + 2L * size);
        long usedUser = memory.userAddress(queue.usedAddress(), 6 + 8L * size);
        int kick = Sockets.eventfd(0, Sockets.EFD_CLOEXEC | Sockets.EFD_NONBLOCK);
        int call;
        try {
            call = Sockets.eventfd(0, Sockets.EFD_CLOEXEC | Sockets.EFD_NONBLOCK);
        } catch (RuntimeException e) {
            Linux.close(kick);
            throw e;
        }
        VhostUserVring v = new VhostUserVring(frontend, index, kick, call);
        try {
            frontend.setVringNum(index, size);
            frontend.setVringBase(index, queue.availIndex());
            frontend.setVringAddr(index, log ? VhostUserFrontend.VRING_F_LOG : 0, descUser, usedUser, availUser,
                    queue.usedAddress());
            frontend.setVringKick(index, kick);
            frontend.setVringCall(index, call);
            // A backend may signal a new call eventfd at once (libvhost-user does, against lost notifications):
            // that is not a used buffer.
            Sockets.eventfdRead(call);
            frontend.setVringEnable(index, true);
            return v;
        } catch (RuntimeException e) {
            v.close();
            throw e;
        }
    }

    /** Tells the backend that buffers are available. */
    public void kick() {
        Sockets.eventfdWrite(kick, 1);
    }

    /**
     * Waits at most {@code timeoutMillis} for the backend to signal used buffers, and takes the signal.
     *
     * @return whether it signalled
     */
    public boolean awaitCall(long timeoutMillis) {
        if ((Sockets.poll(call, Sockets.POLLIN, timeoutMillis) & Sockets.POLLIN) == 0) {
            return false;
        }
        return Sockets.eventfdRead(call) != 0;
    }

    /** GET_VRING_BASE: stops the ring in the backend and returns the next available index it would have read. */
    public int stop() {
        return frontend.getVringBase(index);
    }

    public int index() {
        return index;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Linux.close(kick);
            Linux.close(call);
        }
    }
}
