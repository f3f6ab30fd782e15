package dev.guestmem.memory.map;

import dev.guestmem.memory.MemorySystem;
import dev.guestmem.memory.mtree.MtreePrinter;
import dev.guestmem.memory.testing.SmallStack;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static dev.guestmem.memory.map.MachineMapTest.assertRejected;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hostile maps: text that is not one JSON map, ids given twice, numbers too large, and maps whose depth or alias chains
 * are far deeper than a thread's stack. Each is one clear message or a normal load, never a stack trace.
 */
class MapHardeningTest {
    private static final String ONE_RAM = "{ \"format\": \"guestmem-map/1\", \"regions\": { \"a\": { \"name\": \"a\","
            + " \"kind\": \"ram\", \"size\": \"0x1000\" } }, \"addressSpaces\": [ { \"name\": \"m\", \"root\": \"a\" } ] }";

    @Test
    void textAfterTheMapIsRefusedWithItsPosition() {
        assertRejected(ONE_RAM + " trailing", "not valid JSON: text after the end of the map at line 1 column "
                + (ONE_RAM.length() + 2));
        assertRejected(ONE_RAM + "\n\n  {}", "text after the end of the map at line 3 column 3");
        // White space after the map is not text.
        MachineMap.parse(ONE_RAM + " \n\t\n", MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES);
    }

    @Test
    void textThatIsNotAnObjectIsRefusedAlsoWhenItEndsTheInput() {
        // A number at the top is read to the end of the text (the parser must see where it stops), which once closed
        // the reader under the check for text after it: an IOException instead of a refusal. A string at the top was
        // taken for text after the map.
        for (String json : new String[] {"5", "-1.5e3", "true", "null", "\"guestmem-map/1\"", "[]", " 7 ", "[1, 2]",
                "\"a\\\"b\"\n"}) {
            assertRejected(json, "the map must be a JSON object");
        }
        assertRejected("5 {}", "not valid JSON: text after the end of the map at line 1 column 3");
        assertRejected("\"x\" 1", "not valid JSON: text after the end of the map at line 1 column 5");
    }

    @Test
    void aFileThatIsOneNumberIsRefused(@TempDir Path dir) throws IOException {
        Path map = Files.writeString(dir.resolve("number.json"), "4096\n");
        assertEquals("the map must be a JSON object", assertThrows(MapFormatException.class,
                () -> MachineMap.read(map, MemorySystem.LAYOUT_ONLY)).getMessage());
    }

    @Test
    void duplicateIdsAndFieldsAreRefusedWithTheName() {
        assertRejected("{ \"format\": \"guestmem-map/1\", \"regions\": {"
                        + " \"a\": { \"name\": \"a\", \"kind\": \"ram\", \"size\": \"0x1000\" },"
                        + " \"a\": { \"name\": \"b\", \"kind\": \"ram\", \"size\": \"0x2000\" } },"
                        + " \"addressSpaces\": [ { \"name\": \"m\", \"root\": \"a\" } ] }",
                "not valid JSON", "Duplicate field 'a'", "line 1 column");
        assertRejected(ONE_RAM.replace("\"size\": \"0x1000\"", "\"size\": \"0x1000\", \"size\": \"0x2000\""),
                "Duplicate field 'size'");
    }

    /** Ids are checked by the reader itself; every object inside a region is still checked by Jackson. */
    @Test
    void namesTwiceInsideARegionAreRefusedToo() {
        String twoRegions = "{ \"format\": \"guestmem-map/1\", \"regions\": {"
                + " \"ram\": { \"name\": \"ram\", \"kind\": \"ram\", \"size\": \"0x1000\" },"
                + " \"sys\": { \"name\": \"sys\", \"kind\": \"container\", \"size\": \"0x10000\","
                + " \"subregions\": [ { \"region\": \"ram\", \"addr\": \"0x0\" } ] },"
                + " \"al\": { \"name\": \"al\", \"kind\": \"alias\", \"size\": \"0x1000\","
                + " \"alias\": { \"target\": \"ram\", \"offset\": \"0x0\" } } },"
                + " \"addressSpaces\": [ { \"name\": \"m\", \"root\": \"sys\" } ] }";
        MachineMap.parse(twoRegions, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES);
        assertRejected(twoRegions.replace("\"addr\": \"0x0\"", "\"addr\": \"0x0\", \"addr\": \"0x1000\""),
                "not valid JSON", "Duplicate field 'addr'");
        assertRejected(twoRegions.replace("\"target\": \"ram\",", "\"target\": \"ram\", \"target\": \"sys\","),
                "not valid JSON", "Duplicate field 'target'");
        assertRejected(twoRegions.replace("\"name\": \"m\",", "\"name\": \"m\", \"name\": \"n\","),
                "not valid JSON", "Duplicate field 'name'");
        assertRejected(twoRegions.replace("\"al\": {", "\"ram\": {"), "not valid JSON", "Duplicate field 'ram'",
                "line 1 column");
    }

