package dev.guestmem.bench.peers;

import dev.guestmem.bench.peers.PeersTable.Column;
import dev.guestmem.bench.peers.PeersTable.Row;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The table shows what was measured where it belongs, its ratios are right, and a missing peer says so. */
class PeersTableTest {

    private static PeersTable filled() {
        PeersTable t = new PeersTable();
        for (Column c : Column.values()) {
            t.put(Row.RAW, c, null, 5);
            for (int i = 0; i < PeersTable.REGIONS.size(); i++) {
                int regions = PeersTable.REGIONS.get(i);
                t.put(Row.ADDRESS_SPACE, c, regions, 50 * (i + 1));
                t.put(Row.SOFT_TLB, c, regions, 60);
                t.put(Row.UNICORN, c, regions, c == Column.WRITE8 ? 70 : 80);
                t.put(Row.VM_MEMORY, c, regions, 25 * (i + 1));
            }
        }
        return t;
    }

    @Test
    void everyRowHasItsNanosAndItsRatiosToRawAndVmMemory() {
        String out = filled().render();
        String[] lines = out.split("\n");
        assertEquals("| | | 8-byte read | 8-byte write | 4 KiB read | 4 KiB write | 8-byte write, dirty logging on |",
                lines[2]);
        assertTrue(out.contains("| raw `MemorySegment` (the limit) | ns | 5.0 (any) | 5.0 (any) | 5.0 (any) "
                + "| 5.0 (any) | no log |\n"), out);
        assertTrue(out.contains("| | x vm-memory | 0.20 / 0.10 / 0.07 |"), out);
        assertTrue(out.contains("| guestmem `AddressSpace` | ns | 50 / 100 / 150 |"), out);
        assertTrue(out.contains("| | x raw | 10.0 / 20.0 / 30.0 |"), out);
        assertTrue(out.contains("| | x vm-memory | 2.00 / 2.00 / 2.00 |"), out);
        assertTrue(out.contains(
                "| guestmem `SoftTlb` | ns | 60 / 60 / 60 | 60 / 60 / 60 | no bulk API | no bulk API |"), out);
        // Unicorn's dirty column is its plain write (70), marked, and its ratios are taken from it.
        assertTrue(out.contains("| 70 / 70 / 70 * |\n| | x raw |"), out);
        assertTrue(out.contains("| 14.0 / 14.0 / 14.0 * |\n| | x vm-memory |"), out);
        assertTrue(out.contains("*: Unicorn keeps no dirty log; its plain write."), out);
    }

    @Test
    void aMissingPeerSaysSoInItsCellsAndWhyInANote() {
        PeersTable t = filled();
        t.unavailable(Row.VM_MEMORY, "cargo=cargo not on PATH: install it with 'apt-get install cargo'");
        String out = t.render();
        assertTrue(out.contains("| vm-memory `read_obj`/`write_obj`, `read_slice`/`write_slice` | ns | n/a | n/a | n/a "
                + "| n/a | n/a |\n"), out);
        assertTrue(out.contains("not measured: cargo=cargo not on PATH"), out);
        assertTrue(!out.contains("x vm-memory"), "no ratios to a peer that was not measured:\n" + out);
    }

    @Test
    void unmeasuredRegionCountsAreDashes() {
        PeersTable t = new PeersTable();
        t.put(Row.ADDRESS_SPACE, Column.READ8, 100, 42);
        assertTrue(t.render().contains("| guestmem `AddressSpace` | ns | - / 42 / - |"), t.render());
        assertEquals("regions=7: the table has [1, 100, 1000]", assertThrows(IllegalArgumentException.class,
                () -> t.put(Row.RAW, Column.READ8, 7, 1)).getMessage());
    }

    @Test
    void jmhMethodsGoToTheirRowAndColumn() {
        PeersTable t = new PeersTable();
        PeersComparison.put(t, "addressSpaceWrite8Dirty", 1000, 9);
        PeersComparison.put(t, "softTlbRead8", 1, 3);
        PeersComparison.put(t, "unicornWrite4k", 100, 7);
        PeersComparison.put(t, "rawRead4k", null, 2);
        assertEquals(9, t.get(Row.ADDRESS_SPACE, Column.WRITE8_DIRTY, 2));
        assertEquals(3, t.get(Row.SOFT_TLB, Column.READ8, 0));
        assertEquals(7, t.get(Row.UNICORN, Column.WRITE4K, 1));
        assertEquals(2, t.get(Row.RAW, Column.READ4K, 1));
        assertTrue(Double.isNaN(t.get(Row.ADDRESS_SPACE, Column.READ8, 2)));
    }

    @Test
    void badOptionsAreRefusedWithTheBadValueBeforeAnythingRuns() throws Exception {
        assertEquals("peers: regions=7: expected some of [1, 100, 1000]", refuse(List.of("-p", "regions=7"), 1));
        assertEquals("peers: harnessSeconds=0.0: expected more than 0 and at most 600", refuse(List.of(), 0));
        assertTrue(refuse(List.of("Foo"), 1).startsWith("peers: includes=[Foo]: the benchmark is chosen"));
        assertTrue(refuse(List.of("-f", "x"), 1).startsWith("peers: jmhOptions=[-f, x]: "));
    }

    private static String refuse(List<String> args, double seconds) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int code = PeersComparison.run(args, Path.of("no-such-harness"), seconds,
                new PrintStream(bytes, true, StandardCharsets.UTF_8));
        assertEquals(2, code);
        String out = bytes.toString(StandardCharsets.UTF_8).trim();
        assertEquals(1, out.lines().count(), out);
        return out;
    }
}
