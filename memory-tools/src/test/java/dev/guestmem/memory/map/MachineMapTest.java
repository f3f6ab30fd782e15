package dev.guestmem.memory.map;

import dev.guestmem.memory.AddressSpace;
import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.MemoryRegionOps;
import dev.guestmem.memory.FlatRange;
import dev.guestmem.memory.FlatView;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.U64;
import dev.guestmem.memory.mtree.MtreePrinter;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code guestmem-map/1} format: the shape given in the format's documentation loads as written, every attribute
 * survives a save and reload, and each kind of invalid map is refused with a message naming the id and the field.
 */
class MachineMapTest {

    /** The documented example shape, extended to a small PC-like map. */
    static final String PC = """
            { "format": "guestmem-map/1",
              "regions": {
                "system": { "name": "system", "kind": "container", "size": "0x10000000000000000",
                            "subregions": [ { "region": "lo", "addr": "0x0" },
                                            { "region": "pci", "addr": "0x0", "priority": -1 } ] },
                "ram":    { "name": "pc.ram", "kind": "ram", "size": "0x100000" },
                "lo":     { "name": "ram-below-4g", "kind": "alias", "size": "0x100000",
                            "alias": { "target": "ram", "offset": "0x0" } },
                "pci":    { "name": "pci", "kind": "container", "size": "0x10000000000000000",
                            "subregions": [ { "region": "bios", "addr": "0xfffc0000", "priority": 0 },
                                            { "region": "isa", "addr": "0xe0000", "priority": 1 } ] },
                "bios":   { "name": "pc.bios", "kind": "rom", "size": "0x40000",
                            "readonly": false, "nonvolatile": false, "enabled": true },
                "isa":    { "name": "isa-bios", "kind": "alias", "size": "0x20000",
                            "alias": { "target": "bios", "offset": "0x20000" } },
                "flash":  { "name": "pc.flash0", "kind": "rom-device", "size": "0x1000", "romd": true,
                            "ops": { "endianness": "little", "valid": { "min": 1, "max": 4 } } }
              },
              "addressSpaces": [ { "name": "memory", "root": "system" } ] }
            """;

    @Test
    void loadsTheDocumentedShape() {
        MachineMap map = MachineMap.parse(PC, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES);
        AddressSpace as = map.system().addressSpaces().get(0);
        assertEquals("memory", as.name());
        FlatView v = as.flatView();
        // RAM (priority 0 in system) hides the isa-bios alias that sits in the priority -1 pci container.
        assertEquals(2, v.rangeCount());
        FlatRange ram = v.range(0);
        assertEquals(0, ram.start());
        assertEquals(0xfffffL, ram.last());
        assertSame(map.region("ram"), ram.region());
        FlatRange bios = v.range(1);
        assertEquals(0xfffc0000L, bios.start());
        assertEquals(0xffffffffL, bios.last());
        assertTrue(bios.readonly(), "a rom is read-only by its kind");
        assertEquals(U64.SIZE_2_64, map.region("system").size());
        assertFalse(map.region("flash").isMapped(), "unreferenced regions are allowed");
    }

