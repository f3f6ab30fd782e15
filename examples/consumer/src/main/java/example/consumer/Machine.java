package example.consumer;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.map.MachineMap;
import dev.guestmem.memory.mtree.MtreePrinter;
import dev.guestmem.offheap.HostMemoryBackend;

/** A machine whose memory map is data: loaded from JSON, its RAM mapped from the OS, written and read back. */
public final class Machine {
    static final String MAP = """
            { "format": "guestmem-map/1",
              "regions": {
                "system": { "name": "system", "kind": "container", "size": "0x10000000000000000",
                            "subregions": [ { "region": "ram", "addr": "0x0" },
                                            { "region": "uart", "addr": "0x10000000", "priority": 1 } ] },
                "ram":    { "name": "ram", "kind": "ram", "size": "0x100000" },
                "uart":   { "name": "uart", "kind": "io", "size": "0x8" } },
              "addressSpaces": [ { "name": "memory", "root": "system" } ] }
            """;

    private Machine() {
    }

    /** Loads the map with lazily zeroed RAM, stores a word, and returns what it reads back and info mtree -f. */
    public static String run() {
        MachineMap map = MachineMap.parse(MAP, HostMemoryBackend.anonymous().build(),
                MachineMap.UNIMPLEMENTED_DEVICES);
        MemorySystem system = map.system();
        AddressSpace memory = system.addressSpaces().getFirst();
        int stored = memory.stqLe(0x1000, 0x1122334455667788L, MemTxAttrs.UNSPECIFIED);
        int[] result = new int[1];
        long loaded = memory.ldqLe(0x1000, MemTxAttrs.UNSPECIFIED, result);
        return "store " + MemTxResult.toString(stored) + ", load 0x" + Long.toHexString(loaded) + " "
                + MemTxResult.toString(result[0]) + "\n" + MtreePrinter.flatViews(system);
    }

    public static void main(String[] args) {
        System.out.print(run());
    }
}
