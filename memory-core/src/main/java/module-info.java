/**
 * guestmem's core: QEMU's memory API for the JVM. The region tree and its transactions, rendering into flat views,
 * memory listeners, machine maps as JSON, and QEMU's {@code info mtree} text, all in pure Java with the Foreign
 * Function and Memory API for guest RAM.
 */
module dev.guestmem.core {
    requires com.fasterxml.jackson.databind;
    requires org.jctools.core;

    exports dev.guestmem.memory;
    exports dev.guestmem.memory.map;
    exports dev.guestmem.memory.mtree;
}
