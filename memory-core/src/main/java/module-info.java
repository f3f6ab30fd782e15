/**
 * guestmem's core: QEMU's memory API for the JVM. The region tree and its transactions, rendering into flat views,
 * memory listeners, the access path, dirty memory and guest RAM, all in pure Java with the Foreign Function and
 * Memory API. Machine maps as JSON and QEMU's {@code info mtree} text live in memory-tools.
 */
// The qualified exports name modules built after this one, which javac cannot see here: the "module" lint's
// "module not found" is expected for them.
@SuppressWarnings("module")
module dev.guestmem.core {
    requires org.jctools.core;

    exports dev.guestmem.memory;
    // An asymmetric fence for the dirty bitmaps' takes (memory-offheap provides membarrier); see AsymmetricFence.
    uses dev.guestmem.memory.AsymmetricFence.Provider;
    // A copier for the direct pieces of bulk reads and writes (memory-offheap provides memmove); see BulkCopier.
    uses dev.guestmem.memory.BulkCopier.Provider;
    // The dispatch's radix tree, for info mtree -d (tools) and the translation benchmark (bench); nobody else.
    exports dev.guestmem.memory.internal.dispatch to dev.guestmem.tools, dev.guestmem.bench;
}
