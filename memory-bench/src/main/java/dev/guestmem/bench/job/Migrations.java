package dev.guestmem.bench.job;

/** The migrations the main job can drive. */
final class Migrations {
    private Migrations() {
    }

    /** Pre-copy of the machine's RAM, whose RAM comes from {@code backend}, through the library's {@code PreCopy}. */
    static LiveMigration preCopy(RamBackend backend) {
        return new PreCopyMigration(backend);
    }
}
