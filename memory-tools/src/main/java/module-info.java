/**
 * guestmem's tools over the core: machine maps as data (the {@code guestmem-map/1} JSON format) and QEMU's
 * {@code info mtree} text, printed from a {@link dev.guestmem.memory.MemorySystem} and imported from QEMU's dumps.
 * The only module that needs a JSON library; memory-core stays free of it.
 */
module dev.guestmem.tools {
    requires transitive dev.guestmem.core; // maps and printers take and give core types
    requires com.fasterxml.jackson.databind;

    exports dev.guestmem.memory.map;
    exports dev.guestmem.memory.mtree;
}
