/**
 * Guest RAM shared with device backends in other processes over vhost-user (QEMU's docs/interop/vhost-user.rst):
 * {@link dev.guestmem.offheap.vhost.VhostUserFrontend}, the front-end side of one connection, QEMU's
 * {@code hw/virtio/vhost-user.c}.
 */
package dev.guestmem.offheap.vhost;
