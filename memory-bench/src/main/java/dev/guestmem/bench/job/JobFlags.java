package dev.guestmem.bench.job;

import dev.guestmem.bench.riscv.RiscvVirtMachine.MemoryPath;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The main job's flags turned into {@link MainJob.Options}, with every bad value and impossible combination refused
 * by an {@link IllegalArgumentException} whose message is one {@code key=value} line.
 */
public final class JobFlags {
    static final int MAX_VCPUS = 32;
    /** RAM the vhost-user disk needs: the programs' 8 MiB and the disk's last MiB, with room between. */
    static final long DISK_MIN_RAM = 16L << 20;

    private JobFlags() {
    }

    /**
     * @param vcpus      vCPUs, or {@code null} for the cores
     * @param seconds    run time
     * @param ram        RAM size with a K, M or G suffix
     * @param ramBackend a {@link RamBackend} spec, or {@code null} for the default (memfd with a disk, else anonymous)
     * @param tlb        {@code host} (the fast {@code HostTlb}), {@code soft} (the checked {@code SoftTlb}), or
     *                   {@code null} for host
     * @param migrate    whether to migrate
     * @param disk       a disk image or {@code null}
     * @param progress   where the progress line goes, or {@code null}
     */
    public static MainJob.Options options(Integer vcpus, double seconds, String ram, String ramBackend, String tlb,
                                          boolean migrate, Path disk, PrintStream progress) {
        int n = vcpus == null ? Math.min(MAX_VCPUS, Runtime.getRuntime().availableProcessors()) : vcpus;
        if (n < 1 || n > MAX_VCPUS) {
            throw new IllegalArgumentException("vcpus=" + n + ": from 1 to " + MAX_VCPUS);
        }
        if (!(seconds >= 0.1 && seconds <= 3600)) {
            throw new IllegalArgumentException("seconds=" + seconds + ": from 0.1 to 3600");
        }
        long ramBytes = parseSize(ram);
        MemoryPath path = parseTlb(tlb == null ? "host" : tlb);
        RamBackend backend = RamBackend.parse(ramBackend != null ? ramBackend : disk != null ? "memfd" : "anonymous");
        if (disk != null) {
            if (!backend.shareable()) {
                throw new IllegalArgumentException("ram-backend=" + backend.spec() + " disk=" + disk
                        + ": a vhost-user disk needs RAM another process can map: --ram-backend memfd or file:DIR");
            }
            if (ramBytes < DISK_MIN_RAM) {
                throw new IllegalArgumentException("ram=" + ram + " disk=" + disk + ": a vhost-user disk needs at least"
                        + " 16M of RAM (its virtqueue lives in the last MiB)");
            }
            if (!Files.isRegularFile(disk) || !Files.isReadable(disk)) {
                throw new IllegalArgumentException("disk=" + disk + ": not a readable file");
            }
        }
        LiveMigration migration = migrate ? Migrations.preCopy(backend) : LiveMigration.none("--no-migrate");
        return new MainJob.Options(n, seconds, ramBytes, backend, path, migrate, disk, migration,
                progress == null ? null : ProgressLine.of(progress));
    }

    /** {@code host} or {@code soft}, in any case. */
    static MemoryPath parseTlb(String text) {
        return switch (text.strip().toLowerCase(Locale.ROOT)) {
            case "host" -> MemoryPath.HOST_TLB;
            case "soft" -> MemoryPath.SOFT_TLB;
            default -> throw new IllegalArgumentException("tlb=" + text + ": host (the fast HostTlb) or soft (the"
                    + " checked SoftTlb)");
        };
    }

    /** The name {@link #parseTlb} takes for {@code path}: what the summary and the report call the TLB. */
    static String tlbName(MemoryPath path) {
        return path == MemoryPath.HOST_TLB ? "host (HostTlb)" : path == MemoryPath.SOFT_TLB ? "soft (SoftTlb)"
                : path.name();
    }

    /** {@code 64M}, {@code 1G}, {@code 8192K} or bytes, checked against the machine's limits. */
    static long parseSize(String text) {
        String t = text.strip().toUpperCase(Locale.ROOT);
        int shift = 0;
        if (t.endsWith("K") || t.endsWith("M") || t.endsWith("G")) {
            shift = switch (t.charAt(t.length() - 1)) {
                case 'K' -> 10;
                case 'M' -> 20;
                default -> 30;
            };
            t = t.substring(0, t.length() - 1);
        }
        long value;
        try {
            value = Long.parseLong(t);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("ram=" + text + ": a size such as 64M, 1G or 8388608");
        }
        if (value <= 0 || value > (2L << 30) >> shift) {
            throw new IllegalArgumentException("ram=" + text + ": from 8M to 2G");
        }
        long bytes = value << shift;
        if (bytes < (8L << 20) || (bytes & 0xfff) != 0) {
            throw new IllegalArgumentException("ram=" + text + ": from 8M to 2G, in whole 4 KiB pages");
        }
        return bytes;
    }
}
