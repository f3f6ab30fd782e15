package dev.guestmem.jcstress;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;
import org.openjdk.jcstress.Main;

/**
 * Runs jcstress's {@link Main} on the module's tests, as the build does in {@code integration-test}. jcstress exits
 * non-zero when a test saw a forbidden outcome or failed to run, but only prints a notice and returns when its test
 * selector ({@code -t REGEXP}) matches nothing; that would pass while testing nothing, so this refuses it first,
 * against the list the annotation processor wrote ({@code META-INF/TestList}, one test per line).
 */
public final class RunTests {
    private static final String TEST_LIST = "/META-INF/TestList";

    private RunTests() {
    }

    /**
     * jcstress's command line, which must select tests with {@code -t REGEXP}.
     *
     * @param args jcstress's options
     * @throws Exception when no listed test matches, or whatever jcstress throws
     */
    public static void main(String[] args) throws Exception {
        String selector = null;
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals("-t")) {
                selector = args[i + 1];
            }
        }
        if (selector == null) {
            throw new IllegalArgumentException("no -t REGEXP: the run must name the tests it checks");
        }
        Pattern pattern = Pattern.compile(selector);
        long matching;
        try (InputStream in = RunTests.class.getResourceAsStream(TEST_LIST)) {
            if (in == null) {
                throw new IllegalStateException(TEST_LIST + " is missing: the annotation processor did not run");
            }
            try (BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                matching = lines.lines().filter(line -> pattern.matcher(line).find()).count();
            }
        } catch (IOException e) {
            throw new IllegalStateException("reading " + TEST_LIST, e);
        }
        if (matching == 0) {
            throw new IllegalStateException("-t " + selector + " matches no test of " + TEST_LIST);
        }
        System.out.println("guestmem: " + matching + " jcstress tests match -t " + selector);
        Main.main(args);
    }
}
