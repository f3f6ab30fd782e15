package dev.guestmem.memory;

import dev.guestmem.memory.internal.access.MmioDispatch;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * A device's I/O ports described as a table, as ISA devices describe them: QEMU's {@code PortioList} with
 * {@code portio_list_init}, {@code portio_list_add}, {@code portio_list_del}, {@code portio_list_destroy} and
 * {@code portio_list_set_flush_coalesced} ({@code softmmu/ioport.c}), and the 2012 header's
 * {@code MemoryRegionPortio} entries ({@code old_portio}).
 *
 * <h2>Layout, as {@code portio_list_add}</h2>
 * The entries, sorted by offset, are cut into runs: an entry whose offset lies beyond the end of the run so far
 * starts a new one. Each run becomes one I/O region named after the list, mapped at {@code start} plus the run's
 * first offset, as large as its entries reach: an entry covers {@code len + size - 1} bytes from its offset, as
 * QEMU counts them. So {@code info mtree} shows the same regions as QEMU's for the same table.
 *
 * <h2>Accesses, as {@code portio_read} and {@code portio_write}</h2>
 * The regions' ops take every size, aligned or not, little-endian, and hand the callbacks at most 4 bytes at a time.
 * An access of {@code n} bytes at port {@code p} goes to the first entry whose ports hold {@code p}, whose access size
 * is {@code n} and that has the callback; the callback gets the absolute port number. When none does and {@code n} is
 * 2, two byte accesses are made, at {@code p} and {@code p + 1}, if an entry of byte size holds {@code p}: the second
 * only while {@code p + 1} is still within that entry (a read fills the missing byte with {@code 0xff}). A read that
 * nothing serves gives all ones of its size; a write that nothing serves is dropped. Accesses run under the
 * {@link GlobalLock}, as QEMU's ISA devices do under the BQL.
 *
 * <p>Threading: {@link #add}, {@link #del} and {@link #destroy} are transactions (see {@link MemorySystem}).
 */
public final class PortioList {
    /** QEMU's {@code IOPortReadFunc}: the value, in the entry's size, of absolute port {@code port}. */
    @FunctionalInterface
    public interface Read {
        int read(long port);
    }

    /** QEMU's {@code IOPortWriteFunc}: {@code data} holds the entry's size in its low bytes. */
    @FunctionalInterface
    public interface Write {
        void write(long port, int data);
    }

    /**
     * QEMU's {@code MemoryRegionPortio}: {@code len} ports from {@code offset} (relative to the list's start), each
     * accessed {@code size} bytes at a time.
     *
     * @param offset ports from the list's start, 0 to 0xffff
     * @param len    ports, at least 1
     * @param size   the access size in bytes: 1, 2 or 4
     * @param read   or null
     * @param write  or null
     */
    public record Portio(int offset, int len, int size, Read read, Write write) {
        public Portio {
            if (offset < 0 || offset > 0xffff || len < 1 || len > 0x10000 || (size != 1 && size != 2 && size != 4)) {
                throw new IllegalArgumentException("offset=" + U64.hex(offset) + " len=" + len + " size=" + size
                        + ": a port entry needs an offset below 0x10000, a len of 1 to 0x10000 and a size of 1, 2 or 4");
            }
        }
    }

    private final MemorySystem system;
    private final List<Portio> ports;
    private final String name;
    private final ArrayList<MemoryRegion> regions = new ArrayList<>();
    private boolean flushCoalesced;
    private MemoryRegion addressSpace;
    private boolean destroyed;

    /**
     * QEMU's {@code portio_list_init}.
     *
     * @param ports the entries, sorted by offset (QEMU's table without its {@code PORTIO_END_OF_LIST})
     * @param name  the name of every region the list makes
     */
    public PortioList(MemorySystem system, List<Portio> ports, String name) {
        this.system = Objects.requireNonNull(system, "system");
        this.name = Objects.requireNonNull(name, "name");
        this.ports = List.copyOf(ports);
        if (this.ports.isEmpty()) {
            throw new IllegalArgumentException("portio=" + name + ": a port list needs at least one entry");
        }
        for (int i = 1; i < this.ports.size(); i++) {
            if (this.ports.get(i).offset() < this.ports.get(i - 1).offset()) {
                throw new IllegalArgumentException("portio=" + name + " ports[" + i + "].offset="
                        + U64.hex(this.ports.get(i).offset()) + " previous=" + U64.hex(this.ports.get(i - 1).offset())
                        + ": entries must be sorted by offset");
            }
        }
    }

    /** QEMU's {@code portio_list_set_flush_coalesced}: the regions made by {@link #add} flush coalesced MMIO. */
    public void setFlushCoalesced() {
        flushCoalesced = true;
    }

    /**
     * QEMU's {@code portio_list_add}: makes the regions (see the class comment) and maps them into
     * {@code addressSpace} (an I/O address space's root or a container) at port {@code start} plus their first offset,
     * in one transaction.
     *
     * @throws IllegalStateException if the list is mapped already or destroyed
     */
    public void add(MemoryRegion addressSpace, long start) {
        Objects.requireNonNull(addressSpace, "addressSpace");
        if (destroyed || this.addressSpace != null) {
            throw new IllegalStateException("portio=" + name + ": " + (destroyed ? "destroyed" : "added already"));
        }
        ArrayList<MemoryRegion> made = new ArrayList<>();
        ArrayList<Long> at = new ArrayList<>();
        int runStart = 0;
        int low = ports.getFirst().offset();
        int high = low + ports.getFirst().len() + ports.getFirst().size() - 1; // exclusive, as QEMU counts
        for (int i = 1; i <= ports.size(); i++) {
            Portio p = i < ports.size() ? ports.get(i) : null;
            if (p == null || p.offset() > high) {
                made.add(region(ports.subList(runStart, i), start + low, low, high - low));
                at.add(start + low);
                if (p != null) {
                    runStart = i;
                    low = p.offset();
                    high = low + p.len() + p.size() - 1;
                }
            } else if (p.offset() + p.len() > high) {
                high = p.offset() + p.len() + p.size() - 1;
            }
        }
        system.transaction(() -> {
            for (int i = 0; i < made.size(); i++) {
                addressSpace.addSubregion(at.get(i), made.get(i));
            }
        });
        regions.addAll(made);
        this.addressSpace = addressSpace;
    }

    /** QEMU's {@code portio_list_del}: unmaps the regions; {@link #add} may map the list again. */
    public void del() {
        if (addressSpace == null) {
            return;
        }
        final MemoryRegion from = addressSpace;
        system.transaction(() -> {
            for (MemoryRegion r : regions) {
                from.delSubregion(r);
            }
        });
        regions.clear();
        addressSpace = null;
    }

    /** QEMU's {@code portio_list_destroy}: unmaps and destroys the regions; the list cannot be added again. */
    public void destroy() {
        final List<MemoryRegion> gone = List.copyOf(regions);
        del();
        system.transaction(() -> gone.forEach(MemoryRegion::destroy));
        destroyed = true;
    }

    /** The regions {@link #add} made, in port order; empty while the list is not mapped. */
    public List<MemoryRegion> regions() {
        return Collections.unmodifiableList(regions);
    }

    public String name() {
        return name;
    }

    @Override
    public String toString() {
        return "PortioList[" + name + ", " + ports.size() + " entries, " + regions.size() + " regions]";
    }

    /** One run's region: entries {@code run}, region offset 0 at port {@code base} (= list offset {@code low}). */
    private MemoryRegion region(List<Portio> run, long base, int low, int size) {
        final Portio[] entries = run.toArray(new Portio[0]);
        MemoryRegion mr = system.io(name, size, MemoryRegionOps.builder()
                .read((addr, n) -> read(entries, low, base, addr, n))
                .write((addr, data, n) -> write(entries, low, base, addr, data, n))
                .endianness(DeviceEndian.LITTLE)
                .valid(0, 0, true)
                .impl(0, 0, true)
                .build());
        if (flushCoalesced) {
            mr.setFlushCoalesced();
        }
        return mr;
    }

    /** QEMU's {@code find_portio}: the entry serving {@code width} bytes at region offset {@code addr}, or null. */
    private static Portio find(Portio[] entries, int low, long addr, int width, boolean write) {
        for (Portio p : entries) {
            long off = p.offset() - low;
            if (addr >= off && addr < off + p.len() && width == p.size()
                    && (write ? p.write() != null : p.read() != null)) {
                return p;
            }
        }
        return null;
    }

    private static long read(Portio[] entries, int low, long base, long addr, int size) {
        Portio p = find(entries, low, addr, size, false);
        if (p != null) {
            return p.read().read(base + addr) & 0xffff_ffffL;
        }
        long data = MmioDispatch.mask(size);
        if (size == 2) {
            p = find(entries, low, addr, 1, false);
            if (p != null) {
                // As QEMU: each byte read as its callback returns it (a uint32_t), OR-ed, then cut to the size.
                data = p.read().read(base + addr) & 0xffff_ffffL;
                if (addr + 1 < p.offset() - low + p.len()) {
                    data |= (p.read().read(base + addr + 1) & 0xffff_ffffL) << 8;
                } else {
                    data |= 0xff00;
                }
            }
        }
        return data;
    }

    private static void write(Portio[] entries, int low, long base, long addr, long data, int size) {
        Portio p = find(entries, low, addr, size, true);
        if (p != null) {
            p.write().write(base + addr, (int) data);
        } else if (size == 2) {
            p = find(entries, low, addr, 1, true);
            if (p != null) {
                p.write().write(base + addr, (int) (data & 0xff));
                if (addr + 1 < p.offset() - low + p.len()) {
                    p.write().write(base + addr + 1, (int) ((data >>> 8) & 0xff));
                }
            }
        }
    }
}
