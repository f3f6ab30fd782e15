/**
 * What a commit does around rendering: the windows of the tree to re-render, the listener registry, the topology
 * pass and the coalesced MMIO and ioeventfd updates told to listeners, and the region tree's argument checks. Not
 * exported; writer only.
 */
package dev.guestmem.memory.internal.render;
