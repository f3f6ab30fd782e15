/**
 * QEMU's {@code info mtree} text: printing guestmem's trees and flat views in QEMU 7.2's exact format, and reading
 * QEMU's own dumps into machine maps.
 */
package dev.guestmem.memory.mtree;
