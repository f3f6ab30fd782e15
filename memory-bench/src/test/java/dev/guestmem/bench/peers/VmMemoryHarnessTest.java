package dev.guestmem.bench.peers;

import dev.guestmem.memory.MemTxAttrs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * vm-memory's Rust harness builds offline from Debian's crates and reads exactly the words guestmem reads for the
 * same seed (so both measure the same addresses); its output is parsed as printed; and a harness that cannot be built
 * gives one line saying why. Skipped, with the reason, only where cargo is not installed.
 */
class VmMemoryHarnessTest {
    /** The harness's directory, which the build passes in (memory-bench's pom). */
    private static final Path DIR = Path.of(System.getProperty("guestmem.peers.harness", "../peers/vm-memory-bench"));

    /** The harness, built; skips the test, with the reason, where cargo or the crate is not installed. */
    private static VmMemoryHarness builtHarness() throws VmMemoryHarness.HarnessException {
        VmMemoryHarness harness = VmMemoryHarness.in(DIR);
        String missing = harness.missingTools();
        assumeTrue(missing == null, missing);
        harness.build();
        return harness;
    }

    @Test
    void theHarnessReadsTheWordsGuestmemReadsForTheSameSeed() throws Exception {
        VmMemoryHarness harness = builtHarness();
        // Every region count with the benchmark's seed, and another seed once.
        for (long[] run : new long[][] {{1, PeersPattern.SEED}, {100, 7}, {1000, PeersPattern.SEED}}) {
            int regions = (int) run[0];
            long seed = run[1];
            PeersPattern pattern = new PeersPattern(regions);
            long sum = 0;
            try (PeersBenchmark.GuestMap map = PeersBenchmark.GuestMap.build(pattern, false)) {
                for (long addr : pattern.guestAddresses(PeersPattern.wordOffsets(seed))) {
                    sum += map.addressSpace().ldqLe(addr, MemTxAttrs.UNSPECIFIED, null);
                }
            }
            assertEquals(sum, harness.checksum(regions, seed), "regions=" + regions + " seed=" + seed);
        }
    }

    @Test
    void measuresAreParsedAsPrintedAndOtherLinesIgnored() {
        List<VmMemoryHarness.Measure> m = VmMemoryHarness.parse(List.of(
                "   Compiling vm-memory v0.10.0",
                "peer=vm-memory version=0.10.0 regions=100 op=read8 ns=30.125 passes=12 accesses=1048576 sink=0x1",
                "peer=vm-memory version=0.10.0 regions=1000 op=write8-dirty ns=101.5 passes=3 sink=0x2",
                "peer=vm-memory regions=1 seed=42 checksum=0x10"));
        assertEquals(List.of(new VmMemoryHarness.Measure("0.10.0", 100, "read8", 30.125),
                new VmMemoryHarness.Measure("0.10.0", 1000, "write8-dirty", 101.5)), m);
    }

    @Test
    void aHarnessThatCannotBeBuiltSaysWhyInOneLine(@TempDir Path empty) {
        VmMemoryHarness.HarnessException noManifest = assertThrows(VmMemoryHarness.HarnessException.class,
                () -> VmMemoryHarness.in(empty).build());
        assertTrue(noManifest.getMessage().startsWith("harness=" + empty + ": no Cargo.toml"), noManifest.getMessage());
        VmMemoryHarness noCargo = new VmMemoryHarness(DIR, "no-such-cargo-here");
        assertTrue(noCargo.missingTools().startsWith("cargo=no-such-cargo-here not on PATH: install it with"),
                noCargo.missingTools());
        assertThrows(VmMemoryHarness.HarnessException.class, noCargo::build);
    }

    @Test
    void aFailingHarnessRunGivesItsOwnErrorLine() throws Exception {
        VmMemoryHarness harness = builtHarness();
        VmMemoryHarness.HarnessException e = assertThrows(VmMemoryHarness.HarnessException.class,
                () -> harness.checksum(0, 1));
        assertTrue(e.getMessage().endsWith("exit=2: vm-memory-bench: regions=0: expected 1 to 16384"),
                e.getMessage());
    }
}
