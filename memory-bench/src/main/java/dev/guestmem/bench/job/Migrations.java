package dev.guestmem.bench.job;

/** The migrations the main job can drive. */
final class Migrations {
    private Migrations() {
    }

    /**
     * Pre-copy of the machine's RAM through the library's migration API. This build has no such API yet
     * (memory-offheap's {@code dev.guestmem.offheap.migration} is not merged), so it is a migration that does not run
     * and says why.
     */
    static LiveMigration preCopy() {
        return LiveMigration.none("this build has no RAM migration API (dev.guestmem.offheap.migration) to drive");
    }
}
