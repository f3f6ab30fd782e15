/**
 * guestmem's core: QEMU's memory API for the JVM. The region tree and its transactions, rendering into flat views,
 * memory listeners, the access path, dirty memory and guest RAM, all in pure Java with the Foreign Function and
 * Memory API. Machine maps as JSON and QEMU's {@code info mtree} text live in memory-tools.
 */
module dev.guestmem.core {
    requires org.jctools.core;

    exports dev.guestmem.memory;
}
