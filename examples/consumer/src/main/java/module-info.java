/** A user's emulator, as a module: it reads guestmem's three library modules. */
module example.consumer {
    requires dev.guestmem.core;
    requires dev.guestmem.offheap;
    requires dev.guestmem.tools;

    exports example.consumer;
}