    @Test
    void saveAndReloadKeepsEveryAttribute() {
        MemorySystem m = new MemorySystem(MemorySystem.LAYOUT_ONLY);
        MemoryRegion root = m.container("root", -1L);
        MemoryRegion ram = m.ram("ram", 0x4000);
        // RAM blocks need unique names (QEMU's idstr), so the repeated name is on regions without RAM.
        MemoryRegion dup1 = m.io("dup", 0x1000, MemoryRegionOps.builder().build());
        MemoryRegion dup2 = m.io("dup", 0x1000, MemoryRegionOps.builder().build());
        MemoryRegion a = m.alias("win", ram, 0x1000, 0x2000);
        MemoryRegion aa = m.alias("win2", a, 0x1000, 0x1000);
        MemoryRegion flash = m.romDevice("flash", 0x1000, MemoryRegionOps.builder()
                .valid(1, 8, true).impl(2, 4, false).endianness(DeviceEndian.BIG).build());
        MemoryRegion res = m.reservation("hole", 0x100);
        root.addSubregion(0, ram);
        root.addSubregionOverlap(0x10000, dup1, 3);
        root.addSubregionOverlap(0x10000, dup2, 3); // later-added wins the tie: order must survive
        root.addSubregionOverlap(0x2000, a, -5);
        root.addSubregionOverlap(0x1_0000_0000L, aa, 2);
        root.addSubregionOverlap(0x20000, flash, 1);
        root.addSubregion(-0x100L, res);
        a.setReadonly(true);
        dup1.setNonvolatile(true);
        dup2.setUnmergeable(true);
        flash.setRomd(false);
        res.setEnabled(false);
        m.addressSpace("memory", root);
        m.addressSpace("other", root);

        String json = MachineMap.write(m);
        MachineMap back = MachineMap.parse(json, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES);
        assertEquals(MtreePrinter.mtree(m, true), MtreePrinter.mtree(back.system(), true));
        assertEquals(MtreePrinter.flatViews(m), MtreePrinter.flatViews(back.system()));
        assertEquals(json, MachineMap.write(back.system()), "write is a fixed point of read");
        MemoryRegion dev2 = back.region("flash");
        assertEquals(8, dev2.ops().valid().max());
        assertTrue(dev2.ops().valid().unaligned());
        assertEquals(2, dev2.ops().impl().min());
        assertEquals(DeviceEndian.BIG, dev2.ops().endianness());
        assertTrue(back.regions().containsKey("dup#2"), "repeated names get unique ids: " + back.regions().keySet());
        // The tie at 0x10000 still goes to the region added last.
        assertSame(back.region("dup#2"), back.system().addressSpaces().get(0).flatView().lookup(0x10000).region());
    }

    @Test
    void sizesAtTheTopOfTheSpace() {
        assertEquals(U64.SIZE_2_64, load("0x10000000000000000").region("r").size());
        assertEquals(0xfffffffffffffffeL, load("0xfffffffffffffffe").region("r").size());
        assertError("0xffffffffffffffff", "field size", "0x10000000000000000");
        assertError("0x10000000000000001", "field size", "exceeds 2^64");
        assertError("4096", "field size", "not a hex string");
        assertError("0x-1", "field size", "not a hex string");
    }

    /** An address space's page size is kept through a save and reload; the default one is not written. */
    @Test
    void pageSizesOfAddressSpaces() {
        String json = """
                { "format": "guestmem-map/1",
                  "regions": { "r": { "name": "r", "kind": "container", "size": "0x1000" } },
                  "addressSpaces": [ { "name": "arm", "root": "r", "pageBits": 10 }, { "name": "x86", "root": "r" } ] }
                """;
        MachineMap map = MachineMap.parse(json, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES);
        assertEquals(10, map.system().addressSpaces().get(0).pageBits());
        assertEquals(12, map.system().addressSpaces().get(1).pageBits());
        String saved = MachineMap.write(map.system());
        assertEquals(1, saved.split("\"pageBits\"", -1).length - 1, saved);
        MachineMap back = MachineMap.parse(saved, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES, 16);
        assertEquals(10, back.system().addressSpaces().get(0).pageBits());
        assertEquals(16, back.system().addressSpaces().get(1).pageBits(), "the reader's default fills the gap");
        assertRejected(json.replace("\"pageBits\": 10", "\"pageBits\": 40"), "addressSpaces[0].pageBits",
                "pageBits=40");
        assertRejected(json.replace("\"pageBits\": 10", "\"pageBits\": \"10\""), "addressSpaces[0].pageBits",
                "expected an integer");
    }

    private static MachineMap load(String size) {
        return MachineMap.parse(oneRegion(size), MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES);
    }

