package dev.guestmem.memory.map;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonStreamContext;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.guestmem.memory.DeviceEndian;
import dev.guestmem.memory.MemoryRegion;
import dev.guestmem.memory.MemoryRegionOps;

import java.io.IOException;
import java.io.Reader;
import java.io.StringWriter;
import java.nio.CharBuffer;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;

/**
 * Reads the text of a {@code guestmem-map/1} map token by token (Jackson's streaming parser, never a tree of the
 * whole map) into one {@link RegionSpec} per region, each field checked as it is read; {@link MapLoader} then builds
 * the regions. Only the small parts (an alias, an I/O region's ops, the address spaces, a value of the wrong type
 * that a message must show) are read as trees.
 *
 * <p>The text is checked as JSON first: a syntax error anywhere, JSON nested deeper than
 * {@link MachineMap#MAX_JSON_DEPTH}, a field name twice in one object (so an id twice) or text after the map is
 * reported even when the map has other faults before it, as when the whole tree was read first. Of the map's own
 * faults, a wrong {@code format} comes first, then the first fault in the order of the text.
 *
 * <p>Threading: one reading thread per instance.
 */
final class MapStream {
    /**
     * Maps, duplicates refused, nesting bounded; field names are not interned (a map may hold a million ids). The
     * parser never closes the text: it would at the end of its input (reached when the top is a number), and the check
     * for text after the map still reads it.
     */
    static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .disable(StreamReadFeature.AUTO_CLOSE_SOURCE)
            .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MachineMap.MAX_JSON_DEPTH).build())
            .build());

    private static final String REGION_FIELDS = "name, kind, size, readonly, nonvolatile, unmergeable, enabled, romd,"
            + " alias, ops, subregions";

    /** What a map's text holds: its regions in the map's order, and its address spaces as written. */
    record Read(LinkedHashMap<String, RegionSpec> regions, JsonNode addressSpaces) {
    }

    private final JsonParser p;
    private final Reader text;
    /** Equal access rules share one record. */
    private final HashMap<MachineMap.OpsSpec, MachineMap.OpsSpec> opsSpecs = new HashMap<>();

    private MapStream(JsonParser p, Reader text) {
        this.p = p;
        this.text = text;
    }

    /**
     * Reads a whole map from {@code text} (which it closes).
     *
     * @throws MapFormatException if the text is not UTF-8, not JSON, or not a map, naming the position or the id and
     *         the field
     * @throws IOException if {@code text} cannot be read
     */
    static Read read(Reader text) throws IOException {
        try (text; JsonParser p = JSON.createParser(text)) {
            return new MapStream(p, text).read();
        } catch (StreamConstraintsException e) {
            throw new MapFormatException("not valid JSON: nested deeper than " + MachineMap.MAX_JSON_DEPTH
                    + " levels (a map needs 6)", e);
        } catch (JsonProcessingException e) {
            throw new MapFormatException("not valid JSON: " + e.getOriginalMessage() + at(e.getLocation()), e);
        } catch (Utf8Reader.NotUtf8Exception e) {
            throw new MapFormatException(e.getMessage(), e);
        }
    }

    private static String at(JsonLocation location) {
        // Jackson gives no location for some errors (a nesting limit reached, for one).
        return location == null || location.getLineNr() < 0 ? ""
                : " at line " + location.getLineNr() + " column " + location.getColumnNr();
    }

    private Read read() throws IOException {
        JsonToken first = p.nextToken();
        if (first == null) {
            throw new MapFormatException("not valid JSON: no content");
        }
        if (first != JsonToken.START_OBJECT) {
            p.skipChildren(); // the JSON is checked first
            p.finishToken(); // a string's text is read lazily: read it so that what follows it is what is left
            checkEnd();
            throw new MapFormatException("the map must be a JSON object");
        }
        JsonStreamContext top = p.getParsingContext();
        JsonNode format = null;
        MapFormatException fault = null;
        LinkedHashMap<String, RegionSpec> regions = null;
        JsonNode spaces = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            p.nextToken();
            if (field.equals("format")) {
                format = JSON.readTree(p);
                continue;
            }
            if (fault != null) {
                p.skipChildren();
                continue;
            }
            try {
                switch (field) {
                    case "regions" -> regions = regions();
                    case "addressSpaces" -> spaces = JSON.readTree(p);
                    default -> throw new MapFormatException("the map: unknown field \"" + field
                            + "\" (known: format, regions, addressSpaces)");
                }
            } catch (MapFormatException e) {
                // Kept until the rest of the text has been read as JSON: a JSON fault after it comes first.
                fault = e;
                while (p.getParsingContext() != top && p.nextToken() != null) {
                    // skip to the end of this field's value
                }
            }
        }
        checkEnd();
        if (format == null || !format.isTextual() || !MachineMap.FORMAT.equals(format.asText())) {
            throw new MapFormatException("format: expected \"" + MachineMap.FORMAT + "\", found " + format);
        }
        if (fault != null) {
            throw fault;
        }
        if (regions == null) {
            throw new MapFormatException("regions: expected an object of id -> region");
        }
        return new Read(regions, spaces);
    }

    /** Refuses anything but white space after the map's closing brace, naming where it starts. */
    private void checkEnd() throws IOException {
        JsonLocation end = p.currentLocation();
        int[] lineColumn = {end.getLineNr(), end.getColumnNr()};
        StringWriter buffered = new StringWriter();
        p.releaseBuffered(buffered);
        whiteSpaceOnly(buffered.getBuffer(), lineColumn);
        char[] more = new char[8192];
        for (int n = text.read(more); n >= 0; n = text.read(more)) {
            whiteSpaceOnly(CharBuffer.wrap(more, 0, n), lineColumn);
        }
    }

    /** Refuses the first character of {@code chars} that is not white space; counts lines and columns past them. */
    private static void whiteSpaceOnly(CharSequence chars, int[] lineColumn) {
        for (int i = 0; i < chars.length(); i++) {
            char c = chars.charAt(i);
            if (c == '\n') {
                lineColumn[0]++;
                lineColumn[1] = 1;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                lineColumn[1]++;
            } else {
                throw new MapFormatException("not valid JSON: text after the end of the map at line " + lineColumn[0]
                        + " column " + lineColumn[1]);
            }
        }
    }

    /**
     * The regions object, from its opening brace (the current token) to its closing one. After a region's fault the
     * rest are only read as JSON, their ids still checked for duplicates, and the fault is thrown at the end.
     */
    private LinkedHashMap<String, RegionSpec> regions() throws IOException {
        if (p.currentToken() != JsonToken.START_OBJECT) {
            throw new MapFormatException("regions: expected an object of id -> region");
        }
        JsonStreamContext regionsObject = p.getParsingContext();
        // The ids are checked for duplicates here, by the map that holds them anyway, rather than by a set of
        // Jackson's as large: Jackson's check is turned off for this object and on again for each region's.
        p.disable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
        LinkedHashMap<String, RegionSpec> specs = new LinkedHashMap<>();
        MapFormatException fault = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String id = p.currentName();
            if (specs.containsKey(id)) {
                // Jackson's own words for a field twice, so an id twice reads like any other name twice.
                throw new JsonParseException(p, "Duplicate field '" + id + "'", p.currentTokenLocation());
            }
            boolean object = p.nextToken() == JsonToken.START_OBJECT;
            if (object) {
                p.disable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
                p.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION); // on the region's own object
            }
            RegionSpec spec = null;
            if (fault == null) {
                try {
                    if (!object) {
                        throw new MapFormatException(where(id, null) + "expected an object");
                    }
                    spec = region(id);
                } catch (MapFormatException e) {
                    fault = e;
                }
            }
            while (p.getParsingContext() != regionsObject && p.nextToken() != null) {
                // to the end of this region's value, when a fault left the parser inside it or it was skipped
            }
            specs.put(id, spec);
        }
        p.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
        if (fault != null) {
            throw fault;
        }
        return specs;
    }

    /** One region's object, from its opening brace (the current token) to its closing one. */
    private RegionSpec region(String id) throws IOException {
        Object name = null;
        Object kindName = null;
        Object size = null;
        Object readonly = null;
        Object nonvolatile = null;
        Object unmergeable = null;
        Object enabled = null;
        Object romd = null;
        JsonNode alias = null;
        JsonNode ops = null;
        Object subs = null;
        String unknown = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            p.nextToken();
            switch (field) {
                case "name" -> name = text();
                case "kind" -> kindName = text();
                case "size" -> size = text();
                case "readonly" -> readonly = bool();
                case "nonvolatile" -> nonvolatile = bool();
                case "unmergeable" -> unmergeable = bool();
                case "enabled" -> enabled = bool();
                case "romd" -> romd = bool();
                case "alias" -> alias = JSON.readTree(p);
                case "ops" -> ops = JSON.readTree(p);
                case "subregions" -> subs = p.currentToken() == JsonToken.START_ARRAY ? subregions(id) : JSON.readTree(p);
                default -> {
                    if (unknown == null) {
                        unknown = field;
                    }
                    p.skipChildren();
                }
            }
        }
        if (unknown != null) {
            throw new MapFormatException("region \"" + id + "\": unknown field \"" + unknown + "\" (known: "
                    + REGION_FIELDS + ")");
        }
        String nameText = text(id, "name", name);
        String kindText = text(id, "kind", kindName);
        MemoryRegion.Kind kind = MemoryRegion.Kind.fromMapName(kindText);
        if (kind == null) {
            throw new MapFormatException(where(id, "kind") + "unknown kind \"" + kindText
                    + "\" (expected container, ram, rom, rom-device, ram-device, io, alias, iommu or reservation)");
        }
        long bytes = HexNumbers.size(where(id, "size"), size);
        if (kind != MemoryRegion.Kind.ALIAS && alias != null) {
            throw new MapFormatException(where(id, "alias") + "only regions of kind alias have an alias field");
        }
        if (kind != MemoryRegion.Kind.ROM_DEVICE && romd != null) {
            throw new MapFormatException(where(id, "romd") + "only rom-device regions have a romd mode");
        }
        boolean device = kind == MemoryRegion.Kind.IO || kind == MemoryRegion.Kind.ROM_DEVICE;
        if (!device && ops != null) {
            throw new MapFormatException(where(id, "ops") + "only io and rom-device regions have ops");
        }
        MachineMap.OpsSpec opsSpec = device ? opsSpecs.computeIfAbsent(opsSpec(id, ops), o -> o) : null;
        String target = null;
        long offset = 0;
        if (kind == MemoryRegion.Kind.ALIAS) {
            if (alias == null || !alias.isObject()) {
                throw new MapFormatException(where(id, "alias") + "an alias needs { \"target\": id, \"offset\": hex }");
            }
            checkFields("region \"" + id + "\" alias", alias, "target", "offset");
            target = text(id, "alias.target", raw(alias.get("target")));
            offset = alias.has("offset") ? HexNumbers.address(where(id, "alias.offset"), raw(alias.get("offset"))) : 0;
        }
        int flags = (flag(id, "readonly", readonly, false) ? RegionSpec.READONLY : 0)
                | (flag(id, "nonvolatile", nonvolatile, false) ? RegionSpec.NONVOLATILE : 0)
                | (flag(id, "unmergeable", unmergeable, false) ? RegionSpec.UNMERGEABLE : 0)
                | (flag(id, "enabled", enabled, true) ? 0 : RegionSpec.DISABLED)
                | (flag(id, "romd", romd, true) ? 0 : RegionSpec.NOT_ROMD);
        if (subs instanceof JsonNode) {
            throw new MapFormatException(where(id, "subregions") + "expected an array");
        }
        return new RegionSpec(id, nameText.equals(id) ? id : nameText, kind, bytes, flags, target, offset, opsSpec,
                (RegionSpec.Subregions) subs);
    }

    /** A subregions array, from its opening bracket (the current token) to its closing one. */
    private RegionSpec.Subregions subregions(String id) throws IOException {
        RegionSpec.Subregions list = new RegionSpec.Subregions();
        for (int i = 0; p.nextToken() != JsonToken.END_ARRAY; i++) {
            if (p.currentToken() != JsonToken.START_OBJECT) {
                throw new MapFormatException(where(id, "subregions[" + i + "]")
                        + "expected { \"region\": id, \"addr\": hex, \"priority\": int }");
            }
            Object region = null;
            Object addr = null;
            Object priority = null;
            String unknown = null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                switch (field) {
                    case "region" -> region = text();
                    case "addr" -> addr = text();
                    case "priority" -> priority = value == JsonToken.VALUE_NUMBER_INT
                            && p.getNumberType() == JsonParser.NumberType.INT ? (Object) p.getIntValue() : JSON.readTree(p);
                    default -> {
                        if (unknown == null) {
                            unknown = field;
                        }
                        p.skipChildren();
                    }
                }
            }
            if (unknown != null) {
                throw new MapFormatException("region \"" + id + "\" subregions[" + i + "]: unknown field \"" + unknown
                        + "\" (known: region, addr, priority)");
            }
            String child = text(id, "subregions[" + i + "].region", region);
            long at;
            try {
                at = HexNumbers.address("", addr);
            } catch (MapFormatException e) {
                throw new MapFormatException(where(id, "subregions[" + i + "].addr") + e.getMessage(), e);
            }
            if (priority != null && !(priority instanceof Integer)) {
                throw new MapFormatException(where(id, "subregions[" + i + "].priority")
                        + "expected a 32-bit integer, found " + priority);
            }
            list.add(child, at, priority == null ? 0 : (Integer) priority);
        }
        return list;
    }

    /** The current value where text is expected: a {@code String} when it is one, else the value as a tree. */
    private Object text() throws IOException {
        return p.currentToken() == JsonToken.VALUE_STRING ? p.getText() : JSON.readTree(p);
    }

    /** The current value where a flag is expected: a {@code Boolean} when it is one, else the value as a tree. */
    private Object bool() throws IOException {
        return switch (p.currentToken()) {
            case VALUE_TRUE -> Boolean.TRUE;
            case VALUE_FALSE -> Boolean.FALSE;
            default -> JSON.readTree(p);
        };
    }

    /** A value of a small tree as {@link #text()} would give it. */
    private static Object raw(JsonNode n) {
        return n != null && n.isTextual() ? n.asText() : n;
    }

    /** A value of a small tree as {@link #bool()} would give it. */
    private static Object rawFlag(JsonNode n) {
        return n != null && n.isBoolean() ? (Object) n.booleanValue() : n;
    }

    private MachineMap.OpsSpec opsSpec(String id, JsonNode ops) {
        if (ops == null) {
            return MachineMap.OpsSpec.DEFAULT;
        }
        if (!ops.isObject()) {
            throw new MapFormatException(where(id, "ops") + "expected an object");
        }
        checkFields("region \"" + id + "\" ops", ops, "endianness", "valid", "impl");
        DeviceEndian endian = DeviceEndian.NATIVE;
        JsonNode e = ops.get("endianness");
        if (e != null) {
            endian = switch (e.asText()) {
                case "native" -> DeviceEndian.NATIVE;
                case "little" -> DeviceEndian.LITTLE;
                case "big" -> DeviceEndian.BIG;
                default -> throw new MapFormatException(where(id, "ops.endianness")
                        + "expected native, little or big, found " + e);
            };
        }
        return new MachineMap.OpsSpec(endian, accessSizes(id, "ops.valid", ops.get("valid")),
                accessSizes(id, "ops.impl", ops.get("impl")));
    }

    private static MemoryRegionOps.AccessSizes accessSizes(String id, String field, JsonNode n) {
        if (n == null) {
            return MemoryRegionOps.AccessSizes.DEFAULT;
        }
        if (!n.isObject()) {
            throw new MapFormatException(where(id, field) + "expected { \"min\": n, \"max\": n, \"unaligned\": bool }");
        }
        checkFields("region \"" + id + "\" " + field, n, "min", "max", "unaligned");
        try {
            return new MemoryRegionOps.AccessSizes(smallInt(id, field + ".min", n.get("min")),
                    smallInt(id, field + ".max", n.get("max")),
                    n.has("unaligned") && flag(id, field + ".unaligned", rawFlag(n.get("unaligned")), false));
        } catch (IllegalArgumentException ex) {
            if (ex instanceof MapFormatException) {
                throw ex;
            }
            throw new MapFormatException(where(id, field) + ex.getMessage(), ex);
        }
    }

    private static int smallInt(String id, String field, JsonNode n) {
        if (n == null) {
            return 0;
        }
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw new MapFormatException(where(id, field) + "expected 1, 2, 4 or 8, found " + n);
        }
        return n.intValue();
    }

    /** A flag as read by {@link #bool()}: its value, {@code dflt} when absent, refused when not a boolean. */
    private static boolean flag(String id, String field, Object n, boolean dflt) {
        if (n == null) {
            return dflt;
        }
        if (!(n instanceof Boolean b)) {
            throw new MapFormatException(where(id, field) + "expected true or false, found " + n);
        }
        return b;
    }

    /** Text as read by {@link #text()}; refused when absent or not a string. */
    static String text(String id, String field, Object n) {
        if (!(n instanceof String s)) {
            throw new MapFormatException(where(id, field) + "expected a string, found " + n);
        }
        return s;
    }

    static void checkFields(String what, JsonNode node, String... allowed) {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            boolean ok = false;
            for (String a : allowed) {
                ok |= a.equals(f);
            }
            if (!ok) {
                throw new MapFormatException(what + ": unknown field \"" + f + "\" (known: "
                        + String.join(", ", allowed) + ")");
            }
        }
    }

    static String where(String id, String field) {
        return "region \"" + id + "\"" + (field == null ? "" : " field " + field) + ": ";
    }
}
