/**
 * Parts of the access path that left the API classes: the notifier lists of IOMMU regions. Not exported.
 */
package dev.guestmem.memory.internal.access;