    static String oneRegion(String size) {
        return """
                { "format": "guestmem-map/1",
                  "regions": { "r": { "name": "r", "kind": "container", "size": "%s" } },
                  "addressSpaces": [ { "name": "memory", "root": "r" } ] }
                """.formatted(size);
    }

    private static void assertError(String size, String... fragments) {
        assertRejected(oneRegion(size), fragments);
    }

    static void assertRejected(String json, String... fragments) {
        MapFormatException e = assertThrows(MapFormatException.class,
                () -> MachineMap.parse(json, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES));
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "message [" + e.getMessage() + "] lacks [" + f + "]");
        }
    }

    private static String map(String regions) {
        return "{ \"format\": \"guestmem-map/1\", \"regions\": {" + regions
                + "}, \"addressSpaces\": [ { \"name\": \"memory\", \"root\": \"a\" } ] }";
    }

    @Test
    void invalidMapsNameTheIdAndField() {
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"container\", \"size\": \"0x10\","
                + " \"subregions\": [ { \"region\": \"nope\", \"addr\": \"0x0\" } ] }"),
                "region \"a\"", "subregions[0].region", "unknown id \"nope\"");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"container\", \"size\": \"0x10\","
                + " \"subregions\": [ { \"region\": \"b\", \"addr\": \"0x0\" } ] },"
                + "\"b\": { \"name\": \"b\", \"kind\": \"container\", \"size\": \"0x10\","
                + " \"subregions\": [ { \"region\": \"a\", \"addr\": \"0x0\" } ] }"),
                "cycle");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"container\", \"size\": \"0x10\","
                + " \"subregions\": [ { \"region\": \"c\", \"addr\": \"0x0\" } ] },"
                + "\"b\": { \"name\": \"b\", \"kind\": \"container\", \"size\": \"0x10\","
                + " \"subregions\": [ { \"region\": \"c\", \"addr\": \"0x0\" } ] },"
                + "\"c\": { \"name\": \"c\", \"kind\": \"io\", \"size\": \"0x10\" }"),
                "region \"b\"", "subregions[0].region", "already a subregion of \"a\"");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"alias\", \"size\": \"0x10\","
                + " \"alias\": { \"target\": \"b\", \"offset\": \"0x0\" } },"
                + "\"b\": { \"name\": \"b\", \"kind\": \"alias\", \"size\": \"0x10\","
                + " \"alias\": { \"target\": \"a\", \"offset\": \"0x0\" } }"),
                "alias cycle");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"alias\", \"size\": \"0x10\","
                + " \"alias\": { \"target\": \"b\", \"offset\": \"0x8\" } },"
                + "\"b\": { \"name\": \"b\", \"kind\": \"io\", \"size\": \"0x10\" }"),
                "region \"a\"", "extends past its target");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"disk\", \"size\": \"0x10\" }"),
                "region \"a\"", "field kind", "unknown kind \"disk\"");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"io\", \"size\": \"0x10\", \"colour\": 1 }"),
                "region \"a\"", "unknown field \"colour\"");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"io\", \"size\": \"0x10\", \"enabled\": \"yes\" }"),
                "region \"a\"", "field enabled", "true or false");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"container\", \"size\": \"0x10\","
                + " \"subregions\": [ { \"region\": \"b\", \"addr\": \"0x0\", \"priority\": 1.5 } ] },"
                + "\"b\": { \"name\": \"b\", \"kind\": \"io\", \"size\": \"0x10\" }"),
                "subregions[0].priority", "32-bit integer");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"io\", \"size\": \"0x10\","
                + " \"ops\": { \"valid\": { \"min\": 3 } } }"),
                "region \"a\"", "ops.valid", "minAccessSize=3");
        assertRejected(map("\"a\": { \"name\": \"a\", \"kind\": \"ram\", \"size\": \"0x0\" }"),
                "region \"a\"", "size=0");
        assertRejected("{ \"format\": \"qemu\" }", "format");
        assertRejected("{ \"format\": ", "not valid JSON");
    }
}
