package dev.guestmem.memory.internal.render;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryListener;
import dev.guestmem.memory.MemoryRegionSection;
import dev.guestmem.memory.internal.SharedSecrets;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;

/**
 * A memory system's listeners (QEMU's {@code memory_listeners}): every registered one in ascending priority, the
 * address space each watches, and which of them implement {@code logClear}. Registering replays the address space's
 * current view to the new listener alone, and unregistering takes every section away from it, as QEMU's
 * {@code listener_add_address_space} and {@code listener_del_address_space} do; the address space's own list (the
 * one its commits notify) is kept in the same order.
 *
 * <p>Threading: writer only (the topology lock held, inside a transaction), except {@link #logClearListeners()},
 * which any thread may read.
 */
public final class ListenerRegistry {
    /** Every registered listener, ascending priority, registration order among equals. */
    private final ArrayList<MemoryListener> listeners = new ArrayList<>();
    private final IdentityHashMap<MemoryListener, AddressSpace> spaces = new IdentityHashMap<>();
    /**
     * The listeners that implement {@link MemoryListener#logClear}, in priority order: while none does, clearing
     * dirty bits costs one volatile read. Replaced (never changed in place) by the writer under the topology lock.
     */
    private volatile MemoryListener[] logClearListeners = new MemoryListener[0];

    /** Every registered listener, ascending priority; the registry's own list, which the caller must not change. */
    public List<MemoryListener> all() {
        return listeners;
    }

    /** The address space {@code listener} watches, or null when it is not registered. */
    public AddressSpace spaceOf(MemoryListener listener) {
        return spaces.get(listener);
    }

    /** The registered listeners that implement {@code logClear}, in priority order; never changed in place. */
    public MemoryListener[] logClearListeners() {
        return logClearListeners;
    }

    /**
     * Registers {@code listener} on {@code as} and replays {@code as}'s current view to it alone: {@code begin},
     * {@code logGlobalStart} when {@code globalDirtyLog} is on, {@code regionAdd} (and {@code logStart} for a logged
     * range) for every range, {@code commit}.
     *
     * <p>QEMU's callbacks cannot fail; here one may throw. A listener that throws during its replay is detached again
     * before the exception leaves, so every list is as it was before the call, and it is not called again (not even
     * to take back what the replay told it before the throw: what it holds from that is its own to drop). The
     * exception is an {@link IllegalStateException} naming the listener, the callback and the address space, with
     * the listener's exception as its cause; a {@link VirtualMachineError} goes out as it is, the listener detached.
     *
     * @throws IllegalArgumentException when the listener is registered already, or overrides both sync hooks
     * @throws IllegalStateException when the listener threw during the replay
     */
    public void add(AddressSpace as, MemoryListener listener, boolean globalDirtyLog) {
        AddressSpace prev = spaces.get(listener);
        if (prev != null) {
            throw new IllegalArgumentException("listener=" + listener.name() + ": already registered on addressSpace="
                    + prev.name());
        }
        ListenerHooks.checkRegistrable(listener);
        insertByPriority(listeners, listener);
        insertByPriority(SharedSecrets.coreAccess().listeners(as), listener);
        spaces.put(listener, as);
        logClearListeners = listenersWith(ListenerHooks.LOG_CLEAR);

        // Replay the current view to the new listener only (QEMU's listener_add_address_space).
        String callback = "begin";
        try {
            listener.begin();
            if (globalDirtyLog) {
                callback = "logGlobalStart";
                listener.logGlobalStart();
            }
            FlatView view = as.flatView();
            for (int i = 0; i < view.rangeCount(); i++) {
                FlatRange fr = view.range(i);
                MemoryRegionSection s = view.section(i);
                callback = "regionAdd";
                listener.regionAdd(s);
                if (fr.dirtyLogMask() != 0) {
                    callback = "logStart";
                    listener.logStart(s, 0, fr.dirtyLogMask());
                }
            }
            callback = "commit";
            listener.commit();
        } catch (RuntimeException | Error e) {
            detach(as, listener);
            if (e instanceof VirtualMachineError) {
                throw e;
            }
            throw new IllegalStateException("listener=" + listener.name() + " callback=" + callback
                    + " addressSpace=" + as.name() + ": the listener threw " + e + " while its registration replayed"
                    + " the view; it is not registered", e);
        }
    }

    /**
     * Takes every section of {@code as}'s current view away from {@code listener} (stopping its logging first), then
     * unregisters it.
     *
     * @throws IllegalArgumentException when the listener is not registered on {@code as}
     */
    public void remove(AddressSpace as, MemoryListener listener) {
        if (spaces.get(listener) != as) {
            throw new IllegalArgumentException("listener=" + listener.name() + ": not registered on addressSpace="
                    + as.name());
        }
        // QEMU's listener_del_address_space: every section goes away, stopping its logging first.
        listener.begin();
        FlatView view = as.flatView();
        for (int i = 0; i < view.rangeCount(); i++) {
            FlatRange fr = view.range(i);
            MemoryRegionSection s = view.section(i);
            if (fr.dirtyLogMask() != 0) {
                listener.logStop(s, fr.dirtyLogMask(), 0);
            }
            listener.regionDel(s);
        }
        listener.commit();
        detach(as, listener);
    }

    /** Takes {@code listener} out of every list; it hears nothing more. */
    private void detach(AddressSpace as, MemoryListener listener) {
        removeIdentity(listeners, listener);
        removeIdentity(SharedSecrets.coreAccess().listeners(as), listener);
        spaces.remove(listener);
        logClearListeners = listenersWith(ListenerHooks.LOG_CLEAR);
    }

    /** The registered listeners that implement {@code hook} (a {@link ListenerHooks} bit), in priority order. */
    private MemoryListener[] listenersWith(int hook) {
        return listeners.stream().filter(l -> (ListenerHooks.of(l) & hook) != 0).toArray(MemoryListener[]::new);
    }

    /** Inserts after every listener of lower or equal priority, as QEMU does. */
    private static void insertByPriority(List<MemoryListener> list, MemoryListener listener) {
        int p = listener.priority();
        int i = list.size();
        while (i > 0 && p < list.get(i - 1).priority()) {
            i--;
        }
        list.add(i, listener);
    }

    private static void removeIdentity(List<MemoryListener> list, MemoryListener listener) {
        for (int i = 0; i < list.size(); i++) {
            if (list.get(i) == listener) {
                list.remove(i);
                return;
            }
        }
    }
}
