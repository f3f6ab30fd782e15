/**
 * Migration of guest RAM, as QEMU's {@code migration/ram.c}: {@link dev.guestmem.offheap.migration.RamMigration}
 * saves a stopped machine's RAM to a byte channel, restores it and compares two machines' RAM byte for byte;
 * {@link dev.guestmem.offheap.migration.PreCopy} migrates a running machine's RAM with pre-copy rounds driven by the
 * MIGRATION dirty bitmap. Both write guestmem's own versioned stream (described in the README's "Migrating guest
 * RAM"), which the destination checks field by field.
 */
package dev.guestmem.offheap.migration;
