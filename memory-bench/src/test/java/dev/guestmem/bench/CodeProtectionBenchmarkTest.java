package dev.guestmem.bench;

import dev.guestmem.memory.MemTxAttrs;
import dev.guestmem.memory.MemTxResult;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Each setup measures what it claims: every store lands, the same bytes in every setup, and only {@code protected}
 * reports, every store of it.
 */
class CodeProtectionBenchmarkTest {

    @ParameterizedTest
    @ValueSource(strings = {"unlogged", "logged", "protected"})
    void everySetupStoresTheSameAndOnlyProtectedReports(String code) {
        CodeProtectionBenchmark.Guest guest = new CodeProtectionBenchmark.Guest();
        guest.workingSet = 1 << 20;
        guest.code = code;
        guest.setup();
        CodeProtectionBenchmark bench = new CodeProtectionBenchmark();
        assertEquals(MemTxResult.OK, bench.tlbStore(guest));
        long tlbSum = sum(guest);
        assertEquals(MemTxResult.OK, bench.addressSpaceStore(guest));
        assertEquals(tlbSum, sum(guest), "both paths store the same");
        assertEquals(code.equals("protected") ? 2L * 8 * SoftTlbBenchmark.ADDRESSES : 0, guest.reported);
        assertEquals(expectedSum(), tlbSum);
    }

    private static long sum(CodeProtectionBenchmark.Guest guest) {
        long s = 0;
        for (long addr : guest.addresses) {
            s += guest.addressSpace.ldqLe(addr, MemTxAttrs.UNSPECIFIED, null);
        }
        return s;
    }

    /** What the loads read after every store of the loop: the last index stored at each address. */
    private static long expectedSum() {
        long[] offsets = SoftTlbBenchmark.randomOffsets(1 << 20, 42);
        Map<Long, Long> last = new HashMap<>();
        for (int i = 0; i < offsets.length; i++) {
            last.put(offsets[i], (long) i);
        }
        long s = 0;
        for (long off : offsets) {
            s += last.get(off);
        }
        return s;
    }
}