    /**
     * The text is checked as JSON before the map: a JSON fault after a region's fault is the one reported, as when
     * the whole tree was read first; of the map's own faults, a wrong format comes first.
     */
    @Test
    void aJsonFaultAfterAMapFaultIsTheOneReported() {
        String badKind = ONE_RAM.replace("\"kind\": \"ram\"", "\"kind\": \"disk\"");
        assertRejected(badKind, "region \"a\" field kind: unknown kind \"disk\"");
        assertRejected(badKind.replace("} }, \"addressSpaces\"", "}, \"a\": {} }, \"addressSpaces\""),
                "not valid JSON", "Duplicate field 'a'");
        assertRejected(badKind.replace("} }, \"addressSpaces\"", "}, \"b\": { \"x\": [ } }, \"addressSpaces\""),
                "not valid JSON", "line 1 column");
        assertRejected(badKind + " x", "text after the end of the map");
        assertRejected(badKind.replace("\"guestmem-map/1\"", "\"qemu\""), "format: expected \"guestmem-map/1\"");
        assertRejected(badKind.replace("\"format\": \"guestmem-map/1\", ", "").replace("] }", "], \"format\": 1 }"),
                "format: expected \"guestmem-map/1\", found 1");
    }

    /** A map read from a stream: decoded a buffer at a time, with characters and faults across buffer edges. */
    @Test
    void streamedMapsDecodeAcrossBuffersAndNameTheFirstBadByte(@TempDir Path dir) throws IOException {
        // Names of two-byte characters, so that some straddle the reader's 64 KiB buffers.
        StringBuilder regions = new StringBuilder();
        StringBuilder subs = new StringBuilder();
        for (int i = 0; i < 3000; i++) {
            regions.append(", \"r").append(i).append("\": { \"name\": \"\u00e9t\u00e9-").append(i)
                    .append("\", \"kind\": \"ram\", \"size\": \"0x1000\" }");
            subs.append(i == 0 ? "" : ", ").append("{ \"region\": \"r").append(i).append("\", \"addr\": \"0x")
                    .append(Integer.toHexString(i << 12)).append("\" }");
        }
        String json = "{ \"format\": \"guestmem-map/1\", \"regions\": { \"sys\": { \"name\": \"system\","
                + " \"kind\": \"container\", \"size\": \"0x10000000000000000\", \"subregions\": [ " + subs + " ] }"
                + regions + " }, \"addressSpaces\": [ { \"name\": \"memory\", \"root\": \"sys\" } ] }\n";
        Path map = dir.resolve("map.json");
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        assertTrue(bytes.length > 3 * 65536, "the map spans several buffers: " + bytes.length);
        Files.write(map, bytes);
        MachineMap streamed = MachineMap.read(map, MemorySystem.LAYOUT_ONLY);
        assertEquals(MtreePrinter.flatViews(MachineMap.parse(json, MemorySystem.LAYOUT_ONLY,
                MachineMap.UNIMPLEMENTED_DEVICES).system()), MtreePrinter.flatViews(streamed.system()));
        assertEquals("\u00e9t\u00e9-2999", streamed.region("r2999").name());

        int bad = 2 * 65536 + 3; // past two buffers
        bytes[bad] = (byte) 0xc3; // starts a two-byte character that the next byte does not continue
        bytes[bad + 1] = 'x';
        Files.write(map, bytes);
        MapFormatException e = assertThrows(MapFormatException.class,
                () -> MachineMap.read(map, MemorySystem.LAYOUT_ONLY));
        assertEquals("not UTF-8 text: byte offset=" + bad + " is 0xc3", e.getMessage());
        assertEquals(e.getMessage(), assertThrows(MapFormatException.class,
                () -> MachineMap.utf8(bytes)).getMessage(), "the same words as for bytes held whole");
        // A character cut short by the end of the file.
        byte[] cut = Arrays.copyOf(ONE_RAM.getBytes(StandardCharsets.UTF_8), ONE_RAM.length() + 2);
        cut[ONE_RAM.length()] = ' ';
        cut[ONE_RAM.length() + 1] = (byte) 0xe2;
        Files.write(map, cut);
        assertEquals("not UTF-8 text: byte offset=" + (ONE_RAM.length() + 1) + " is 0xe2", assertThrows(
                MapFormatException.class, () -> MachineMap.read(map, MemorySystem.LAYOUT_ONLY)).getMessage());
    }

