package dev.guestmem.memory.testing;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;

/**
 * What the parsers' fuzz properties share: the corpus kept in the repository, a mutator of text, and the bound on
 * the heap one input may allocate.
 */
public final class Fuzz {
    /** Pieces that parsers give meaning to, spliced into inputs by {@link #mutate}. */
    private static final String[] TOKENS = {"{", "}", "[", "]", "\"", ",", ":", "0x", "0x10000000000000000",
            "ffffffffffffffff", "0000000000000000", "-1", "1e999", "null", "true", "\n", "  ", "\t", "\u00e9", "\ud800",
            "alias ", " @", "-", "(prio ", ", ram)", ", i/o)", ": ", "[disabled]", "[DETECTED OVERFLOW!] ",
            "address-space: ", "memory-region: ", "\"kind\": \"alias\"", "\"subregions\": [", "\"region\": \"",
            "\"alias\": { \"target\": \"", "\"size\": \"0x0\"", "\"priority\": 2147483648"};

    private Fuzz() {
    }

    /** The text of each listed resource ({@code /fuzz/map/seed-1.json} and so on). */
    public static List<String> resources(String... names) {
        ArrayList<String> out = new ArrayList<>();
        for (String name : names) {
            try (InputStream in = Fuzz.class.getResourceAsStream(name)) {
                if (in == null) {
                    throw new IllegalStateException("missing test resource " + name);
                }
                out.add(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return out;
    }

    /** Inputs made by {@link #mutate mutating} one of {@code seeds}, chosen at random. */
    public static Arbitrary<String> mutationsOf(List<String> seeds) {
        return Arbitraries.randomValue(random -> mutate(seeds.get(random.nextInt(seeds.size())), random));
    }

    /** {@code seed} after 1 to 8 random edits: a character changed, a token inserted, a span deleted or repeated. */
    public static String mutate(String seed, Random random) {
        StringBuilder sb = new StringBuilder(seed);
        int edits = 1 + random.nextInt(8);
        for (int e = 0; e < edits; e++) {
            int at = sb.isEmpty() ? 0 : random.nextInt(sb.length() + 1);
            switch (random.nextInt(6)) {
                case 0 -> {
                    if (at < sb.length()) {
                        sb.setCharAt(at, (char) (random.nextBoolean() ? 32 + random.nextInt(95) : random.nextInt(0x3000)));
                    }
                }
                case 1, 2 -> sb.insert(at, TOKENS[random.nextInt(TOKENS.length)]);
                case 3 -> sb.delete(at, Math.min(sb.length(), at + 1 + random.nextInt(40)));
                case 4 -> {
                    int end = Math.min(sb.length(), at + 1 + random.nextInt(200));
                    sb.insert(at, sb.substring(at, end));
                }
                default -> sb.setLength(at); // truncated
            }
        }
        return sb.toString();
    }

    /**
     * Runs {@code parse} and fails if it allocates more than {@code 16 MiB + 4 KiB per input character}: a parser
     * that is linear in its input stays far below, and one that blows up (a quadratic walk, a huge array for a big
     * number) does not.
     */
    public static <T> T withinHeapBound(String input, Supplier<T> parse) {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = threads.getCurrentThreadAllocatedBytes();
        T result = parse.get();
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        long bound = (16L << 20) + 4096L * input.length();
        if (allocated > bound) {
            throw new AssertionError("allocated=" + allocated + " bound=" + bound + " for an input of "
                    + input.length() + " characters");
        }
        return result;
    }
}
