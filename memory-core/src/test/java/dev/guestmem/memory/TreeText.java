package dev.guestmem.memory;

import java.util.ArrayDeque;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * A region tree as text, through the public getters only: every address space and its root, then each region
 * reached from a root or an alias, with its kind, place, size, priority, flags and subregions in order. Tests use it
 * as a fingerprint (a refused call must leave it unchanged) and in failure messages; QEMU's own {@code info mtree}
 * format is memory-tools' printer.
 */
final class TreeText {
    private TreeText() {
    }

    static String of(MemorySystem sys) {
        StringBuilder sb = new StringBuilder();
        Set<MemoryRegion> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        ArrayDeque<MemoryRegion> pending = new ArrayDeque<>();
        for (AddressSpace as : sys.addressSpaces()) {
            sb.append("address-space ").append(as.name()).append(": ").append(as.root().name()).append('\n');
            pending.add(as.root());
        }
        while (!pending.isEmpty()) {
            MemoryRegion top = pending.poll();
            if (seen.add(top)) {
                append(sb, top, 0, pending);
            }
        }
        return sb.toString();
    }

    private static void append(StringBuilder sb, MemoryRegion mr, int depth, ArrayDeque<MemoryRegion> pending) {
        sb.append("  ".repeat(depth)).append(mr.name()).append(' ').append(mr.kind())
                .append(" addr=").append(U64.hex(mr.addr())).append(" size=").append(U64.sizeHex(mr.size()))
                .append(" prio=").append(mr.priority())
                .append(mr.isEnabled() ? "" : " disabled").append(mr.isReadonly() ? " readonly" : "")
                .append(mr.isNonvolatile() ? " nv" : "").append(mr.isRomdMode() ? "" : " !romd");
        if (mr.alias() != null) {
            sb.append(" alias=").append(mr.alias().name()).append(" @").append(U64.hex(mr.aliasOffset()));
            pending.add(mr.alias());
        }
        sb.append('\n');
        for (MemoryRegion sub : mr.subregions()) {
            append(sb, sub, depth + 1, pending);
        }
    }
}