    @Test
    void jsonNestedPastTheLimitIsNotValidJson() {
        String deep = "[".repeat(100_000) + "]".repeat(100_000);
        assertRejected(deep, "not valid JSON: nested deeper than " + MachineMap.MAX_JSON_DEPTH + " levels");
        assertRejected("{\"a\":".repeat(65) + "1" + "}".repeat(65), "nested deeper than");
        assertRejected("", "not valid JSON: no content");
    }

    @Test
    void numbersTooLargeSayTooLarge() {
        assertRejected(MachineMapTest.oneRegion("0x1" + "0".repeat(30)), "field size", "exceeds 2^64");
        assertRejected(MachineMapTest.oneRegion("0x" + "f".repeat(5000)), "exceeds 2^64", "...(5002 characters)");
        assertRejected(MachineMapTest.oneRegion("0x12g4"), "\"0x12g4\" is not a hex string");
        assertRejected(MachineMapTest.oneRegion("0x\u0661\u0662"), "is not a hex string"); // Arabic-Indic digits
        assertRejected(ONE_RAM.replace("} }, \"addressSpaces\"", "}, \"b\": { \"name\": \"b\", \"kind\": \"alias\","
                + " \"size\": \"0x1000\", \"alias\": { \"target\": \"a\", \"offset\": \"0x" + "1".repeat(17) + "\" } } },"
                + " \"addressSpaces\""), "region \"b\" field alias.offset", "is not below 2^64");
    }

    @Test
    void leadingZerosDoNotCountAgainstTheWidth() {
        MachineMap m = MachineMap.parse(MachineMapTest.oneRegion("0x" + "0".repeat(40) + "10000"),
                MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES);
        assertEquals(0x10000, m.region("r").size());
    }

    @Test
    void bytesThatAreNotUtf8AreRefusedWithTheirOffset(@TempDir Path dir) throws IOException {
        Path map = dir.resolve("map.json");
        byte[] bytes = ONE_RAM.getBytes(StandardCharsets.UTF_8);
        bytes[20] = (byte) 0xff;
        Files.write(map, bytes);
        MapFormatException e = assertThrows(MapFormatException.class,
                () -> MachineMap.read(map, MemorySystem.LAYOUT_ONLY));
        assertEquals("not UTF-8 text: byte offset=20 is 0xff", e.getMessage());
    }

