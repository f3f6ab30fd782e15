package dev.guestmem.memory;

import java.util.ArrayList;
import java.util.List;

/**
 * A {@link MemoryListener} for tests that writes every callback it gets into a log as one compact line, prefixed with
 * its own name so that the order between several listeners sharing one log is visible:
 * {@code "L1 add 0000000000001000-0000000000001fff ram0 @0 ro"}, {@code "L1 del ..."}, {@code "L1 nop ..."},
 * {@code "L1 begin"}, {@code "L1 commit"}, {@code "L1 log_start ... old=0 new=1"}.
 *
 * <p>A section is written as its guest-physical first and last address (16 hex digits each), the region's name, its
 * region-relative offset in hex after {@code @}, then {@code ro}, {@code nv} and {@code !romd} when they apply. The
 * romd flag is not part of a section, so it is read from the flat range the section was taken from, in the view the
 * section names: a deletion therefore shows the mode the range had, an addition the mode it has.
 *
 * <p>It syncs per section ({@code logSync}) and so does not implement {@code logSyncGlobal}: a listener may have only
 * one of the two, as in QEMU. Tests that need a global syncer write one of their own.
 *
 * <p>Threading: called on the writer's thread only, like every listener.
 */
class RecordingListener implements MemoryListener {
    private final String name;
    private final int priority;
    private final List<String> log;

    /** A listener of priority {@code priority} that appends to {@code log}, which several listeners may share. */
    RecordingListener(String name, int priority, List<String> log) {
        this.name = name;
        this.priority = priority;
        this.log = log;
    }

    /** A listener of priority 0 with a log of its own. */
    RecordingListener(String name) {
        this(name, 0, new ArrayList<>());
    }

    /** The log this listener writes to. */
    List<String> log() {
        return log;
    }

    /** Returns what was logged so far and empties the log. */
    List<String> take() {
        List<String> copy = List.copyOf(log);
        log.clear();
        return copy;
    }

    /** The compact form of a section used in the log lines. */
    static String describe(MemoryRegionSection s) {
        StringBuilder b = new StringBuilder()
                .append(U64.hex16(s.offsetWithinAddressSpace())).append('-').append(U64.hex16(s.lastAddress()))
                .append(' ').append(s.region().name())
                .append(" @").append(Long.toHexString(s.offsetWithinRegion()));
        if (s.readonly()) {
            b.append(" ro");
        }
        if (s.nonvolatile()) {
            b.append(" nv");
        }
        FlatRange fr = s.flatView() == null ? null : s.flatView().lookup(s.offsetWithinAddressSpace());
        if (fr == null || fr.region() != s.region()) {
            b.append(" (not in its view)");
        } else if (!fr.romdMode()) {
            b.append(" !romd");
        }
        return b.toString();
    }

    private void record(String event) {
        log.add(name + " " + event);
        recorded(event);
    }

    private void record(String event, MemoryRegionSection s) {
        record(event + " " + describe(s));
    }

    /** Called after each line is logged, with the line without the name; for subclasses that act on a callback. */
    void recorded(String event) {
    }

    @Override
    public void begin() {
        record("begin");
    }

    @Override
    public void commit() {
        record("commit");
    }

    @Override
    public void regionAdd(MemoryRegionSection section) {
        record("add", section);
    }

    @Override
    public void regionDel(MemoryRegionSection section) {
        record("del", section);
    }

    @Override
    public void regionNop(MemoryRegionSection section) {
        record("nop", section);
    }

    @Override
    public void logStart(MemoryRegionSection section, int oldMask, int newMask) {
        record("log_start " + describe(section) + " old=" + oldMask + " new=" + newMask);
    }

    @Override
    public void logStop(MemoryRegionSection section, int oldMask, int newMask) {
        record("log_stop " + describe(section) + " old=" + oldMask + " new=" + newMask);
    }

    @Override
    public void logSync(MemoryRegionSection section) {
        record("log_sync", section);
    }

    @Override
    public void logClear(MemoryRegionSection section) {
        record("log_clear", section);
    }

    @Override
    public void logGlobalStart() {
        record("log_global_start");
    }

    @Override
    public void logGlobalStop() {
        record("log_global_stop");
    }

    @Override
    public void logGlobalAfterSync() {
        record("log_global_after_sync");
    }

    @Override
    public void eventfdAdd(MemoryRegionSection section, boolean matchData, long data, EventNotifier e) {
        record("eventfd_add " + eventfd(section, matchData, data, e));
    }

    @Override
    public void eventfdDel(MemoryRegionSection section, boolean matchData, long data, EventNotifier e) {
        record("eventfd_del " + eventfd(section, matchData, data, e));
    }

    /** An ioeventfd's guest range (a size-0 one shows as {@code any}), its match and its notifier's text. */
    private static String eventfd(MemoryRegionSection s, boolean matchData, long data, EventNotifier e) {
        long first = s.offsetWithinAddressSpace();
        String range = s.lastAddress() == first - 1 ? U64.hex16(first) + " any-size"
                : U64.hex16(first) + "-" + U64.hex16(s.lastAddress());
        return range + (matchData ? " data=" + U64.hex(data) : " any-data") + " " + e;
    }

    @Override
    public void coalescedIoAdd(MemoryRegionSection section, long addr, long len) {
        record("coalesced_add " + describe(section) + " " + U64.hex(addr) + "+" + U64.hex(len));
    }

    @Override
    public void coalescedIoDel(MemoryRegionSection section, long addr, long len) {
        record("coalesced_del " + describe(section) + " " + U64.hex(addr) + "+" + U64.hex(len));
    }

    @Override
    public int priority() {
        return priority;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String toString() {
        return "RecordingListener[" + name + ", priority=" + priority + "]";
    }
}
