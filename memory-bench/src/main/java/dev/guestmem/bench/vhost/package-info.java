/**
 * What a device backend in another process costs: virtio-blk reads through Debian's qemu-storage-daemon over
 * vhost-user into guestmem's memfd guest RAM, against reading the same image file in this process
 * ({@link dev.guestmem.bench.vhost.VhostUserBlkBenchmark}).
 */
package dev.guestmem.bench.vhost;