    @Test
    void aBadDefaultPageSizeIsTheCallersNotTheMaps() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MachineMap.parse(ONE_RAM, MemorySystem.LAYOUT_ONLY, MachineMap.UNIMPLEMENTED_DEVICES, 99));
        assertFalse(e instanceof MapFormatException, e.getMessage());
        assertTrue(e.getMessage().startsWith("defaultPageBits=99 (for addressSpaces[0], which gives no pageBits): "
                + "pageBits=99: "), e.getMessage());
    }

    @Test
    void cyclesThroughSubregionsAndAliasesNameTheIds() {
        assertRejected("{ \"format\": \"guestmem-map/1\", \"regions\": {"
                        + " \"a\": { \"name\": \"a\", \"kind\": \"container\", \"size\": \"0x1000\","
                        + " \"subregions\": [ { \"region\": \"b\", \"addr\": \"0x0\" } ] },"
                        + " \"b\": { \"name\": \"b\", \"kind\": \"alias\", \"size\": \"0x1000\","
                        + " \"alias\": { \"target\": \"a\", \"offset\": \"0x0\" } } },"
                        + " \"addressSpaces\": [ { \"name\": \"m\", \"root\": \"a\" } ] }",
                "region \"b\": cycle a -> b -> a");
    }

    /** A chain of 20,000 aliases, each the target of the next: loaded, printed and saved on a 256 KiB stack. */
    @Test
    void aliasChainsFarLongerThanTheStack() throws Exception {
        int n = 20_000;
        StringBuilder regions = new StringBuilder("\"ram\": { \"name\": \"ram\", \"kind\": \"ram\", \"size\": \"0x1000\" }");
        String prev = "ram";
        for (int i = 0; i < n; i++) {
            regions.append(", \"a").append(i).append("\": { \"name\": \"a").append(i).append("\", \"kind\": \"alias\","
                    + " \"size\": \"0x1000\", \"alias\": { \"target\": \"").append(prev).append("\" } }");
            prev = "a" + i;
        }
        regions.append(", \"sys\": { \"name\": \"system\", \"kind\": \"container\", \"size\": \"0x10000000000000000\","
                + " \"subregions\": [ { \"region\": \"").append(prev).append("\", \"addr\": \"0x0\" } ] }");
        String json = "{ \"format\": \"guestmem-map/1\", \"regions\": {" + regions
                + "}, \"addressSpaces\": [ { \"name\": \"memory\", \"root\": \"sys\" } ] }";
        MachineMap map = SmallStack.call(() -> MachineMap.parse(json, MemorySystem.LAYOUT_ONLY,
                MachineMap.UNIMPLEMENTED_DEVICES));
        String tree = SmallStack.call(() -> MtreePrinter.mtree(map.system(), false));
        assertTrue(tree.contains("    0000000000000000-0000000000000fff (prio 0, ram): alias a" + (n - 1) + " @a"
                + (n - 2) + " 0000000000000000-0000000000000fff\n"), tree.substring(0, 300));
        assertTrue(tree.endsWith("memory-region: ram\n  0000000000000000-0000000000000fff (prio 0, ram): ram\n\n"));
        assertEquals(n, tree.split("memory-region: ", -1).length - 1, "one section per alias target");
        String saved = SmallStack.call(() -> MachineMap.write(map.system()));
        assertEquals(tree, MtreePrinter.mtree(MachineMap.parse(saved, MemorySystem.LAYOUT_ONLY,
                MachineMap.UNIMPLEMENTED_DEVICES).system(), false));
    }

    /** 20,000 nested containers: loaded and saved on a 256 KiB stack; info mtree prints them. */
    @Test
    void mapsFarDeeperThanTheStack() throws Exception {
        String json = nested(20_000);
        MachineMap map = SmallStack.call(() -> MachineMap.parse(json, MemorySystem.LAYOUT_ONLY,
                MachineMap.UNIMPLEMENTED_DEVICES));
        String saved = SmallStack.call(() -> MachineMap.write(map.system()));
        assertTrue(saved.contains("\"c19999\" : {"), "the deepest region is saved");
        IllegalArgumentException tooDeep = assertThrows(IllegalArgumentException.class,
                () -> SmallStack.call(() -> MtreePrinter.mtree(map.system(), false)));
        assertEquals("region=c10000 depth=10001: info mtree prints trees up to 10000 levels deep (its text grows"
                + " with the square of the depth); info mtree -f prints any depth", tooDeep.getMessage());
        MachineMap printable = MachineMap.parse(nested(MtreePrinter.MAX_DEPTH), MemorySystem.LAYOUT_ONLY,
                MachineMap.UNIMPLEMENTED_DEVICES);
        String tree = SmallStack.call(() -> MtreePrinter.mtree(printable.system(), false));
        assertTrue(tree.endsWith("  ".repeat(MtreePrinter.MAX_DEPTH) + "0000000000000000-0000000000000fff (prio 0, "
                + "ram): c" + (MtreePrinter.MAX_DEPTH - 1) + "\n\n"));
    }

    /** Containers {@code c0} (2^64) holding {@code c1} ... down to {@code c(depth-1)}, a RAM region of 4 KiB. */
    static String nested(int depth) {
        StringBuilder regions = new StringBuilder();
        for (int i = 0; i < depth; i++) {
            if (i > 0) {
                regions.append(", ");
            }
            boolean last = i == depth - 1;
            regions.append("\"c").append(i).append("\": { \"name\": \"c").append(i).append("\", \"kind\": \"")
                    .append(last ? "ram" : "container").append("\", \"size\": \"")
                    .append(i == 0 ? "0x10000000000000000" : "0x1000").append('"');
            if (!last) {
                regions.append(", \"subregions\": [ { \"region\": \"c").append(i + 1).append("\", \"addr\": \"0x0\" } ]");
            }
            regions.append(" }");
        }
        return "{ \"format\": \"guestmem-map/1\", \"regions\": {" + regions
                + "}, \"addressSpaces\": [ { \"name\": \"memory\", \"root\": \"c0\" } ] }";
    }
}
